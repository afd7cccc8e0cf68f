/**
 * TTY drivers and their open ttys (include/linux/tty_driver.h, tty.h): the
 * `tty_drivers` list of struct tty_driver, each driver's `ttys[]` table, and
 * the operation tables a rootkit overwrites to sniff or hide keystrokes
 * (struct tty_operations of a driver and of each tty, struct tty_ldisc_ops
 * of each tty's line discipline). Every walk is bounded; each function
 * pointer comes with where it came from, for the caller to classify.
 */
import { gva } from '../core/address.js';
import { FaultError } from '../core/errors.js';
import type { ObjValue } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { classifyAddress, symbolize, type EntryVerdict, type TextClassifier } from './integrity.js';
import { readKernelString } from './kstring.js';
import { listForEachEntry } from './walk/list.js';
import { hex, isKernelPointer } from './walk/common.js';

/** Most drivers walked (a system has a dozen). */
export const MAX_TTY_DRIVERS = 256;
/** Most table slots read per driver (serial has 32, vt 63; devpts drivers have no table). */
export const MAX_TTY_LINES = 4096;

export interface TtyDriverInfo {
  readonly address: bigint;
  /** driver_name ("serial", "pty_master"); /proc/tty/drivers prints "unknown" for none. */
  readonly driverName: string | undefined;
  /** Device name prefix ("ttyS", "pts"). */
  readonly name: string;
  readonly major: number;
  readonly minorStart: number;
  readonly num: number;
  /** The driver's struct tty_operations *. */
  readonly ops: bigint;
  /** struct tty_struct * of each allocated line, with its index. */
  readonly ttys: readonly { index: number; address: bigint }[];
}

/** One non-NULL function pointer of an operations table. */
export interface OpsPointer {
  /** 'tty_operations' or 'tty_ldisc_ops'. */
  readonly table: string;
  /** Address of the table. */
  readonly tableAddress: bigint;
  readonly member: string;
  readonly address: bigint;
}

function str(kernel: Kernel, va: bigint, anomalies: AnomalySink, where: string): string | undefined {
  if (va === 0n) return undefined;
  if (!isKernelPointer(va & ~7n)) {
    anomalies.add({ kind: 'bad-pointer', where, address: va, detail: 'string pointer is not a kernel pointer' });
    return undefined;
  }
  try {
    return readKernelString(kernel.typed.mem, va, 64).text;
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where, address: va, detail: e.message });
    return undefined;
  }
}

/** The registered tty drivers, in list order (the order of /proc/tty/drivers). */
export function* ttyDrivers(kernel: Kernel, anomalies: AnomalySink): Generator<TtyDriverInfo> {
  const head = kernel.symbol('tty_drivers');
  for (const ref of listForEachEntry(kernel.typed, head, 'tty_driver', 'tty_drivers', { anomalies, limit: MAX_TTY_DRIVERS })) {
    let d: ObjValue;
    try {
      d = ref.read({ copy: true });
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where: 'tty_driver', address: ref.address, detail: e.message });
      continue;
    }
    const num = d.num('num');
    const table = d.ptr('ttys');
    const ttys: { index: number; address: bigint }[] = [];
    if (table !== 0n && num > 0) {
      let lines = num;
      if (lines > MAX_TTY_LINES) {
        anomalies.add({ kind: 'limit', where: 'tty_driver.ttys', address: ref.address, detail: `${num} lines, only the first ${MAX_TTY_LINES} read` });
        lines = MAX_TTY_LINES;
      }
      if (!isKernelPointer(table)) anomalies.add({ kind: 'bad-pointer', where: 'tty_driver.ttys', address: table, detail: `of driver at ${hex(ref.address)}` });
      else {
        const bytes = new Uint8Array(lines * 8);
        const failures = kernel.space.readv([{ va: gva(table), len: bytes.length, dst: bytes }]);
        for (const f of failures) anomalies.add({ kind: 'fault', where: 'tty_driver.ttys', address: f.va, detail: f.reason });
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i < lines; i++) {
          const slot = table + BigInt(i * 8);
          if (failures.some((f) => slot >= f.va && slot < f.va + BigInt(f.len))) continue;
          const t = dv.getBigUint64(i * 8, true);
          if (t === 0n) continue;
          if (!isKernelPointer(t)) anomalies.add({ kind: 'bad-pointer', where: 'tty_driver.ttys', address: t, detail: `line ${i} of driver at ${hex(ref.address)}` });
          else ttys.push({ index: i, address: t });
        }
      }
    }
    yield {
      address: ref.address,
      driverName: str(kernel, d.ptr('driver_name'), anomalies, 'tty_driver.driver_name'),
      name: str(kernel, d.ptr('name'), anomalies, 'tty_driver.name') ?? '?',
      major: d.num('major'),
      minorStart: d.num('minor_start'),
      num,
      ops: d.ptr('ops'),
      ttys,
    };
  }
}

