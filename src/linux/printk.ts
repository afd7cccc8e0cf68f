/**
 * The kernel log from guest memory: the lockless printk ring buffer (`prb`,
 * Linux kernel commit 896fbe20b4e2 ("printk: use the lockless ringbuffer") (in
 * v5.10)). Re-implements the reader side of kernel/printk/printk_ringbuffer.c:
 * desc_read() + get_data(), for every record whose descriptor is committed or
 * finalized — the newest record stays "committed" until the next one arrives,
 * and the kernel's own readers would skip it; we do not.
 *
 * Layout (all from BTF):
 *   struct printk_ringbuffer { struct prb_desc_ring desc_ring; struct prb_data_ring text_data_ring; ... }
 *   struct prb_desc_ring { unsigned int count_bits; struct prb_desc *descs; struct printk_info *infos; atomic_long_t head_id, tail_id; }
 *   struct prb_desc { atomic_long_t state_var; struct prb_data_blk_lpos text_blk_lpos { begin, next }; }
 *   struct prb_data_ring { unsigned int size_bits; char *data; atomic_long_t head_lpos, tail_lpos; }
 *   data block: { unsigned long id; char data[]; }
 *
 * The three arrays are read in one batch each (about 1 MiB on a default
 * config) and decoded in place; every guest length is bounded.
 */
import { ProfileError } from '../core/errors.js';
import { ObjValue, ObjValue as Value } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { gva } from '../core/address.js';

export interface LogRecord {
  /** Sequence number (printk_info.seq). */
  readonly seq: bigint;
  /** Nanoseconds since boot (local_clock at printk time). */
  readonly tsNsec: bigint;
  /** Log level 0..7 (KERN_EMERG..KERN_DEBUG). */
  readonly level: number;
  readonly facility: number;
  /** caller_id: a thread id, or a CPU number when `callerIsCpu`. */
  readonly caller: number;
  readonly callerIsCpu: boolean;
  /** Message text (may hold several lines, as the kernel stored it). */
  readonly text: string;
  /** 'finalized' or 'committed' (the newest record is usually committed). */
  readonly state: 'committed' | 'finalized';
  /** Address of the descriptor. */
  readonly descAddress: bigint;
}

/** desc state in the two top bits of state_var: Linux's enum desc_state. */
const DESC_STATE = ['reserved', 'committed', 'finalized', 'reusable'] as const;
const DESC_SV_STATE_SHIFT = 62n;
const DESC_ID_MASK = (1n << 62n) - 1n;
/**
 * Bounds on guest-supplied sizes. The kernel sizes the text ring by
 * log_buf_len (CONFIG_LOG_BUF_SHIFT ≤ 25, larger only by boot parameter) and
 * the descriptor ring at one descriptor per 32 text bytes (PRB_AVGBITS 5).
 */
const MAX_COUNT_BITS = 21;
const MAX_SIZE_BITS = 27;

/** Descriptors a live reader may find recycled under it before it calls them an anomaly (the tail moving on). */
const MAX_RECYCLED_WHILE_READ = 4;

/** Decodes a descriptor's state_var: Linux's DESC_STATE() and DESC_ID(). */
export function decodeStateVar(sv: bigint): { state: (typeof DESC_STATE)[number]; id: bigint } {
  const u = BigInt.asUintN(64, sv);
  return { state: DESC_STATE[Number(u >> DESC_SV_STATE_SHIFT)]!, id: u & DESC_ID_MASK };
}

/**
 * Where a record's text lies in the data ring: Linux's get_data(). Returns the
 * byte offset of the data block and its length (including the leading id word),
 * or undefined for a data-less block or an impossible position.
 * @param begin text_blk_lpos.begin  @param next text_blk_lpos.next  @param size data ring size in bytes
 */
export function dataBlock(begin: bigint, next: bigint, size: bigint): { offset: number; len: number } | undefined {
  if ((begin & 1n) !== 0n || (next & 1n) !== 0n) return undefined; // LPOS_DATALESS
  const wraps = (lpos: bigint): bigint => lpos / size;
  if (wraps(begin) === wraps(next)) {
    if (next < begin) return undefined;
    return { offset: Number(begin % size), len: Number(next - begin) };
  }
  // The block did not fit at the end of the ring: it starts at offset 0 of the next wrap.
  if (wraps(begin + size) === wraps(next)) return { offset: 0, len: Number(next % size) };
  return undefined;
}

export interface PrintkOptions {
  /** Stop after this many records (newest are kept when limited). */
  readonly limit?: number;
}

/** True when the kernel has the lockless ring buffer. */
export function hasPrintkRingbuffer(kernel: Kernel): boolean {
  return kernel.hasSymbol('prb') && kernel.types.hasType('printk_ringbuffer', 'struct');
}

/**
 * Every readable record of the printk ring buffer, oldest first.
 * @param kernel the attached kernel (needs symbol `prb`, type printk_ringbuffer)
 */
