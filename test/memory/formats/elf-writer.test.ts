import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FileSource } from '../../../src/memory/formats/byte-source.js';
import { parseElfCore } from '../../../src/memory/formats/elf-core.js';
import { writeElfCore } from '../../../src/memory/formats/elf-writer.js';
import { ImageMemory, fileTechnique } from '../../../src/memory/formats/image-memory.js';
import { FakeMemory } from '../helpers/fake-memory.js';
import { type GuestPhysAddr, gpa } from '../../../src/core/address.js';

/** FakeMemory with two RAM ranges and a hole between them, as q35's layout has. */
class TwoRanges extends FakeMemory {
  override ranges() {
    return [{ start: gpa(0), end: gpa(0xa0000) }, { start: gpa(0xc0000), end: gpa(0x300000) }];
  }
}

test('an ELF core written from memory reads back byte for byte, with its notes and SHA-256', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-elfw-'));
  try {
    const mem = new TwoRanges(0x300000);
    const file = path.join(dir, 'out.elf');
    const progress: number[] = [];
    const w = await writeElfCore(mem, file, {
      notes: [{ name: 'VMCOREINFO', type: 0, desc: Buffer.from('OSRELEASE=6.1.0-x\n') }, { name: 'VMSIGHT', type: 1, desc: Buffer.from('{"a":1}') }],
      chunk: 0x40000,
      onProgress: (done) => progress.push(done),
    });
    assert.equal(w.sha256, crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    assert.equal(w.bytes, fs.statSync(file).size);
    assert.equal(w.unreadBytes, 0);
    assert.equal(progress[progress.length - 1], 0xa0000 + 0x240000);
    const src = FileSource.open(file);
    const core = parseElfCore(src);
    assert.equal(core.paging, false);
    assert.equal(core.vmcoreinfo, 'OSRELEASE=6.1.0-x\n');
    assert.deepEqual(core.segments.map((s) => [s.start, s.end]), [[0, 0xa0000], [0xc0000, 0x300000]]);
    const img = new ImageMemory(fileTechnique('elf-core'), file, src, core.segments);
    for (const [addr, len] of [[0, 0x100], [0x9ff00, 0x100], [0xc0000, 0x1000], [0x2fff00, 0x100]] as const) {
      const op = { addr, len } as { addr: GuestPhysAddr; len: number; dst?: Uint8Array };
      assert.deepEqual(img.readv([op]), []);
      assert.deepEqual(op.dst, mem.bytes.subarray(addr, addr + len), `0x${addr.toString(16)}`);
    }
    await img.close();
    await assert.rejects(writeElfCore(mem, file), /already exists/);
    // A stop request ends the copy and removes the partial file.
    const stopped = path.join(dir, 'stopped.elf');
    await assert.rejects(writeElfCore(mem, stopped, { stop: () => 'interrupted by SIGINT' }), /interrupted by SIGINT; the partial file was removed/);
    assert.equal(fs.existsSync(stopped), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
