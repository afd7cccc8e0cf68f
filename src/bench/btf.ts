/**
 * BTF benchmark: how long parsing and indexing a vmlinux BTF takes, and the
 * memory the TypeDb holds. Run directly: `npx tsx src/bench/btf.ts FILE`
 * where FILE is raw BTF, a vmlinux or a vmlinuz.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { BtfTypes } from '../profile/btf.js';
import { btfFromFileBytes } from '../profile/btf/sources.js';
import { TypeDb } from '../profile/types.js';

export interface BtfBenchResult {
  readonly bytes: number;
  readonly types: number;
  /** Header check + one pass indexing every record's offset. */
  readonly parseIndexMs: number;
  /** Building the name index (first lookup) and resolving task_struct. */
  readonly firstLookupMs: number;
  /** 20 member-path lookups on a warm TypeDb (offsetOf through anonymous members). */
  readonly offsetOfUs: number;
  /** Decoding every type (worst case, e.g. an ISF export). */
  readonly decodeAllMs: number;
  /** Heap growth after parse + index + name index (MiB), blob excluded. */
  readonly heapIndexMiB: number;
  /** Heap growth after decoding every type (MiB). */
  readonly heapAllMiB: number;
}

const PATHS: [string, string][] = [
  ['task_struct', 'comm'],
  ['task_struct', 'tasks'],
  ['task_struct', 'mm'],
  ['task_struct', 'pid'],
  ['task_struct', 'se.sum_exec_runtime'],
  ['mm_struct', 'arg_start'],
  ['mm_struct', 'pgd'],
  ['module', 'list'],
  ['module', 'name'],
  ['sock', 'sk_type'],
  ['sock', '__sk_common.skc_family'],
  ['file', 'f_path.dentry'],
  ['dentry', 'd_name.name'],
  ['dentry', 'd_parent'],
  ['net', 'list'],
  ['inode', 'i_ino'],
  ['super_block', 's_list'],
  ['list_head', 'next'],
  ['cred', 'uid'],
  ['pid_namespace', 'level'],
];

function heapMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / (1 << 20);
}

/** Measures one BTF blob. Pass `--expose-gc` to node for steadier memory figures. */
export function benchBtf(bytes: Uint8Array, source = 'btf:bench'): BtfBenchResult {
  const h0 = heapMiB();
  let t = performance.now();
  const btf = new BtfTypes(bytes, { source });
  const parseIndexMs = performance.now() - t;
  const db = new TypeDb(btf);
  t = performance.now();
  db.struct('task_struct');
  const firstLookupMs = performance.now() - t;
  const heapIndexMiB = heapMiB() - h0;
  for (const [s, p] of PATHS) db.hasMember(s, p); // warm
  t = performance.now();
  const fresh = new TypeDb(btf);
  for (const [s, p] of PATHS) fresh.hasMember(s, p);
  const offsetOfUs = ((performance.now() - t) * 1000) / PATHS.length;
  t = performance.now();
  for (let i = 0; i < btf.count; i++) btf.get(i);
  const decodeAllMs = performance.now() - t;
  const heapAllMiB = heapMiB() - h0;
  return { bytes: bytes.length, types: btf.count, parseIndexMs, firstLookupMs, offsetOfUs, decodeAllMs, heapIndexMiB, heapAllMiB };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: tsx src/bench/btf.ts <raw BTF | vmlinux | vmlinuz>\n');
    process.exit(2);
  }
  const { btf } = btfFromFileBytes(readFileSync(file), { source: `btf:${file}` });
  const r = benchBtf(Uint8Array.from(btf.raw));
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
