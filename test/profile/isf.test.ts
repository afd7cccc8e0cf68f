import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FormatError, ProfileError } from '../../src/core/errors.js';
import { parseBtf } from '../../src/profile/btf.js';
import { checkIsfMatches, exportIsf, importIsf, isfBanner, parseIsfText, readIsfFile, stringifyIsf, writeIsfFile, type IsfJson } from '../../src/profile/isf.js';
import { Typed } from '../../src/profile/typed.js';
import { TypeDb, type TypeId } from '../../src/profile/types.js';
import { kernelLikeBtf } from './helpers/btf-encoder.js';
import { realVmlinuxBtf } from './helpers/real-btf.js';

const BANNER = 'Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-01)';
const INIT_TASK = 0xffffffff82a14940n; // beyond 2^53: must survive JSON exactly

/** Every member reachable by name (through nested and anonymous members), with where it sits. */
function flatten(db: TypeDb, type: TypeId, prefix = '', base = 0, depth = 0, out: string[] = []): string[] {
  const t = db.resolve(type);
  if ((t.kind !== 'struct' && t.kind !== 'union') || depth > 4) return out;
  for (const m of t.members) {
    const bits = base + m.bitOffset;
    const r = db.resolve(m.type);
    const path = m.name ? `${prefix}${m.name}` : prefix;
    if (m.name) {
      const f = db.field(db.composite(t.id).id, m.name);
      const size = r.kind === 'fwd' || r.kind === 'func_proto' ? 0 : db.sizeOf(m.type);
      out.push(`${path} @${bits + (f.bitOffset - m.bitOffset)} ${f.bitSize ? `:${f.bitSize}` : ''} ${r.kind} ${size}`);
    }
    if (r.kind === 'struct' || r.kind === 'union') flatten(db, r.id, m.name ? `${path}.` : prefix, bits, depth + 1, out);
  }
  return out;
}

test('export → import keeps every layout, bitfield, enum and symbol of the fixture', () => {
  const btfDb = new TypeDb(parseBtf(kernelLikeBtf().bytes, { source: 'btf:fixture' }));
  const { isf, stats } = exportIsf(btfDb, [{ name: 'init_task', address: INIT_TASK }, { name: 'linux_banner', address: 0xffffffff82000100n }], { banner: BANNER });
  assert.equal(isf.metadata.format, '6.2.0');
  assert.ok(isf.base_types['pointer'] && isf.base_types['int']);
  assert.equal(stats.symbols, 2);
  assert.deepEqual(isf.symbols['init_task']!.type, { kind: 'struct', name: 'task_struct' });
  // Anonymous members are flagged; bitfields carry positions.
  const fields = isf.user_types['task_struct']!.fields;
  assert.ok(Object.values(fields).some((f) => f.anonymous === true));
  assert.deepEqual(fields['flags3'], { type: { kind: 'bitfield', bit_position: 2, bit_length: 3, type: { kind: 'base', name: 'int' } }, offset: 12 });

  const text = stringifyIsf(isf);
  assert.match(text, /"address":18446744071606192448/); // a plain JSON integer, as Python writes it
  const imp = importIsf(parseIsfText(text), 'isf:fixture');
  assert.equal(imp.banner, BANNER);
  assert.equal(imp.symbols.address('init_task'), INIT_TASK);
  for (const s of ['task_struct', 'mm_struct', 'list_head']) {
    assert.equal(imp.db.sizeOf(s), btfDb.sizeOf(s), s);
    assert.deepEqual(flatten(imp.db, imp.db.struct(s).id), flatten(btfDb, btfDb.struct(s).id), s);
  }
  assert.equal(imp.db.offsetOf('task_struct', 'static_prio'), 60);
  assert.equal(imp.db.enumName('task_state', -1n), 'TASK_DEAD');
  // Typed access works the same over the imported profile.
  const mem = { read: (_va: bigint, len: number) => { const b = new Uint8Array(len); b[12] = 0b10110; return b; } };
  assert.equal(new Typed(imp.db, mem).obj('task_struct', INIT_TASK).read().bits('flags3'), -3n);
  // The symbol's type is registered, so globals without a table row still resolve.
  assert.equal(imp.db.typeName(imp.symbols.byName.get('init_task')!.type!), 'struct task_struct');
});

