/**
 * Walker over include/linux/idr.h: an IDR is an xarray (idr_rt) whose
 * indices are ids minus idr_base. Used for pid namespaces (pid_namespace.idr
 * maps pid numbers to `struct pid *`).
 *
 * @example
 * for (const { id, entry } of idrForEach(kernel.typed, pidNs.addrOf('idr'), { anomalies })) …
 */
import type { Typed } from '../../profile/typed.js';
import { WalkContext, type WalkOptions } from './common.js';
import { xaForEach } from './xarray.js';

export interface IdrEntry {
  readonly id: bigint;
  readonly entry: bigint;
}

/**
 * idr_for_each_entry(): every allocated id and its pointer, in id order.
 * @param idr `struct idr *`
 */
export function* idrForEach(typed: Typed, idr: bigint, opts: WalkOptions = {}): Generator<IdrEntry> {
  const db = typed.db;
  const rt = db.offsetOf('idr', 'idr_rt');
  const baseField = db.tryField('idr', 'idr_base');
  let base = 0n;
  if (baseField) {
    const ctx = new WalkContext(typed, opts.where ?? 'idr', opts);
    const b = ctx.readBytes(idr + BigInt(baseField.offset), 4, 'idr.idr_base');
    if (!b) return;
    base = BigInt(new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true));
  }
  for (const { index, entry } of xaForEach(typed, idr + BigInt(rt), { ...opts, where: opts.where ?? 'idr' })) {
    yield { id: index + base, entry };
  }
}
