/**
 * `vmsight demo`: the main job on the built-in guest. Boots (or reuses) the
 * lab guest `demo`, attaches to it live with no symbol file, and prints the
 * kernel facts and the process list, with the time each step took.
 */
import { labUp } from '../../lab/index.js';
import { attachKernel } from '../../linux/attach.js';
import { runPlugin } from '../../linux/plugin.js';
import { findPlugin } from '../../linux/plugins/index.js';
import type { Command } from '../command.js';
import { monotonicMs } from '../../core/clock.js';

export const command: Command = {
  name: 'demo',
  summary: 'boot the built-in lab guest (if needed) and introspect it live: kernel facts and process list',
  usage: '[--kernel 6.1|5.10|6.12] [--name demo]',
  options: { kernel: { type: 'string' }, name: { type: 'string' } },
  async run(args, ctx) {
    const kernelSpec = typeof args.values['kernel'] === 'string' ? args.values['kernel'] : '6.1';
    const name = typeof args.values['name'] === 'string' ? args.values['name'] : 'demo';
    ctx.out.text(`Booting lab guest '${name}' (Debian kernel ${kernelSpec}) under QEMU, or reusing it if it runs...`);
    const t0 = monotonicMs();
    const guest = await labUp({ name, kernel: kernelSpec, reuse: true });
    ctx.out.text(`Guest up in ${((monotonicMs() - t0) / 1000).toFixed(1)} s (pid ${guest.pid}, RAM ${guest.memoryMiB} MiB in ${guest.shmPath}).\n`);
    const kernel = await attachKernel(`lab:${guest.name}`);
    try {
      const p = kernel.profile;
      const r = kernel.report;
      ctx.out.record({
        source: `lab:${guest.name}`,
        technique: `${r.technique.class} (${r.technique.factory}): ${r.technique.reason}`,
        release: p.release,
        banner: p.banner,
        kaslrShift: p.kaslr.virtualShift,
        physBase: p.kaslr.physBase,
        pagingLevels: p.pagingLevels,
        symbols: `${kernel.symbols.count} (${p.sources['symbols']})`,
        types: `${kernel.types.count} (${p.sources['types']})`,
        attachMs: +r.timings.total.toFixed(1),
      });
      const pslist = findPlugin('pslist');
      if (pslist) {
        ctx.out.text('');
        const res = runPlugin(pslist, kernel);
        ctx.out.rows(pslist.columns, res.rows as Record<string, unknown>[]);
        ctx.out.text(`\n${res.rows.length} processes in ${res.elapsedMs.toFixed(2)} ms. Stop the guest with: vmsight lab down ${guest.name}`);
      }
    } finally {
      await kernel.close();
    }
  },
};
