/**
 * Process memory on a real 6.1 guest (issue 10): what `read --pid`,
 * `translate --pid`, memmap and procdump see of a scenario process equals
 * what the guest itself reads from /proc/PID/mem.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command as read } from '../../src/cli/commands/read.js';
import { command as translate } from '../../src/cli/commands/translate.js';
import { pluginCommand } from '../../src/cli/commands/plugins.js';
import memmap from '../../src/linux/plugins/memmap.js';
import procdump from '../../src/linux/plugins/procdump.js';
import { labRun } from '../../src/lab/exec.js';
import { processByComm } from '../../src/lab/ground-truth.js';
import { SCENARIO } from '../../src/lab/index.js';
import { sharedGuest, type SharedGuest } from '../helpers/guest.js';
import { runCommand } from './helpers/run-command.js';

const sha256 = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

interface MapLine { start: bigint; end: bigint; perms: string; offset: bigint; path: string }

function parseMaps(text: string): MapLine[] {
  return text.trim().split('\n').map((l) => {
    const [range, perms, offset, , , ...rest] = l.trim().split(/\s+/);
    const [s, e] = range!.split('-');
    return { start: BigInt(`0x${s}`), end: BigInt(`0x${e}`), perms: perms!, offset: BigInt(`0x${offset}`), path: rest.join(' ') };
  });
}

let g: SharedGuest;
let pid: number;
let maps: MapLine[];
let tmp: string;

/** sha256 of pages [va, va + count*4096) as the guest reads them from /proc/PID/mem (busybox dd). */
async function guestPagesSha(va: bigint, count: number): Promise<string> {
  const out = await labRun(g.guest, ['sh', '-c', `dd if=/proc/${pid}/mem bs=4096 skip=${va / 4096n} count=${count} 2>/dev/null | sha256sum`]);
  return out.split(/\s/)[0]!;
}

before(async () => {
  g = await sharedGuest({ kernel: '6.1', purpose: 'exec' });
  const p = processByComm(g.truth, SCENARIO.args);
  assert.ok(p, 'vmi-args runs in the guest');
  pid = p.pid;
  maps = parseMaps(await labRun(g.guest, ['cat', `/proc/${pid}/maps`]));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-procmem-'));
});
after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