/** Function-pointer members of a struct (members whose type is a pointer to a function), by name. */
export function functionPointerMembers(kernel: Kernel, struct: string): { name: string; offset: number }[] {
  const db = kernel.types;
  const out: { name: string; offset: number }[] = [];
  for (const m of db.composite(struct).members) {
    if (!m.name || m.bitSize) continue;
    const t = db.resolve(m.type);
    if (t.kind !== 'pointer') continue;
    const target = db.resolve(t.target);
    if (target.kind === 'func_proto' || target.kind === 'func') out.push({ name: m.name, offset: m.bitOffset / 8 });
  }
  return out;
}

/** The non-NULL function pointers of the operations table of type `struct` at `va` (one read). */
export function opsPointers(kernel: Kernel, struct: string, va: bigint, anomalies: AnomalySink): OpsPointer[] {
  if (va === 0n) return [];
  if (!isKernelPointer(va)) {
    anomalies.add({ kind: 'bad-pointer', where: struct, address: va, detail: 'operations table pointer is not a kernel pointer' });
    return [];
  }
  let bytes: Uint8Array;
  try {
    bytes = kernel.typed.mem.read(va, kernel.types.sizeOf(kernel.typed.typeId(struct)));
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: struct, address: va, detail: e.message });
    return [];
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: OpsPointer[] = [];
  for (const m of functionPointerMembers(kernel, struct)) {
    if (m.offset + 8 > bytes.length) continue;
    const address = dv.getBigUint64(m.offset, true);
    if (address !== 0n) out.push({ table: struct, tableAddress: va, member: m.name, address });
  }
  return out;
}

export interface TtyInfo {
  readonly address: bigint;
  readonly name: string;
  /** The tty's own struct tty_operations * (normally its driver's). */
  readonly ops: bigint;
  /** struct tty_ldisc_ops * of its line discipline (0 when it has none). */
  readonly ldiscOps: bigint;
}

/** The fields of an open tty that tty_check needs; undefined (after an anomaly) when unreadable. */
export function readTty(kernel: Kernel, va: bigint, anomalies: AnomalySink): TtyInfo | undefined {
  try {
    const t = kernel.typed.obj('tty_struct', va).read({ copy: true });
    const ldisc = t.ptr('ldisc');
    let ldiscOps = 0n;
    if (ldisc !== 0n) {
      if (!isKernelPointer(ldisc)) anomalies.add({ kind: 'bad-pointer', where: 'tty_struct.ldisc', address: ldisc, detail: `of tty at ${hex(va)}` });
      else ldiscOps = kernel.typed.obj('tty_ldisc', ldisc).field('ops').ptr();
    }
    return { address: va, name: t.str('name'), ops: t.ptr('ops'), ldiscOps };
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: 'tty_struct', address: va, detail: e.message });
    return undefined;
  }
}

export interface TtyOpsEntry extends OpsPointer {
  /** driver_name, else the device prefix. */
  readonly driver: string;
  readonly major: number;
  /** The tty the table belongs to; undefined for the driver's own tty_operations. */
  readonly tty: string | undefined;
  readonly symbol: string | undefined;
  readonly verdict: EntryVerdict;
  readonly module: string | undefined;
}

/**
 * Every operation pointer of every tty driver and open tty, classified:
 * the driver's tty_operations, each open tty's own tty_operations when it
 * differs from its driver's, and each open tty's tty_ldisc_ops.
 */
export function* checkTtyOps(
  kernel: Kernel,
  classify: TextClassifier,
  anomalies: AnomalySink,
  moduleSymbol?: (va: bigint) => string | undefined,
): Generator<TtyOpsEntry> {
  const entry = (d: TtyDriverInfo, tty: string | undefined, p: OpsPointer): TtyOpsEntry => {
    const { verdict, module } = classifyAddress(classify, p.address);
    return { ...p, driver: d.driverName ?? d.name, major: d.major, tty, symbol: symbolize(kernel.symbols, p.address, moduleSymbol), verdict, module };
  };
  for (const d of ttyDrivers(kernel, anomalies)) {
    for (const p of opsPointers(kernel, 'tty_operations', d.ops, anomalies)) yield entry(d, undefined, p);
    for (const slot of d.ttys) {
      const t = readTty(kernel, slot.address, anomalies);
      if (!t) continue;
      if (t.ops !== d.ops) for (const p of opsPointers(kernel, 'tty_operations', t.ops, anomalies)) yield entry(d, t.name, p);
      for (const p of opsPointers(kernel, 'tty_ldisc_ops', t.ldiscOps, anomalies)) yield entry(d, t.name, p);
    }
  }
}