export function readPrintkRingbuffer(kernel: Kernel, anomalies: AnomalySink, opts: PrintkOptions = {}): LogRecord[] {
  const { typed, space } = kernel;
  const prbPtr = space.readPointer(kernel.symbol('prb'));
  const rb = typed.obj('printk_ringbuffer', prbPtr).read({ copy: true });
  const countBits = rb.num('desc_ring.count_bits');
  const sizeBits = rb.num('text_data_ring.size_bits');
  if (countBits <= 0 || countBits > MAX_COUNT_BITS || sizeBits <= 3 || sizeBits > MAX_SIZE_BITS) {
    anomalies.add({ kind: 'invalid', where: 'printk_ringbuffer', address: prbPtr, detail: `count_bits ${countBits}, size_bits ${sizeBits}` });
    return [];
  }
  const count = 1 << countBits;
  const size = 1 << sizeBits;
  const descType = typed.typeId('prb_desc');
  const infoType = typed.typeId('printk_info');
  const descSize = typed.db.sizeOf(descType);
  const infoSize = typed.db.sizeOf(infoType);
  const descsVa = rb.ptr('desc_ring.descs');
  const infosVa = rb.ptr('desc_ring.infos');
  const dataVa = rb.ptr('text_data_ring.data');
  const descs = new Uint8Array(count * descSize);
  const infos = new Uint8Array(count * infoSize);
  const data = new Uint8Array(size);
  const failures = space.readv([
    { va: gva(descsVa), len: descs.length, dst: descs },
    { va: gva(infosVa), len: infos.length, dst: infos },
    { va: gva(dataVa), len: data.length, dst: data },
  ]);
  for (const f of failures) anomalies.add({ kind: 'fault', where: 'printk_ringbuffer', address: f.va, detail: `${f.len} bytes: ${f.reason}` });

  const headId = BigInt.asUintN(64, rb.int('desc_ring.head_id.counter'));
  const tailId = BigInt.asUintN(64, rb.int('desc_ring.tail_id.counter'));
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: LogRecord[] = [];
  // Walk ids tail..head; ids wrap within DESC_ID_MASK, and at most `count` descriptors exist.
  let span = (headId - tailId) & DESC_ID_MASK;
  if (span >= BigInt(count)) {
    anomalies.add({ kind: 'invalid', where: 'printk_ringbuffer.desc_ring', address: prbPtr, detail: `head_id ${headId} - tail_id ${tailId} exceeds ${count} descriptors` });
    span = BigInt(count - 1);
  }
  const first = (headId - span) & DESC_ID_MASK;
  const n = Number(span) + 1;
  // A descriptor that does not hold its id was recycled while we read (the writer moving the tail: a few at
  // most) or is corrupt; more than a few are said, not skipped silently.
  let foreign = 0;
  let firstForeign: bigint | undefined;
  for (let k = 0; k < n; k++) {
    const id = (first + BigInt(k)) & DESC_ID_MASK;
    const idx = Number(id & BigInt(count - 1));
    const desc = new Value(typed, descType, descsVa + BigInt(idx * descSize), descs.subarray(idx * descSize, (idx + 1) * descSize));
    const sv = decodeStateVar(desc.int('state_var.counter'));
    if (sv.id !== id) {
      foreign++;
      firstForeign ??= desc.address;
      continue;
    }
    if (sv.state !== 'committed' && sv.state !== 'finalized') continue; // reserved (being written) or reusable
    const info = new Value(typed, infoType, infosVa + BigInt(idx * infoSize), infos.subarray(idx * infoSize, (idx + 1) * infoSize));
    const rec = decodeRecord(desc, info, data, dv, BigInt(size), id, sv.state, anomalies);
    if (rec) out.push(rec);
  }
  if (foreign > MAX_RECYCLED_WHILE_READ) {
    anomalies.add({ kind: 'invalid', where: 'printk_ringbuffer.desc_ring', address: firstForeign, detail: `${foreign} of ${n} descriptors between tail and head do not hold their id (overwritten, or corrupt)` });
  }
  return opts.limit !== undefined && out.length > opts.limit ? out.slice(out.length - opts.limit) : out;
}