test('checkIsfMatches refuses an ISF for another kernel, naming both banners', () => {
  const btfDb = new TypeDb(parseBtf(kernelLikeBtf().bytes));
  const { isf } = exportIsf(btfDb, [], { banner: BANNER });
  assert.equal(isfBanner(isf), BANNER);
  checkIsfMatches(isf, `${BANNER}\n`); // trailing newline/NUL as in memory: same kernel
  const other = 'Linux version 6.12.117+deb13-amd64 (debian-kernel@lists.debian.org) #1 SMP';
  assert.throws(
    () => checkIsfMatches(isf, other),
    (e: unknown) => e instanceof ProfileError && e.message.includes(BANNER) && e.message.includes(other) && e.symbol === 'linux_banner',
  );
  const { isf: bare } = exportIsf(btfDb, []);
  assert.throws(() => checkIsfMatches(bare, other), /no linux_banner/);
});

test('.json.xz files round-trip through the host xz', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmsight-isf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const btfDb = new TypeDb(parseBtf(kernelLikeBtf().bytes));
  const { isf } = exportIsf(btfDb, [{ name: 'init_task', address: INIT_TASK }], { banner: BANNER });
  const file = path.join(dir, 'k.json.xz');
  writeIsfFile(file, isf);
  const back = readIsfFile(file);
  assert.equal(back.symbols['init_task']!.address, INIT_TASK);
  const imp = importIsf(file);
  assert.equal(imp.db.source, `isf:${file}`);
  assert.equal(imp.db.sizeOf('task_struct'), 80);
});

test('malformed ISF input is a FormatError', () => {
  assert.throws(() => parseIsfText('{"metadata": '), FormatError);
  assert.throws(() => importIsf({ metadata: { format: '6.2.0' } } as unknown as IsfJson), /'base_types' is missing/);
  const base = { metadata: { format: '6.2.0' }, base_types: {}, user_types: {}, enums: {}, symbols: {} };
  assert.throws(() => importIsf({ ...base, metadata: { format: '9.0.0' } }), /not supported/);
  assert.throws(
    () => importIsf({ ...base, user_types: { s: { kind: 'struct', size: 4, fields: { x: { type: { kind: 'base', name: 'nope' }, offset: 0 } } } } }),
    /base type 'nope'/,
  );
  assert.throws(() => importIsf({ ...base, user_types: { s: { kind: 'struct', size: -1, fields: {} } } }), /non-negative/);
  // A reference to an undefined struct becomes a forward declaration, not a crash.
  const imp = importIsf({ ...base, base_types: { pointer: { size: 8, signed: false, kind: 'int', endian: 'little' } }, user_types: { s: { kind: 'struct', size: 8, fields: { p: { type: { kind: 'pointer', subtype: { kind: 'struct', name: 'ghost' } }, offset: 0 } } } } });
  assert.equal(imp.db.typeName(imp.db.field('s', 'p').type), 'struct ghost *');
});

test('real vmlinux BTF: export → import gives the same layouts for the core structures', async (t) => {
  const real = await realVmlinuxBtf();
  if (!real) {
    t.skip('no Debian kernel in the lab cache');
    return;
  }
  const btfDb = new TypeDb(parseBtf(real.bytes, { source: `btf:${real.kernel}` }));
  const { isf, stats } = exportIsf(btfDb, [{ name: 'init_task', address: INIT_TASK }], { banner: BANNER });
  assert.ok(stats.userTypes > 5000);
  const imp = importIsf(parseIsfText(stringifyIsf(isf)));
  for (const s of ['task_struct', 'mm_struct', 'module', 'sock', 'file', 'dentry', 'net', 'inode', 'super_block']) {
    assert.equal(imp.db.sizeOf(s), btfDb.sizeOf(s), s);
    assert.deepEqual(flatten(imp.db, imp.db.struct(s).id), flatten(btfDb, btfDb.struct(s).id), s);
  }
});

test('export writes link-time addresses (KASLR shift removed) and sizes T[] globals by the next symbol', () => {
  const btfDb = new TypeDb(parseBtf(kernelLikeBtf().bytes));
  const shift = 0x1f600000n;
  const A = 0xffffffff82200300n + shift;
  const { isf } = exportIsf(btfDb, [
    { name: 'sys_call_table', address: A },
    { name: 'after_table', address: A + 0x40n },
    { name: 'init_task', address: INIT_TASK + shift },
  ], { shift });
  assert.equal(isf.symbols['init_task']!.address, INIT_TASK);
  assert.equal(isf.symbols['sys_call_table']!.address, A - shift);
  assert.deepEqual(isf.symbols['sys_call_table']!.type, { kind: 'array', count: 8, subtype: { kind: 'pointer', subtype: { kind: 'base', name: 'void' } } });
  assert.equal(isf.symbols['after_table']!.type, undefined);
});
