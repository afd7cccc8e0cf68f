/**
 * Netfilter hooks (net/netfilter/core.c): every network namespace keeps, per
 * protocol family and hook point, a `struct nf_hook_entries` (`net->nf.hooks_ipv4[NF_INET_LOCAL_IN]`, …):
 * `num_hook_entries`, then that many { hook, priv } pairs in the order they
 * run, then as many `struct nf_hook_ops *` (orig_ops) they were registered
 * from. A hook whose entry function differs from its ops' is a pointer
 * swapped after registration, recorded as an anomaly.
 */
import { gva } from '../../core/address.js';
import { FaultError } from '../../core/errors.js';
import type { AnomalySink } from '../anomaly.js';
import type { Kernel } from '../kernel.js';
import { isKernelPointer } from '../walk/common.js';
import type { NetNamespace } from './netdevice.js';

/** MAX_HOOK_COUNT in net/netfilter/core.c: no hook point holds more entries. */
export const MAX_HOOK_ENTRIES = 1024;

/** Hook point names as nft prints them, per `struct netns_nf` array. */
const INET_HOOKS = ['prerouting', 'input', 'forward', 'output', 'postrouting'];
export const NF_FAMILIES: readonly { field: string; family: string; hooks: readonly string[] }[] = [
  { field: 'hooks_ipv4', family: 'ipv4', hooks: INET_HOOKS },
  { field: 'hooks_ipv6', family: 'ipv6', hooks: INET_HOOKS },
  { field: 'hooks_arp', family: 'arp', hooks: ['input', 'output', 'forward'] },
  { field: 'hooks_bridge', family: 'bridge', hooks: INET_HOOKS },
  { field: 'hooks_decnet', family: 'decnet', hooks: ['prerouting', 'input', 'forward', 'output', 'postrouting', 'hello', 'route'] },
];

export interface NfHook {
  readonly netns: number;
  readonly family: string;
  readonly hook: string;
  readonly hooknum: number;
  /** Position in the run order of its hook point. */
  readonly index: number;
  /** The function the kernel calls (nf_hook_entry.hook). */
  readonly func: bigint;
  readonly priv: bigint;
  /** The registration (orig_ops[index]); 0 when unreadable. */
  readonly ops: bigint;
  readonly priority: number | undefined;
}

/** Every hook of every family and hook point of one network namespace. */
export function* netfilterHooks(kernel: Kernel, ns: NetNamespace, anomalies: AnomalySink): Generator<NfHook> {
  const db = kernel.types;
  const nfOff = db.offsetOf('net', 'nf');
  const entrySize = db.sizeOf('nf_hook_entry');
  const hooksOff = db.offsetOf('nf_hook_entries', 'hooks');
  const opsHookOff = db.offsetOf('nf_hook_ops', 'hook');
  const opsPrioOff = db.offsetOf('nf_hook_ops', 'priority');
  for (const fam of NF_FAMILIES) {
    const f = db.tryField('netns_nf', fam.field);
    if (!f) continue;
    const t = db.resolve(f.type);
    const count = t.kind === 'array' ? Math.min(t.length, fam.hooks.length) : 0;
    let heads: Uint8Array;
    const at = ns.net + BigInt(nfOff + f.offset);
    try {
      heads = kernel.space.read(gva(at), count * 8);
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: `net.nf.${fam.field}`, address: at, detail: e.message });
      continue;
    }
    const hv = new DataView(heads.buffer, heads.byteOffset, count * 8);
    for (let h = 0; h < count; h++) {
      const entries = hv.getBigUint64(h * 8, true);
      if (entries === 0n) continue;
      const where = `net.nf.${fam.field}[${h}]`;
      if (!isKernelPointer(entries)) {
        anomalies.add({ kind: 'bad-pointer', where, address: entries, detail: `nf_hook_entries 0x${entries.toString(16)} is not a kernel pointer` });
        continue;
      }
      let n: number;
      let body: Uint8Array;
      try {
        n = kernel.space.read(gva(entries), 2).reduce((acc, b, i) => acc | (b << (8 * i)), 0);
        if (n > MAX_HOOK_ENTRIES) {
          anomalies.add({ kind: 'invalid', where, address: entries, detail: `num_hook_entries ${n} exceeds ${MAX_HOOK_ENTRIES}` });
          continue;
        }
        // hooks[n] then orig_ops[n] (nf_hook_entries_get_hook_ops()).
        body = kernel.space.read(gva(entries + BigInt(hooksOff)), n * (entrySize + 8));
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
        anomalies.add({ kind: 'fault', where, address: entries, detail: e.message });
        continue;
      }
      const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
      for (let i = 0; i < n; i++) {
        const func = bv.getBigUint64(i * entrySize, true);
        const priv = bv.getBigUint64(i * entrySize + 8, true);
        const ops = bv.getBigUint64(n * entrySize + i * 8, true);
        let priority: number | undefined;
        if (isKernelPointer(ops)) {
          try {
            const o = kernel.space.read(gva(ops + BigInt(opsHookOff)), 8);
            const regFunc = new DataView(o.buffer, o.byteOffset, 8).getBigUint64(0, true);
            const p = kernel.space.read(gva(ops + BigInt(opsPrioOff)), 4);
            priority = new DataView(p.buffer, p.byteOffset, 4).getInt32(0, true);
            if (regFunc !== func) {
              anomalies.add({ kind: 'invalid', where, address: entries, detail: `entry ${i} calls 0x${func.toString(16)} but was registered with 0x${regFunc.toString(16)}` });
            }
          } catch (e) {
            if (!(e instanceof FaultError)) throw e;
            anomalies.add({ kind: 'fault', where: `${where}.orig_ops[${i}]`, address: ops, detail: e.message });
          }
        } else {
          anomalies.add({ kind: 'bad-pointer', where: `${where}.orig_ops[${i}]`, address: ops, detail: `nf_hook_ops 0x${ops.toString(16)} is not a kernel pointer` });
        }
        yield { netns: ns.inum, family: fam.family, hook: fam.hooks[h]!, hooknum: h, index: i, func, priv, ops: isKernelPointer(ops) ? ops : 0n, ...(priority !== undefined ? { priority } : { priority: undefined }) };
      }
    }
  }
}