function decodeRecord(
  desc: ObjValue,
  info: ObjValue,
  data: Uint8Array,
  dv: DataView,
  size: bigint,
  id: bigint,
  state: 'committed' | 'finalized',
  anomalies: AnomalySink,
): LogRecord | undefined {
  const textLen = info.num('text_len');
  const blk = dataBlock(BigInt.asUintN(64, desc.int('text_blk_lpos.begin')), BigInt.asUintN(64, desc.int('text_blk_lpos.next')), size);
  let text = '';
  if (blk && textLen > 0) {
    if (blk.len < 8 || blk.offset + blk.len > data.length) {
      anomalies.add({ kind: 'invalid', where: 'printk_ringbuffer.text_data_ring', address: desc.address, detail: `block of ${blk.len} bytes at ${blk.offset}` });
      return undefined;
    }
    const blockId = dv.getBigUint64(blk.offset, true);
    if ((blockId & DESC_ID_MASK) !== id) return undefined; // the text was already overwritten
    const n = Math.min(textLen, blk.len - 8);
    if (n < textLen) anomalies.add({ kind: 'truncated', where: 'printk_info.text_len', address: info.address, detail: `${textLen} > block ${blk.len - 8}` });
    text = Buffer.from(data.buffer, data.byteOffset + blk.offset + 8, n).toString('utf8');
  }
  const callerId = info.num('caller_id');
  return {
    seq: BigInt.asUintN(64, info.int('seq')),
    tsNsec: BigInt.asUintN(64, info.int('ts_nsec')),
    level: Number(info.bits('level')),
    facility: info.num('facility'),
    caller: callerId & 0x7fffffff,
    callerIsCpu: (callerId & 0x80000000) !== 0,
    text,
    state,
    descAddress: desc.address,
  };
}

/**
 * The pre-5.10 log: `log_buf` of `struct printk_log` records (ts_nsec, len,
 * text_len, dict_len, facility, flags:5, level:3) followed by text, from
 * `log_first_idx` to `log_next_idx`, a record with len 0 meaning "wrap to 0".
 */
export function readLegacyLogBuf(kernel: Kernel, anomalies: AnomalySink): LogRecord[] {
  const { space, typed } = kernel;
  const buf = space.readPointer(kernel.symbol('log_buf'));
  const len = space.readU32(kernel.symbol('log_buf_len'));
  if (len <= 0 || len > 1 << MAX_SIZE_BITS) {
    anomalies.add({ kind: 'invalid', where: 'log_buf_len', detail: String(len) });
    return [];
  }
  const first = space.readU32(kernel.symbol('log_first_idx'));
  const next = space.readU32(kernel.symbol('log_next_idx'));
  let seq = space.readU64(kernel.symbol('log_first_seq'));
  const bytes = new Uint8Array(len);
  for (const f of space.readv([{ va: gva(buf), len, dst: bytes }])) anomalies.add({ kind: 'fault', where: 'log_buf', address: f.va, detail: f.reason });
  const type = typed.typeId('printk_log');
  const hdr = typed.db.sizeOf(type);
  const out: LogRecord[] = [];
  let idx = first;
  let wrapped = false;
  for (let guard = 0; guard < len / 8 && idx !== next; guard++) {
    if (idx + hdr > len) {
      anomalies.add({ kind: 'invalid', where: 'printk_log', address: buf + BigInt(idx), detail: 'header past log_buf end' });
      break;
    }
    const v = new Value(typed, type, buf + BigInt(idx), bytes.subarray(idx, idx + hdr));
    const recLen = v.num('len');
    if (recLen === 0) {
      if (wrapped) break;
      wrapped = true;
      idx = 0;
      continue;
    }
    const textLen = v.num('text_len');
    if (recLen < hdr || idx + recLen > len || hdr + textLen > recLen) {
      anomalies.add({ kind: 'invalid', where: 'printk_log', address: v.address, detail: `len ${recLen} text_len ${textLen}` });
      break;
    }
    out.push({
      seq: seq++,
      tsNsec: BigInt.asUintN(64, v.int('ts_nsec')),
      level: Number(v.bits('level')),
      facility: v.num('facility'),
      caller: 0,
      callerIsCpu: false,
      text: Buffer.from(bytes.buffer, bytes.byteOffset + idx + hdr, textLen).toString('utf8'),
      state: 'finalized',
      descAddress: v.address,
    });
    idx += recLen;
  }
  return out;
}

/** The kernel log by whichever format this kernel has (chosen by presence, R8). */
export function readKernelLog(kernel: Kernel, anomalies: AnomalySink, opts: PrintkOptions = {}): LogRecord[] {
  if (hasPrintkRingbuffer(kernel)) return readPrintkRingbuffer(kernel, anomalies, opts);
  if (kernel.hasSymbol('log_buf') && kernel.types.hasType('printk_log', 'struct')) {
    const all = readLegacyLogBuf(kernel, anomalies);
    return opts.limit !== undefined && all.length > opts.limit ? all.slice(all.length - opts.limit) : all;
  }
  throw new ProfileError('this kernel has neither the printk ring buffer (prb) nor log_buf', { symbol: 'prb', tried: [kernel.symbols.source] });
}

/** Formats a record as dmesg does: `[    1.234567] text` per line. */
export function formatDmesg(rec: Pick<LogRecord, 'tsNsec' | 'text'>): string[] {
  const us = rec.tsNsec / 1000n;
  const ts = `[${String(us / 1000000n).padStart(5, ' ')}.${String(us % 1000000n).padStart(6, '0')}]`;
  return rec.text.split('\n').map((l) => `${ts} ${l}`);
}

