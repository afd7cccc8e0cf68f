/**
 * ebpf against the guest's own view: 6.1 and 6.12 guests with Debian's bpftool in
 * its initramfs loads a socket-filter program (an object vmsight writes,
 * src/lab/bpf-object.ts) and creates a hash map, both pinned in bpffs; what
 * vmsight reads from prog_idr/map_idr/link_idr must equal `bpftool -j prog
 * show`, `map show` and `link show` in the guest, field by field (id, type,
 * name, tag, sizes, uid, map ids, load time). Unpinned, the objects leave the
 * kernel's tables and vmsight's view.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { bpfObject } from '../../../src/lab/bpf-object.js';
import { labExec, labRun, type LabGuest } from '../../../src/lab/index.js';
import { attachKernel, type AttachedKernel } from '../../../src/linux/attach.js';
import { isAbsent } from '../../../src/linux/plugin.js';
import ebpf, { type EbpfRow } from '../../../src/linux/plugins/ebpf.js';
import { sharedGuest } from '../../helpers/guest.js';

const BPFTOOL = '/usr/sbin/bpftool';

interface ToolProg { id: number; type: string; name?: string; tag: string; uid: number; bytes_xlated: number; bytes_jited?: number; map_ids?: number[]; loaded_at: number }
interface ToolMap { id: number; type: string; name?: string; flags: number; bytes_key: number; bytes_value: number; max_entries: number }
interface ToolLink { id: number; type: string; prog_id: number }

async function bpftool<T>(guest: LabGuest, ...args: string[]): Promise<T[]> {
  const out = await labRun(guest, [BPFTOOL, '-j', ...args], { timeoutMs: 60_000 });
  return JSON.parse(out.trim() || '[]') as T[];
}

for (const kernelSpec of ['6.1', '6.12']) {
describe(`ebpf on a ${kernelSpec} guest with bpftool`, { timeout: 900_000 }, () => {
  let guest: LabGuest;
  let kernel: AttachedKernel;
  const tag = crypto.randomBytes(3).toString('hex');
  const progName = `vmi_p${tag}`;
  const mapName = `vmi_m${tag}`;

  before(async () => {
    ({ guest } = await sharedGuest({ kernel: kernelSpec, tools: ['bpftool', 'nft'] }));
    kernel = await attachKernel(`shm:${guest.shmPath}`);
    await labRun(guest, ['sh', '-c', "grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf"]);
  }, { timeout: 600_000 });
  after(async () => {
    if (guest) await labExec(guest, ['rm', '-f', `/sys/fs/bpf/${progName}`, `/sys/fs/bpf/${mapName}`, `/tmp/${progName}.o`]).catch(() => undefined);
    await kernel?.close();
  });

  /** A fresh pass over the live guest. */
  const look = async (): Promise<{ rows: EbpfRow[]; anomalies: number }> => {
    const pass = await kernel.pass();
    try {
      const r = pass.run(ebpf);
      return { rows: r.rows, anomalies: r.anomalies.length };
    } finally {
      pass.end();
    }
  };

  const compare = async (): Promise<EbpfRow[]> => {
    const [progs, maps, links] = [await bpftool<ToolProg>(guest, 'prog', 'show'), await bpftool<ToolMap>(guest, 'map', 'show'), await bpftool<ToolLink>(guest, 'link', 'show')];
    const { rows, anomalies } = await look();
    assert.equal(anomalies, 0, 'no anomalies on a clean guest');
    const mine = (kind: EbpfRow['kind']) => rows.filter((r) => r.kind === kind);
    // Programs: same ids, and each one's fields as bpftool reports them.
    assert.deepEqual(mine('prog').map((r) => r.id), progs.map((p) => p.id).sort((a, b) => a - b), 'program ids');
    for (const p of progs) {
      const r = mine('prog').find((x) => x.id === p.id)!;
      assert.deepEqual(
        { type: r.type, name: r.name, tag: r.tag, bytes: Number(r.insns) * 8, jited: r.jited, uid: r.uid, maps: r.maps },
        { type: p.type, name: p.name ?? '', tag: p.tag, bytes: p.bytes_xlated, jited: p.bytes_jited ?? 0, uid: p.uid, maps: p.map_ids ?? [] },
        `program ${p.id}`,
      );
      assert.ok(!isAbsent(r.loaded), `program ${p.id} has a load time`);
      const loadedS = Date.parse(String(r.loaded).replace(' ', 'T').replace(/(\.\d{3})\d* UTC$/, '$1Z')) / 1000;
      assert.ok(Math.abs(loadedS - p.loaded_at) <= 2, `program ${p.id} loaded at ${r.loaded}, bpftool says ${new Date(p.loaded_at * 1000).toISOString()}`);
    }
    assert.deepEqual(mine('map').map((r) => r.id), maps.map((m) => m.id).sort((a, b) => a - b), 'map ids');
    for (const m of maps) {
      const r = mine('map').find((x) => x.id === m.id)!;
      assert.deepEqual(
        { type: r.type, name: r.name, flags: r.flags, key: r.key_size, value: r.value_size, max: r.max_entries },
        { type: m.type, name: m.name ?? '', flags: m.flags, key: m.bytes_key, value: m.bytes_value, max: m.max_entries },
        `map ${m.id}`,
      );
    }
    assert.deepEqual(
      mine('link').map((r) => `${r.id} ${r.type} ${r.prog}`),
      links.map((l) => `${l.id} ${l.type} ${l.prog_id}`).sort(),
      'links',
    );
    return rows;
  };

  test('before loading anything of ours: the same programs, maps and links as bpftool', async () => {
    await compare();
  });

  test('a program and a map loaded with bpftool: listed with bpftool\'s id, type, name, tag and shape', async () => {
    const obj = bpfObject({ name: progName, marker: parseInt(tag, 16) });
    await labRun(guest, ['sh', '-c', `cat > /tmp/${progName}.o && ${BPFTOOL} prog load /tmp/${progName}.o /sys/fs/bpf/${progName}`], { stdin: obj, timeoutMs: 60_000 });
    await labRun(guest, [BPFTOOL, 'map', 'create', `/sys/fs/bpf/${mapName}`, 'type', 'hash', 'key', '4', 'value', '8', 'entries', '64', 'name', mapName, 'flags', '1']);
    const rows = await compare();
    const prog = rows.find((r) => r.kind === 'prog' && r.name === progName);
    assert.ok(prog, `${progName} is listed`);
    assert.equal(prog.type, 'socket_filter');
    assert.equal(prog.insns, 3);
    const map = rows.find((r) => r.kind === 'map' && r.name === mapName);
    assert.ok(map, `${mapName} is listed`);
    assert.deepEqual([map.type, map.key_size, map.value_size, map.max_entries, map.flags], ['hash', 4, 8, 64, 1]);
  });

  test('unpinned, they leave the kernel\'s tables and vmsight\'s view', async () => {
    await labRun(guest, ['rm', '-f', `/sys/fs/bpf/${progName}`, `/sys/fs/bpf/${mapName}`]);
    // Freeing goes through RCU and a work item: wait until bpftool no longer lists them, then compare.
    for (let i = 0; i < 50; i++) {
      const listed = [...(await bpftool<ToolProg>(guest, 'prog', 'show')), ...(await bpftool<ToolMap>(guest, 'map', 'show'))];
      if (!listed.some((x) => x.name === progName || x.name === mapName)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const rows = await compare();
    assert.ok(!rows.some((r) => r.name === progName || r.name === mapName), 'gone from vmsight\'s view');
  });
});
}