describe('process memory on 6.1', { timeout: 300_000 }, () => {
  test('read --pid: the top stack page equals /proc/PID/mem', async () => {
    const stack = maps.find((m) => m.path === '[stack]');
    assert.ok(stack, 'a [stack] mapping');
    const va = stack.end - 4096n;
    const r = await runCommand(read, [g.guest.name, '--pid', String(pid), '--va', `0x${va.toString(16)}`, '--len', '4096', '--json']);
    assert.equal(r.code, 0, r.error);
    const doc = JSON.parse(r.out);
    const bytes = Buffer.from(String(doc.hex).replace(/^0x/, ''), 'hex');
    assert.equal(bytes.length, 4096);
    assert.equal(sha256(bytes), await guestPagesSha(va, 1));
    // The stack's top page holds the argv strings the scenario was started with.
    assert.ok(bytes.includes(Buffer.from('--beta=two words')));
  });

  test('read --pid: a present heap page equals /proc/PID/mem', async () => {
    const heap = maps.find((m) => m.path === '[heap]');
    assert.ok(heap, 'a [heap] mapping');
    const r = await runCommand(pluginCommand(memmap), [g.guest.name, '--pid', String(pid), '--json']);
    const run = (JSON.parse(r.out).rows as { va: string; path: string }[]).find((x) => x.path === '[heap]');
    assert.ok(run, 'a present heap page');
    const va = BigInt(run.va);
    const got = await runCommand(read, [g.guest.name, '--pid', String(pid), '--va', `0x${va.toString(16)}`, '--len', '4096', '--json']);
    assert.equal(got.code, 0, got.error);
    assert.equal(sha256(Buffer.from(String(JSON.parse(got.out).hex).replace(/^0x/, ''), 'hex')), await guestPagesSha(va, 1));
  });

  test('read --pid: unknown pid and kernel thread are errors naming the pid', async () => {
    const none = await runCommand(read, [g.guest.name, '--pid', '999999', '--va', '0x400000']);
    assert.notEqual(none.code, 0);
    assert.match(none.error ?? '', /pid 999999: no such process/);
    const kthreadd = await runCommand(translate, [g.guest.name, '0x400000', '--pid', '2']);
    assert.notEqual(kthreadd.code, 0);
    assert.match(kthreadd.error ?? '', /pid 2 \(kthreadd\) is a kernel thread/);
  });

  test('translate --pid: the first ELF page resolves through the process page tables', async () => {
    const head = maps.find((m) => m.offset === 0n && m.path.startsWith('/'));
    assert.ok(head);
    const r = await runCommand(translate, [g.guest.name, `0x${head.start.toString(16)}`, '--pid', String(pid), '--json']);
    assert.equal(r.code, 0, r.error);
    const doc = JSON.parse(r.out);
    assert.match(doc.via, new RegExp(`pid ${pid} \\(${SCENARIO.args}\\)`));
    assert.ok(doc.pa !== undefined);
    // The same physical page through `read --pa` starts with the ELF magic.
    const pa = await runCommand(read, [g.guest.name, '--pa', String(doc.pa), '--len', '4']);
    assert.match(pa.out, /7f45 4c46/);
  });

  test('memmap: runs lie inside the VMAs and cover the ELF header page', async () => {
    const r = await runCommand(pluginCommand(memmap), [g.guest.name, '--pid', String(pid), '--json']);
    assert.equal(r.code, 0, r.error);
    const rows = JSON.parse(r.out).rows as { start: string; end: string; va: string; pa: string; size: number | string; path: string }[];
    assert.ok(rows.length > 3);
    const n = (v: string | number): bigint => BigInt(v);
    for (const row of rows) {
      assert.ok(n(row.va) >= n(row.start) && n(row.va) + n(row.size) <= n(row.end), `run ${row.va} inside ${row.start}-${row.end}`);
      assert.ok(maps.some((m) => m.start === n(row.start) && m.end === n(row.end)), `VMA ${row.start} is in /proc/PID/maps`);
    }
    const head = maps.find((m) => m.offset === 0n && m.path.startsWith('/'))!;
    assert.ok(rows.some((row) => n(row.va) === head.start && row.path === head.path));
  });

  test('procdump: the ELF header mapping file equals /proc/PID/mem on its present pages', async () => {
    const dir = path.join(tmp, 'dump');
    const r = await runCommand(pluginCommand(procdump), [g.guest.name, '--pid', String(pid), '--dump', dir, '--json']);
    assert.equal(r.code, 0, r.error);
    const rows = JSON.parse(r.out).rows as { start: string; end: string; file: string; size: number; pagesPresent: number; pagesMissing: number; sha256: string; path: string }[];
    assert.equal(rows.length, maps.filter((m) => m.path !== '[vsyscall]').length, 'one file per VMA');
    for (const row of rows) {
      assert.ok(path.dirname(row.file) === dir && fs.statSync(row.file).size === row.size);
      assert.equal(sha256(fs.readFileSync(row.file)), row.sha256);
      assert.equal(row.pagesPresent + row.pagesMissing, Math.ceil(row.size / 4096));
    }
    // The manifest lists every file with its holes; holes read as zeros and add up to the missing pages.
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${pid}.${SCENARIO.args}.procdump.json`), 'utf8')) as { files: { file: string; pagesMissing: number; holes: [string, string][] }[] };
    assert.deepEqual(manifest.files.map((f) => f.file), rows.map((x) => x.file));
    for (const f of manifest.files) {
      const bytes = fs.readFileSync(f.file);
      let holeBytes = 0;
      for (const [o, l] of f.holes) {
        assert.ok(bytes.subarray(Number(o), Number(o) + Number(l)).every((b) => b === 0), `${f.file} hole at ${o}`);
        holeBytes += Number(l);
      }
      assert.equal(Math.ceil(holeBytes / 4096), f.pagesMissing, f.file);
    }
    const head = maps.find((m) => m.offset === 0n && m.path.startsWith('/'))!;
    const row = rows.find((x) => BigInt(x.start) === head.start)!;
    assert.ok(row.pagesPresent >= 1, 'the ELF header page is present');
    const bytes = fs.readFileSync(row.file);
    assert.equal(bytes.subarray(0, 4).toString('latin1'), '\x7fELF');
    // Compare page by page where vmsight found the page present (the guest's own read faults the rest in).
    const present = new Set<number>();
    const mm = JSON.parse((await runCommand(pluginCommand(memmap), [g.guest.name, '--pid', String(pid), '--json'])).out).rows as { start: string; va: string; size: number | string }[];
    for (const run of mm.filter((x) => BigInt(x.start) === head.start)) {
      for (let o = 0n; o < BigInt(run.size); o += 4096n) present.add(Number((BigInt(run.va) + o - head.start) / 4096n));
    }
    assert.ok(present.has(0));
    // A mapping of the ELF with every page present: the whole file equals the guest's read of the whole VMA.
    const full = rows.filter((x) => x.path === head.path && x.pagesMissing === 0);
    assert.ok(full.length >= 1, 'a fully present mapping of the ELF');
    for (const f of full) assert.equal(f.sha256, await guestPagesSha(BigInt(f.start), f.size / 4096), `${f.start} whole mapping`);
    for (const page of present) {
      assert.equal(sha256(bytes.subarray(page * 4096, page * 4096 + 4096)), await guestPagesSha(head.start + BigInt(page) * 4096n, 1), `page ${page}`);
    }
  });

  test('procdump of every process stops at --max-total, with a truncated anomaly naming the bound', async () => {
    const dir = path.join(tmp, 'dump-all');
    const r = await runCommand(pluginCommand(procdump), [g.guest.name, '--dump', dir, '--max-total', '256K', '--json']);
    assert.equal(r.code, 0, r.error);
    const doc = JSON.parse(r.out) as { rows: { file: string; pid: number }[]; anomalies: { items: { kind: string; where: string; detail: string }[] } };
    const stop = doc.anomalies.items.find((a) => a.kind === 'truncated' && a.where === 'procdump' && /--max-total 262144/.test(a.detail));
    assert.ok(stop, 'the stop is a named anomaly');
    assert.ok(doc.rows.length >= 1 && new Set(doc.rows.map((x) => x.pid)).size < 40, 'it stopped before every process was dumped');
    // Bytes actually on disk (sparse files): at most the bound plus the one mapping that crossed it (≤ 256 MiB file cut).
    const written = doc.rows.reduce((a, x) => a + fs.statSync(x.file).blocks * 512, 0);
    const last = fs.statSync(doc.rows.at(-1)!.file).blocks * 512;
    assert.ok(written - last < (256 << 10) + (64 << 10), `${written - last} bytes before the last file`);
  });
});
