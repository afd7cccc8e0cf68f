/**
 * An example watch written against vmsight's public API only: a kernel string that should never change
 * while the system runs — `modprobe_path` (overwriting it is a classic way from a kernel write primitive to
 * root: the kernel then runs the attacker's program as root on the next unknown-binary exec) or
 * `core_pattern`. The string's bytes are one field range in the watch set, so the monitor compares them
 * every tick at the cost of one memcmp, and the watch reads the string only when they changed.
 *
 * @example
 * import { attachKernel, Monitor, JsonlSink } from 'vmsight';
 * import { kernelStringWatch } from './examples/watches/kernel-string.js';
 * const kernel = await attachKernel('k61');
 * const monitor = new Monitor(kernel, { sinks: [new JsonlSink(process.stdout)], customWatches: [kernelStringWatch('modprobe_path')] });
 * await monitor.run();
 */
import type { Watch, WatchContext } from '../../src/index.js';

/** Bytes compared (modprobe_path is KMOD_PATH_LEN = 256, core_pattern CORENAME_MAX_SIZE = 128). */
const MAX = 256;

export function kernelStringWatch(symbol: string, length = MAX): Watch {
  let last: string | undefined;
  const read = (ctx: WatchContext): string | undefined => {
    const pa = ctx.view.pa(ctx.kernel.symbol(symbol));
    const bytes = pa === undefined ? undefined : ctx.view.bytes(pa, length);
    if (!bytes) return undefined;
    const end = bytes.indexOf(0);
    return Buffer.from(bytes.subarray(0, end < 0 ? bytes.length : end)).toString('latin1');
  };
  return {
    name: `string:${symbol}`,
    emits: ['alert'],
    init(ctx) {
      last = read(ctx);
      const pa = ctx.view.pa(ctx.kernel.symbol(symbol));
      if (pa !== undefined) ctx.watchSet.set(this.name, symbol, [{ pa, len: length, kind: 'field' }]);
    },
    update(ctx) {
      const now = read(ctx);
      if (now === undefined || now === last) return;
      ctx.emit({
        type: 'alert',
        watch: this.name,
        key: symbol,
        severity: 'critical',
        before: { [symbol]: last ?? null },
        after: { [symbol]: now },
        data: { rule: `${symbol}-unchanged`, reason: `${symbol} was rewritten in kernel memory` },
      });
      last = now;
    },
  };
}
