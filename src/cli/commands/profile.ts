/**
 * `vmsight profile <source>`: what vmsight learned about the kernel and how
 * long each step took. `vmsight profile export <source> --isf FILE` writes
 * the profile as a Volatility 3 ISF.
 */
import { UsageError } from '../../core/errors.js';
import { attachKernel } from '../../linux/attach.js';
import { validateGlobals } from '../../profile/globals.js';
import { exportIsf, writeIsfFileWithProgress } from '../../profile/isf.js';
import type { Command } from '../command.js';
import { attachOptions, attachOptionSpec, requireSource } from './common.js';
import { monotonicMs } from '../../core/clock.js';

export const command: Command = {
  name: 'profile',
  summary: 'build the kernel profile from the guest (vmcoreinfo, kallsyms, BTF); `profile export <source> --isf FILE` writes a Volatility 3 ISF',
  usage: '<source> | export <source> --isf FILE',
  options: { ...attachOptionSpec, isf: { type: 'string' } },
  async run(args, ctx) {
    const exporting = args.positionals[0] === 'export';
    const rest = exporting ? { ...args, positionals: args.positionals.slice(1) } : args;
    const spec = requireSource(rest, exporting ? 'vmsight profile export <source> --isf FILE' : 'vmsight profile <source>');
    const isfPath = args.values['isf'];
    if (exporting && typeof isfPath !== 'string') throw new UsageError('profile export needs --isf FILE');
    const kernel = await attachKernel(spec, attachOptions(rest));
    try {
      const p = kernel.profile;
      const r = kernel.report;
      if (exporting) {
        const t0 = monotonicMs();
        const { isf, stats } = exportIsf(kernel.types, kernel.symbols, { banner: p.banner, shift: p.kaslr.virtualShift });
        await writeIsfFileWithProgress(isfPath as string, isf);
        ctx.out.record({ file: isfPath, banner: p.banner, ...stats, ms: +(monotonicMs() - t0).toFixed(1) });
        return;
      }
      const ks = r.kernelSpace;
      const globals = validateGlobals(kernel.types);
      ctx.out.record({
        release: p.release,
        banner: p.banner,
        buildId: p.buildId,
        technique: `${r.technique.class} (${r.technique.factory})`,
        kaslrVirtualShift: p.kaslr.virtualShift,
        physBase: p.kaslr.physBase,
        pagingLevels: p.pagingLevels,
        dtb: BigInt(ks.dtb),
        directMap: ks.directMapBase,
        symbols: kernel.symbols.count,
        types: kernel.types.count,
        cache: r.cacheHit ? 'hit' : 'miss',
        globals: globals.missing.length
          ? `${globals.ok.length} typed; missing: ${globals.missing.map((m) => `${m.name} (its type ${m.ctype} is not in the types${m.optional ? '; optional' : ''})`).join(', ')}`
          : `${globals.ok.length} typed, none missing`,
        sources: p.sources,
        steps: r.profileSteps.map((s) => `${s.step} ${s.ms.toFixed(1)} ms: ${s.detail}`),
        timings: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, `${v.toFixed(1)} ms`])),
        notes: ks.notes,
      });
    } finally {
      await kernel.close();
    }
  },
};
