/**
 * tty_check: every function pointer of the tty drivers' operations tables
 * (struct tty_operations) and of each open tty's line discipline (struct
 * tty_ldisc_ops: receive_buf is what keystroke sniffers replace), resolved to
 * symbols; a pointer outside kernel text is flagged (a module's, or nobody's).
 * A tty whose own ops differ from its driver's is listed with its own table.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { isSuspicious, kernelTextClassifier } from '../integrity.js';
import { checkTtyOps } from '../tty.js';

export interface TtyCheckRow {
  driver: string;
  major: number;
  tty: string | Absent;
  table: string;
  member: string;
  address: bigint;
  symbol: string | Absent;
  verdict: string;
  module: string | Absent;
  suspicious: boolean;
}

export default definePlugin<TtyCheckRow>()({
  name: 'tty_check',
  aliases: ['linux.tty_check', 'linux.tty_check.tty_check'],
  version: '1.0.0',
  summary: 'TTY driver and line-discipline operations resolved to symbols; pointers outside kernel text flagged',
  requires: {
    symbols: ['tty_drivers', '_stext', '_etext'],
    types: ['tty_operations', 'tty_ldisc_ops'],
    fields: [
      ['tty_driver', 'tty_drivers'],
      ['tty_driver', 'driver_name'],
      ['tty_driver', 'name'],
      ['tty_driver', 'major'],
      ['tty_driver', 'minor_start'],
      ['tty_driver', 'num'],
      ['tty_driver', 'ops'],
      ['tty_driver', 'ttys'],
      ['tty_struct', 'name'],
      ['tty_struct', 'ops'],
      ['tty_struct', 'ldisc'],
      ['tty_ldisc', 'ops'],
    ],
  },
  columns: [
    { key: 'driver', kind: 'str' },
    { key: 'major', kind: 'int' },
    { key: 'tty', kind: 'str' },
    { key: 'table', kind: 'str' },
    { key: 'member', kind: 'str' },
    { key: 'address', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
    { key: 'verdict', kind: 'str' },
    { key: 'module', kind: 'str' },
    { key: 'suspicious', kind: 'bool' },
  ],
  key: (r) => `${r.driver}:${r.major}:${typeof r.tty === 'string' ? r.tty : ''}:${r.table}.${r.member}`,
  *run(k, { anomalies }) {
    const { classify, moduleSymbol } = kernelTextClassifier(k, anomalies);
    for (const e of checkTtyOps(k, classify, anomalies, moduleSymbol)) {
      yield {
        driver: e.driver,
        major: e.major,
        tty: e.tty ?? absent('not-applicable', "the driver's own table"),
        table: e.table,
        member: e.member,
        address: e.address,
        symbol: e.symbol ?? absent('not-available', 'no symbol near the address'),
        verdict: e.verdict,
        module: e.module ?? absent('not-applicable'),
        suspicious: isSuspicious(e.verdict),
      };
    }
  },
});
