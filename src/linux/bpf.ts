/**
 * eBPF objects the kernel holds (kernel/bpf/syscall.c): every loaded program,
 * map and link is allocated an id in `prog_idr`, `map_idr` and `link_idr`
 * (the ids `bpftool prog|map|link show` list). The idr walks are bounded and
 * cycle-checked (walk/xarray.ts); each object's own id must equal the id it
 * is filed under, and a program's aux must point back at it, else the entry
 * is reported as an anomaly (a forged or stale slot) and still shown.
 */
import { gva } from '../core/address.js';
import { FaultError, ShortReadError } from '../core/errors.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { isKernelPointer, WalkBudget } from './walk/common.js';
import { idrForEach } from './walk/idr.js';

/** Most objects of each kind walked (ids are 31-bit; a real system holds hundreds). */
export const MAX_BPF_OBJECTS = 65_536;
/** MAX_USED_MAPS in include/linux/bpf.h: a program references at most 64 maps. */
const MAX_USED_MAPS = 64;

export interface BpfProgInfo {
  readonly address: bigint;
  readonly id: number;
  /** bpftool's name for the type: `enum bpf_prog_type` without `BPF_PROG_TYPE_`, lower case. */
  readonly type: string;
  readonly name: string;
  /** The kernel's tag of the instructions (bpftool `tag`), 16 hex digits. */
  readonly tag: string;
  /** Instructions after verification (bpftool `bytes_xlated` / 8). */
  readonly insns: number;
  /** Bytes of JIT code (0 when not JITed). */
  readonly jitedBytes: number;
  /** Address of the JIT image (what runs). */
  readonly func: bigint;
  readonly mapIds: number[];
  /** The kernel function a tracing/LSM/extension program attaches to, when it has one. */
  readonly attachTo: string | undefined;
  readonly uid: number | undefined;
  /** Load time, ns since boot (ktime_get_boottime_ns). */
  readonly loadNs: bigint;
}

export interface BpfMapInfo {
  readonly address: bigint;
  readonly id: number;
  readonly type: string;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
}

export interface BpfLinkInfo {
  readonly address: bigint;
  readonly id: number;
  readonly type: string;
  /** Id of the linked program: null when the link holds none, undefined when it is unreadable (an anomaly says why). */
  readonly progId: number | null | undefined;
}

/** `BPF_PROG_TYPE_SOCKET_FILTER` → `socket_filter` (the names bpftool prints). */
export function bpfTypeName(enumerator: string | undefined, prefix: string, raw: bigint): string {
  if (enumerator === undefined) return `unknown(${raw})`;
  return enumerator.replace(prefix, '').replace(/_DEPRECATED$/, '').toLowerCase();
}

const hex8 = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A char[16] name up to its NUL, printable ASCII only (guest bytes are untrusted). */
function objName(v: ObjValue, path: string): string {
  return v.str(path).replace(/[^\x20-\x7e]/g, '?');
}

/** Reads one object; undefined after a 'fault' anomaly. */
function readObj(kernel: Kernel, type: string, va: bigint, where: string, anomalies: AnomalySink): ObjValue | undefined {
  try {
    return kernel.typed.obj(type, va).read();
  } catch (e) {
    if (!(e instanceof FaultError) && !(e instanceof ShortReadError)) throw e;
    anomalies.add({ kind: 'fault', where, address: va, detail: `${type}: ${(e as Error).message}` });
    return undefined;
  }
}

/** The idr entries of `symbol` that look like kernel pointers. */
function* idrObjects(kernel: Kernel, symbol: string, anomalies: AnomalySink, budget: WalkBudget): Generator<{ id: number; va: bigint }> {
  let n = 0;
  for (const { id, entry } of idrForEach(kernel.typed, kernel.symbol(symbol), { anomalies, where: symbol, budget })) {
    if (++n > MAX_BPF_OBJECTS) {
      anomalies.add({ kind: 'limit', where: symbol, detail: `stopped after ${MAX_BPF_OBJECTS} objects` });
      return;
    }
    if (!isKernelPointer(entry)) {
      anomalies.add({ kind: 'bad-pointer', where: symbol, address: entry, detail: `id ${id}: entry 0x${entry.toString(16)} is not a kernel pointer` });
      continue;
    }
    yield { id: Number(id), va: entry };
  }
}

function checkId(where: string, va: bigint, filed: number, own: number, anomalies: AnomalySink): void {
  if (filed !== own) anomalies.add({ kind: 'invalid', where, address: va, detail: `filed under id ${filed} but says id ${own}` });
}

/** The maps a program uses, by id (bounded by MAX_USED_MAPS). */
function usedMapIds(kernel: Kernel, aux: ObjValue, anomalies: AnomalySink): number[] {
  const count = aux.u32('used_map_cnt');
  const array = aux.ptr('used_maps');
  if (count === 0 || array === 0n) return [];
  if (count > MAX_USED_MAPS) {
    anomalies.add({ kind: 'invalid', where: 'bpf_prog_aux.used_maps', address: aux.address, detail: `used_map_cnt ${count} exceeds ${MAX_USED_MAPS}` });
    return [];
  }
  const idOff = BigInt(kernel.types.offsetOf('bpf_map', 'id'));
  const ids: number[] = [];
  try {
    const ptrs = kernel.space.read(gva(array), count * 8);
    const dv = new DataView(ptrs.buffer, ptrs.byteOffset, count * 8);
    for (let i = 0; i < count; i++) {
      const m = dv.getBigUint64(i * 8, true);
      if (!isKernelPointer(m)) {
        anomalies.add({ kind: 'bad-pointer', where: 'bpf_prog_aux.used_maps', address: array + BigInt(i * 8), detail: `map pointer 0x${m.toString(16)}` });
        continue;
      }
      ids.push(kernel.space.readU32(m + idOff));
    }
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'bpf_prog_aux.used_maps', address: array, detail: e.message });
  }
  return ids;
}

