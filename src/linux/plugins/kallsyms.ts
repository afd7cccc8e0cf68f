/**
 * kallsyms: the kernel symbol table decoded from guest memory (core kernel,
 * in /proc/kallsyms order) followed by every listed module's own symbols
 * (mod->kallsyms), tagged with the module name as /proc/kallsyms does.
 */
import { definePlugin } from '../plugin.js';
import { FaultError } from '../../core/errors.js';
import { listModules, moduleSymbols, type ModuleSymbol } from '../modules.js';

export interface KallsymsRow {
  address: bigint;
  type: string;
  name: string;
  module: string;
  /** Position in its table (core kallsyms, or the module's symtab): names and addresses repeat (`__key.N` statics), this does not. Not a column. */
  index: number;
}

export default definePlugin<KallsymsRow>()({
  name: 'kallsyms',
  aliases: ['linux.kallsyms', 'linux.kallsyms.Kallsyms'],
  version: '1.0.0',
  summary: 'Kernel symbols (core kallsyms and modules\' own symbol tables)',
  requires: {},
  options: {
    'core-only': { type: 'boolean', description: "core kernel symbols only, not the modules' own", byDefault: 'core and module symbols' },
    name: { type: 'string', valueName: 'NAME', description: 'only the symbol with this exact name', byDefault: 'every symbol' },
  },
  columns: [
    { key: 'address', kind: 'hex' },
    { key: 'type', kind: 'str' },
    { key: 'name', kind: 'str' },
    { key: 'module', kind: 'str' },
  ],
  key: (r) => `${r.module}:${r.index}:${r.name}:${r.address.toString(16)}`,
  *run(k, { options, anomalies }) {
    const want = typeof options['name'] === 'string' ? options['name'] : undefined;
    // Asked before the listing decodes every name: while names are still compressed a lookup is a short scan,
    // after it the first lookup builds the whole hash index.
    const withModules = options['core-only'] !== true && k.hasSymbol('modules') && k.types.hasType('module', 'struct');
    const syms = k.symbols;
    // One name: its entries by lookup. Every name: decoded in one pass first.
    const core = want !== undefined ? syms.indicesOf(want) : undefined;
    if (core === undefined) syms.decodeNames();
    for (let n = 0, count = core ? core.length : syms.count; n < count; n++) {
      const i = core ? core[n]! : n;
      if (syms.moduleAt(i) !== undefined) continue; // modules come from their own tables below
      yield { address: syms.addressAt(i), type: syms.typeAt(i), name: syms.nameAt(i), module: '', index: i };
    }
    if (!withModules) return;
    for (const m of listModules(k, anomalies)) {
      let syms: ModuleSymbol[];
      try {
        syms = moduleSymbols(k, m.address, anomalies);
      } catch (e) {
        if (!(e instanceof FaultError)) throw e;
        anomalies.add({ kind: 'fault', where: 'module.kallsyms', address: m.address, detail: `${m.name}: ${e.message}` });
        continue;
      }
      for (let j = 0; j < syms.length; j++) {
        const s = syms[j]!;
        if (want !== undefined && s.name !== want) continue;
        yield { address: s.address, type: s.type, name: s.name, module: m.name, index: j };
      }
    }
  },
});
