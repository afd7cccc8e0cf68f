/**
 * `npm run bench -- [suite...] [--source SPEC] [--kernel 6.1] [--out DIR]`
 * Benchmarks (never tests): each suite prints a table and writes JSON to
 * bench-results/<suite>.json. Without --source a lab guest `bench-<kernel>`
 * is booted (or reused) and stopped afterwards unless --keep is given.
 * Suites: memory (every access technique), translate, profile, plugins, pass, cold (process start per command), monitor, all.
 * The monitor suite alone boots its own guest `benchmon-<kernel>` (it acts inside the guest).
 * `npm run bench -- tradeoffs …` is the VMI trade-off study (its own options: tradeoffs/main.ts).
 */
import { parseArgs } from 'node:util';
import { labDown, labUp, useLabGuests } from '../lab/index.js';
import { describeError } from '../core/errors.js';
import { printTable, writeJson, type BenchTable } from './report.js';

type Suite = (source: string, guestName: string | undefined) => Promise<BenchTable[]>;

const suites: Record<string, Suite> = {
  async memory(source) {
    const { benchMemory } = await import('./memory.js');
    return benchMemory(source);
  },
  async translate(source) {
    const { benchTranslate } = await import('./translate.js');
    return benchTranslate(source);
  },
  async profile(source) {
    const { benchProfile } = await import('./profile.js');
    return [await benchProfile(source)];
  },
  async plugins(source) {
    const { benchPlugins } = await import('./plugins.js');
    return benchPlugins(source);
  },
  async pass(source) {
    const { benchPass } = await import('./pass.js');
    return benchPass(source);
  },
  async cold(source) {
    const { benchCold } = await import('./cold.js');
    return benchCold(source);
  },
  async monitor(source, guestName) {
    const { benchMonitor } = await import('./monitor.js');
    return benchMonitor(source, guestName);
  },
};

// Worker threads (the synchronous bridge behind the debugger stub and monitor reads) refuse
// --expose-gc in their execArgv, which they inherit: nothing here calls gc(), so drop it.
for (let i = process.execArgv.indexOf('--expose-gc'); i >= 0; i = process.execArgv.indexOf('--expose-gc')) process.execArgv.splice(i, 1);

async function run(): Promise<number> {
  if (process.argv[2] === 'tradeoffs') {
    const { runTradeoffs } = await import('./tradeoffs/main.js');
    return runTradeoffs(process.argv.slice(3));
  }
  useLabGuests();
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      kernel: { type: 'string', default: '6.1' },
      out: { type: 'string', default: 'bench-results' },
      keep: { type: 'boolean' },
      debug: { type: 'boolean' },
    },
  });
  const wanted = positionals.length === 0 || positionals.includes('all') ? Object.keys(suites) : positionals;
  for (const s of wanted) if (!suites[s]) throw new Error(`unknown suite '${s}' (have: ${Object.keys(suites).join(', ')}, all)`);
  let source = values.source;
  let guestName: string | undefined;
  if (!source) {
    guestName = wanted.length === 1 && wanted[0] === 'monitor' ? `benchmon-${values.kernel}` : `bench-${values.kernel}`;
    process.stderr.write(`bench: booting (or reusing) lab guest ${guestName}\n`);
    await labUp({ name: guestName, kernel: values.kernel!, reuse: true, gdb: true });
    source = `lab:${guestName}`;
  }
  const meta = { date: new Date().toISOString(), node: process.version, source, cpus: (await import('node:os')).cpus().length };
  try {
    for (const name of wanted) {
      for (const table of await suites[name]!(source, guestName)) {
        printTable(table);
        const path = writeJson(values.out!, table, meta);
        process.stdout.write(`(written to ${path})\n`);
      }
    }
  } finally {
    if (guestName && !values.keep) await labDown(guestName);
  }
  return 0;
}

run().then(
  (code) => process.exit(code),
  (err) => {
    const { line, exitCode } = describeError(err, process.argv.includes('--debug'));
    process.stderr.write(`bench: ${line}\n`);
    process.exit(exitCode);
  },
);
