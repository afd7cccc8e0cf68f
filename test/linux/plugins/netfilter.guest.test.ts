/**
 * netfilter against the guest's own view: 6.1 and 6.12 guests with Debian's nft in
 * its initramfs loads nf_tables and adds an `ip` table with an input base
 * chain and an `inet` table with an output base chain (one hook each in ipv4
 * and ipv6). The nf_tables hooks vmsight finds in the guest's network
 * namespace must be exactly those `nft -j list ruleset` implies (family,
 * hook point, priority), every hook point in priority order, nothing
 * flagged; deleting the tables removes their hooks.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { labExec, labRun, userlandModulePath, USERLAND_TOOLS, type LabGuest } from '../../../src/lab/index.js';
import { attachKernel, type AttachedKernel } from '../../../src/linux/attach.js';
import netfilter, { type NetfilterRow } from '../../../src/linux/plugins/netfilter.js';
import { sharedGuest } from '../../helpers/guest.js';

const NFT = '/usr/sbin/nft';

interface NftChain { family: string; table: string; name: string; hook?: string; prio?: number }

/** The hooks a ruleset registers: one per base chain, in ipv4 and ipv6 for the inet family. */
function expectedHooks(chains: readonly NftChain[], tables: readonly string[]): string[] {
  const fam: Record<string, string[]> = { ip: ['ipv4'], ip6: ['ipv6'], inet: ['ipv4', 'ipv6'], arp: ['arp'], bridge: ['bridge'] };
  return chains
    .filter((c) => c.hook !== undefined && tables.includes(c.table))
    .flatMap((c) => (fam[c.family] ?? []).map((f) => `${f} ${c.hook} ${c.prio}`))
    .sort();
}

for (const kernelSpec of ['6.1', '6.12']) {
describe(`netfilter on a ${kernelSpec} guest with nft`, { timeout: 900_000 }, () => {
  let guest: LabGuest;
  let kernel: AttachedKernel;
  let netns: number;
  const tag = crypto.randomBytes(3).toString('hex');
  const tables = [`vmi4_${tag}`, `vmi46_${tag}`];

  before(async () => {
    ({ guest } = await sharedGuest({ kernel: kernelSpec, tools: ['bpftool', 'nft'] }));
    kernel = await attachKernel(`shm:${guest.shmPath}`);
    const loaded = await labRun(guest, ['cat', '/proc/modules']);
    for (const m of USERLAND_TOOLS.nft.modules) {
      if (!new RegExp(`^${m} `, 'm').test(loaded)) await labRun(guest, ['insmod', userlandModulePath(m)]);
    }
    netns = Number(/\[(\d+)\]/.exec(await labRun(guest, ['readlink', '/proc/self/ns/net']))![1]);
  }, { timeout: 600_000 });
  after(async () => {
    if (guest) for (const t of tables) await labExec(guest, [NFT, 'delete', 'table', t.startsWith('vmi46') ? 'inet' : 'ip', t]).catch(() => undefined);
    await kernel?.close();
  });

  const look = async (): Promise<NetfilterRow[]> => {
    const pass = await kernel.pass();
    try {
      const r = pass.run(netfilter);
      assert.deepEqual(r.anomalyCounts, {}, 'no anomalies on a clean guest');
      return r.rows;
    } finally {
      pass.end();
    }
  };
  const ruleset = async (): Promise<NftChain[]> => {
    const j = JSON.parse(await labRun(guest, [NFT, '-j', 'list', 'ruleset'])) as { nftables: { chain?: NftChain }[] };
    return j.nftables.flatMap((x) => (x.chain ? [x.chain] : []));
  };
  const nftHooks = (rows: readonly NetfilterRow[]) =>
    rows.filter((r) => r.netns === netns && r.module === 'nf_tables').map((r) => `${r.family} ${r.hook} ${r.priority}`).sort();

  test('tables with base chains: their hooks, in nf_tables, at the chains\' hook points and priorities', async () => {
    const before = nftHooks(await look());
    await labRun(guest, [NFT, 'add', 'table', 'ip', tables[0]!]);
    await labRun(guest, [NFT, 'add', 'chain', 'ip', tables[0]!, 'in', '{ type filter hook input priority 7; policy accept; }']);
    await labRun(guest, [NFT, 'add', 'rule', 'ip', tables[0]!, 'in', 'counter']);
    await labRun(guest, [NFT, 'add', 'table', 'inet', tables[1]!]);
    await labRun(guest, [NFT, 'add', 'chain', 'inet', tables[1]!, 'out', '{ type filter hook output priority -13; }']);
    const rows = await look();
    const ours = expectedHooks(await ruleset(), tables);
    assert.deepEqual(ours, ['ipv4 input 7', 'ipv4 output -13', 'ipv6 output -13']);
    assert.deepEqual(nftHooks(rows), [...before, ...ours].sort(), 'nf_tables hooks equal what the ruleset implies');
    for (const r of rows.filter((x) => x.module === 'nf_tables')) assert.match(String(r.symbol), /^nft_do_chain_(ipv4|ipv6|inet)\b/);
    // Every hook point runs its hooks in priority order; none is outside kernel text and modules.
    const points = new Map<string, number[]>();
    for (const r of rows) points.set(`${r.netns} ${r.family} ${r.hook}`, [...(points.get(`${r.netns} ${r.family} ${r.hook}`) ?? []), Number(r.priority)]);
    for (const [p, prios] of points) assert.deepEqual(prios, [...prios].sort((a, b) => a - b), `${p} in priority order`);
    assert.deepEqual(rows.filter((r) => r.suspicious), []);
    assert.ok(rows.every((r) => r.verdict === 'core-text' || r.verdict === 'module'));
  });

  test('deleting the tables removes their hooks', async () => {
    const withTables = nftHooks(await look());
    for (const t of tables) await labRun(guest, [NFT, 'delete', 'table', t.startsWith('vmi46') ? 'inet' : 'ip', t]);
    const now = nftHooks(await look());
    assert.equal(withTables.length - now.length, 3, `${withTables.length} hooks before, ${now.length} after`);
    assert.deepEqual(now, expectedHooks(await ruleset(), (await ruleset()).map((c) => c.table)));
  });
});
}