/** A C string through a pointer, bounded and printable; undefined when unreadable. */
function cString(kernel: Kernel, va: bigint, max = 128): string | undefined {
  if (!isKernelPointer(va & ~7n) || va === 0n) return undefined;
  try {
    const b = kernel.space.read(gva(va), max);
    const end = b.indexOf(0);
    return Buffer.from(b.subarray(0, end < 0 ? max : end)).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    return undefined;
  }
}

/** Every program in prog_idr, in id order. */
export function* bpfPrograms(kernel: Kernel, anomalies: AnomalySink, budget = new WalkBudget()): Generator<BpfProgInfo> {
  const hasUser = kernel.typed.has('bpf_prog_aux', 'user');
  for (const { id, va } of idrObjects(kernel, 'prog_idr', anomalies, budget)) {
    const prog = readObj(kernel, 'bpf_prog', va, 'prog_idr', anomalies);
    if (!prog) continue;
    const auxVa = prog.ptr('aux');
    const aux = isKernelPointer(auxVa) ? readObj(kernel, 'bpf_prog_aux', auxVa, 'bpf_prog.aux', anomalies) : undefined;
    if (!aux) {
      if (!isKernelPointer(auxVa)) anomalies.add({ kind: 'bad-pointer', where: 'bpf_prog.aux', address: va, detail: `aux 0x${auxVa.toString(16)}` });
      continue;
    }
    checkId('prog_idr', va, id, aux.u32('id'), anomalies);
    if (aux.ptr('prog') !== va) anomalies.add({ kind: 'broken-link', where: 'bpf_prog_aux.prog', address: auxVa, detail: `points at 0x${aux.ptr('prog').toString(16)}, not its program 0x${va.toString(16)}` });
    let uid: number | undefined;
    if (hasUser) {
      const user = aux.ptr('user');
      if (isKernelPointer(user)) {
        try {
          uid = kernel.typed.obj('user_struct', user).field('uid.val').u32();
        } catch (e) {
          if (!(e instanceof FaultError)) throw e;
          anomalies.add({ kind: 'fault', where: 'bpf_prog_aux.user', address: user, detail: e.message });
        }
      }
    }
    const len = prog.u32('len');
    yield {
      address: va,
      id,
      type: bpfTypeName(prog.enumName('type'), 'BPF_PROG_TYPE_', prog.int('type')),
      name: objName(aux, 'name'),
      tag: hex8(prog.raw('tag')),
      insns: len,
      jitedBytes: prog.bits('jited') ? prog.u32('jited_len') : 0,
      func: prog.ptr('bpf_func'),
      mapIds: usedMapIds(kernel, aux, anomalies),
      attachTo: cString(kernel, aux.ptr('attach_func_name')),
      uid,
      loadNs: aux.u64('load_time'),
    };
  }
}

/** Every map in map_idr, in id order. */
export function* bpfMaps(kernel: Kernel, anomalies: AnomalySink, budget = new WalkBudget()): Generator<BpfMapInfo> {
  for (const { id, va } of idrObjects(kernel, 'map_idr', anomalies, budget)) {
    const m = readObj(kernel, 'bpf_map', va, 'map_idr', anomalies);
    if (!m) continue;
    checkId('map_idr', va, id, m.u32('id'), anomalies);
    yield {
      address: va,
      id,
      type: bpfTypeName(m.enumName('map_type'), 'BPF_MAP_TYPE_', m.int('map_type')),
      name: objName(m, 'name'),
      keySize: m.u32('key_size'),
      valueSize: m.u32('value_size'),
      maxEntries: m.u32('max_entries'),
      flags: m.u32('map_flags'),
    };
  }
}

/** Every link in link_idr (kernels since 5.8), in id order; nothing when the kernel has none. */
export function* bpfLinks(kernel: Kernel, anomalies: AnomalySink, budget = new WalkBudget()): Generator<BpfLinkInfo> {
  if (!kernel.hasSymbol('link_idr') || !kernel.typed.has('bpf_link')) return;
  const auxOff = BigInt(kernel.types.offsetOf('bpf_prog', 'aux'));
  const idOff = BigInt(kernel.types.offsetOf('bpf_prog_aux', 'id'));
  for (const { id, va } of idrObjects(kernel, 'link_idr', anomalies, budget)) {
    const l = readObj(kernel, 'bpf_link', va, 'link_idr', anomalies);
    if (!l) continue;
    checkId('link_idr', va, id, l.u32('id'), anomalies);
    let progId: number | null | undefined;
    const prog = l.ptr('prog');
    if (prog === 0n) progId = null;
    else if (!isKernelPointer(prog)) anomalies.add({ kind: 'bad-pointer', where: 'bpf_link.prog', address: va, detail: `0x${prog.toString(16)} is not a kernel pointer` });
    else {
      try {
        progId = kernel.space.readU32(kernel.space.readU64(prog + auxOff) + idOff);
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
        anomalies.add({ kind: 'fault', where: 'bpf_link.prog', address: prog, detail: e.message });
      }
    }
    yield { address: va, id, type: bpfTypeName(l.enumName('type'), 'BPF_LINK_TYPE_', l.int('type')), progId };
  }
}
