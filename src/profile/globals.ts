/**
 * Types of kernel global variables. vmlinux BTF describes structures but
 * carries VAR entries only for per-CPU variables, so the globals the plugins
 * need are listed here with their C types (one reviewed table), and checked
 * against the profile's types at load: `validateGlobals(db)` says which
 * named types are missing.
 *
 * Arrays written `T[]` take their length from the symbol's size when the
 * caller knows it (distance to the next kallsyms symbol), else the stated
 * bound `maxLength`.
 */
import { ProfileError } from '../core/errors.js';
import type { ObjRef, Typed } from './typed.js';
import type { TypeDb, TypeId } from './types.js';

export interface GlobalSpec {
  /** Symbol name. */
  readonly name: string;
  /** C type; alternatives are tried in order (older/newer kernels, typedef missing from BTF). */
  readonly ctype: string | readonly string[];
  /** For `T[]`: bound on the element count (and the length used when the symbol size is unknown). */
  readonly maxLength?: number;
  /** A per-CPU variable: the symbol is an offset into each CPU's area. */
  readonly percpu?: boolean;
  /** Absent in some kernel versions; validation reports it without failing. */
  readonly optional?: boolean;
  /** What needs it. */
  readonly why: string;
}

/** The reviewed table. Add a row when a plugin needs a new global. */
export const KERNEL_GLOBALS: readonly GlobalSpec[] = [
  { name: 'init_task', ctype: 'struct task_struct', why: 'task list head (pslist, pstree)' },
  { name: 'init_mm', ctype: 'struct mm_struct', why: 'kernel address space' },
  { name: 'init_files', ctype: 'struct files_struct', why: 'init task fd table' },
  { name: 'init_fs', ctype: 'struct fs_struct', why: 'init task root/cwd' },
  { name: 'init_nsproxy', ctype: 'struct nsproxy', why: 'initial namespaces' },
  { name: 'init_pid_ns', ctype: 'struct pid_namespace', why: 'pid lookups (idr)' },
  { name: 'init_uts_ns', ctype: 'struct uts_namespace', why: 'hostname, release' },
  { name: 'init_ipc_ns', ctype: 'struct ipc_namespace', optional: true, why: 'SysV IPC objects' },
  { name: 'init_net', ctype: 'struct net', why: 'initial network namespace (sockets, interfaces)' },
  { name: 'net_namespace_list', ctype: 'struct list_head', why: 'all network namespaces' },
  { name: 'modules', ctype: 'struct list_head', why: 'loaded modules (lsmod)' },
  { name: 'super_blocks', ctype: 'struct list_head', why: 'mounted file systems' },
  { name: 'file_systems', ctype: 'struct file_system_type *', why: 'registered file system types' },
  { name: 'mount_hashtable', ctype: 'struct hlist_head *', why: 'mount table' },
  { name: 'tty_drivers', ctype: 'struct list_head', optional: true, why: 'tty check' },
  { name: 'prb', ctype: 'struct printk_ringbuffer *', optional: true, why: 'kernel log (5.10+ ring buffer)' },
  { name: 'linux_banner', ctype: 'char[]', maxLength: 1024, why: 'kernel banner' },
  { name: 'page_offset_base', ctype: 'unsigned long', why: 'direct-map base (KASLR)' },
  { name: 'vmemmap_base', ctype: 'unsigned long', why: 'struct page array base (KASLR)' },
  { name: 'vmalloc_base', ctype: 'unsigned long', why: 'vmalloc area base (KASLR)' },
  { name: 'jiffies_64', ctype: ['u64', 'unsigned long long'], why: 'uptime in ticks' },
  { name: 'nr_threads', ctype: 'int', why: 'thread count cross-check' },
  { name: 'mem_section', ctype: 'struct mem_section **', optional: true, why: 'sparsemem pfn → page' },
  { name: '__per_cpu_offset', ctype: 'unsigned long[]', maxLength: 8192, why: 'per-CPU areas' },
  { name: '__cpu_online_mask', ctype: 'struct cpumask', why: 'online CPUs' },
  {
    name: 'sys_call_table',
    ctype: ['sys_call_ptr_t[]', 'void *[]'],
    maxLength: 1024,
    why: 'syscall hook check (x86-64 has ~450 entries; exact count from the symbol size)',
  },
  { name: 'ia32_sys_call_table', ctype: ['sys_call_ptr_t[]', 'void *[]'], maxLength: 1024, optional: true, why: 'compat syscall hook check' },
  { name: 'idt_table', ctype: ['gate_desc[256]', 'struct gate_struct[256]'], why: 'interrupt descriptor table check' },
  { name: 'iomem_resource', ctype: 'struct resource', why: 'physical memory map' },
  { name: 'tcp_hashinfo', ctype: 'struct inet_hashinfo', optional: true, why: 'TCP sockets (global hash)' },
  { name: 'udp_table', ctype: 'struct udp_table', optional: true, why: 'UDP sockets' },
  { name: 'inet_protos', ctype: 'struct net_protocol *[256]', optional: true, why: 'protocol handler hook check' },
  { name: 'net_families', ctype: 'struct net_proto_family *[]', maxLength: 64, optional: true, why: 'socket family hook check' },
  { name: 'chrdevs', ctype: 'struct char_device_struct *[255]', optional: true, why: 'character devices' },
  { name: 'vmap_area_list', ctype: 'struct list_head', optional: true, why: 'vmalloc areas (removed in 6.9)' },
  { name: 'current_task', ctype: 'struct task_struct *', percpu: true, optional: true, why: 'running task per CPU (before pcpu_hot)' },
  { name: 'pcpu_hot', ctype: 'struct pcpu_hot', percpu: true, optional: true, why: 'running task per CPU (6.2+)' },
  { name: 'runqueues', ctype: 'struct rq', percpu: true, why: 'scheduler run queues' },
];

