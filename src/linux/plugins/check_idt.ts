/**
 * check_idt: the 256 gates of idt_table decoded (offset low/mid/high,
 * segment, IST, type, DPL, present) and resolved to symbols; a present gate
 * whose handler lies outside kernel text is flagged.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { checkIdt, isSuspicious, kernelTextClassifier } from '../integrity.js';

export interface CheckIdtRow {
  vector: number;
  address: bigint;
  symbol: string | Absent;
  segment: number;
  ist: number;
  type: number;
  dpl: number;
  present: boolean;
  verdict: string;
  module: string | Absent;
  suspicious: boolean;
}

export default definePlugin<CheckIdtRow>()({
  name: 'check_idt',
  aliases: ['linux.check_idt', 'linux.check_idt.Check_idt'],
  version: '1.0.0',
  summary: 'Interrupt descriptor table gates resolved to symbols; handlers outside kernel text flagged',
  requires: { symbols: ['idt_table', '_stext', '_etext'] },
  columns: [
    { key: 'vector', kind: 'int' },
    { key: 'address', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
    { key: 'segment', kind: 'hex' },
    { key: 'ist', kind: 'int' },
    { key: 'type', kind: 'int' },
    { key: 'dpl', kind: 'int' },
    { key: 'present', kind: 'bool' },
    { key: 'verdict', kind: 'str' },
    { key: 'module', kind: 'str' },
    { key: 'suspicious', kind: 'bool' },
  ],
  key: (r) => String(r.vector),
  *run(k, { anomalies }) {
    const { classify, moduleSymbol } = kernelTextClassifier(k, anomalies);
    for (const g of checkIdt(k, classify, anomalies, moduleSymbol)) {
      yield {
        vector: g.vector,
        address: g.address,
        symbol: g.symbol ?? absent(g.present ? 'not-available' : 'not-applicable'),
        segment: g.segment,
        ist: g.ist,
        type: g.type,
        dpl: g.dpl,
        present: g.present,
        verdict: g.verdict,
        module: g.module ?? absent('not-applicable'),
        suspicious: isSuspicious(g.verdict),
      };
    }
  },
});