/**
 * A symbol table: the kallsyms SymbolTable (whose `address` throws when
 * absent and `tryAddress` does not) or an ISF's symbols.
 */
export interface SymbolLookup {
  address(name: string): bigint | undefined;
  tryAddress?(name: string): bigint | undefined;
}

/** The address of `name`, or undefined when the table lacks it. */
export function lookupSymbol(symbols: SymbolLookup, name: string): bigint | undefined {
  return symbols.tryAddress ? symbols.tryAddress(name) : symbols.address(name);
}

const BY_NAME = new Map(KERNEL_GLOBALS.map((g) => [g.name, g]));

/** The table row for `name`, or undefined. */
export function globalSpec(name: string): GlobalSpec | undefined {
  return BY_NAME.get(name);
}

export interface GlobalTypeOptions {
  /** Byte size of the symbol (e.g. distance to the next symbol), for `T[]` types. */
  symbolSize?: number;
}

/**
 * The type of global `name`: from the table, else from a BTF VAR (per-CPU
 * variables). Throws ProfileError when neither knows it or its type is missing.
 */
export function globalType(db: TypeDb, name: string, opts: GlobalTypeOptions = {}): TypeId {
  const spec = BY_NAME.get(name);
  if (spec) return typeFromSpec(db, spec, opts);
  const v = db.find(name, ['var']);
  if (v && v.kind === 'var') return v.type;
  throw new ProfileError(`the type of global '${name}' is unknown: it is not in the globals table and BTF has no VAR for it`, {
    symbol: name,
    tried: [db.source, 'globals table'],
    hint: 'add it to KERNEL_GLOBALS in src/profile/globals.ts',
  });
}

/**
 * A typed reference to global `name` at its symbol address.
 * @param symbols kallsyms (or ISF) symbol table
 */
export function globalRef(
  typed: Typed,
  symbols: SymbolLookup,
  name: string,
  opts: GlobalTypeOptions = {},
): ObjRef {
  const va = lookupSymbol(symbols, name);
  if (va === undefined) throw new ProfileError(`symbol ${name} is not in the symbol table`, { symbol: name, tried: ['kallsyms'] });
  return typed.obj(globalType(typed.db, name, opts), va);
}

export interface GlobalsReport {
  /** Globals whose type resolved. */
  readonly ok: readonly string[];
  /** Globals whose type did not: the type missing from this profile, and whether it matters. */
  readonly missing: readonly { name: string; ctype: string; optional: boolean; reason: string }[];
}

/** Checks every table row against the profile's types. */
export function validateGlobals(db: TypeDb, specs: readonly GlobalSpec[] = KERNEL_GLOBALS): GlobalsReport {
  const ok: string[] = [];
  const missing: { name: string; ctype: string; optional: boolean; reason: string }[] = [];
  for (const spec of specs) {
    try {
      typeFromSpec(db, spec, {});
      ok.push(spec.name);
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      const ctypes = typeof spec.ctype === 'string' ? [spec.ctype] : spec.ctype;
      missing.push({ name: spec.name, ctype: ctypes.join(' | '), optional: spec.optional === true, reason: e.message });
    }
  }
  return { ok, missing };
}

function typeFromSpec(db: TypeDb, spec: GlobalSpec, opts: GlobalTypeOptions): TypeId {
  const ctypes = typeof spec.ctype === 'string' ? [spec.ctype] : spec.ctype;
  let last: ProfileError | undefined;
  for (const ctype of ctypes) {
    try {
      if (ctype.endsWith('[]')) {
        const elem = db.parse(ctype.slice(0, -2));
        const elemSize = db.sizeOf(elem);
        const bound = spec.maxLength ?? 1;
        const n = opts.symbolSize !== undefined && elemSize > 0 ? Math.min(bound, Math.floor(opts.symbolSize / elemSize)) : bound;
        return db.arrayOf(elem, n);
      }
      return db.parse(ctype);
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      last = e;
    }
  }
  throw new ProfileError(`global '${spec.name}' needs type ${ctypes.join(' or ')}, which ${db.source} does not define`, {
    symbol: spec.name,
    type: ctypes[0]!,
    tried: [db.source],
    cause: last,
  });
}
