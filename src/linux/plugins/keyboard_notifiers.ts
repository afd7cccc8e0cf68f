/**
 * keyboard_notifiers: the callbacks on `keyboard_notifier_list` (where
 * register_keyboard_notifier puts a keylogger: every key event of the
 * virtual terminals passes through them), each resolved to a symbol and
 * classified; a callback outside kernel text is flagged.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { classifyAddress, isSuspicious, kernelTextClassifier, symbolize } from '../integrity.js';
import { notifierChain } from '../notifier.js';

export interface KeyboardNotifierRow {
  offset: bigint;
  priority: number;
  callback: bigint;
  symbol: string | Absent;
  verdict: string;
  module: string | Absent;
  suspicious: boolean;
}

export default definePlugin<KeyboardNotifierRow>()({
  name: 'keyboard_notifiers',
  aliases: ['linux.keyboard_notifiers', 'linux.keyboard_notifiers.Keyboard_notifiers'],
  version: '1.0.0',
  summary: 'Callbacks on the keyboard notifier chain (where keyloggers register) resolved to symbols; outside kernel text flagged',
  requires: {
    symbols: ['keyboard_notifier_list', '_stext', '_etext'],
    fields: [
      ['atomic_notifier_head', 'head'],
      ['notifier_block', 'notifier_call'],
      ['notifier_block', 'next'],
      ['notifier_block', 'priority'],
    ],
  },
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'priority', kind: 'int' },
    { key: 'callback', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
    { key: 'verdict', kind: 'str' },
    { key: 'module', kind: 'str' },
    { key: 'suspicious', kind: 'bool' },
  ],
  key: (r) => `${r.offset.toString(16)}:${r.callback.toString(16)}`,
  *run(k, { anomalies }) {
    const { classify, moduleSymbol } = kernelTextClassifier(k, anomalies);
    for (const b of notifierChain(k, k.symbol('keyboard_notifier_list'), 'atomic_notifier_head', anomalies, 'keyboard_notifier_list')) {
      const { verdict, module } = classifyAddress(classify, b.call);
      yield {
        offset: b.address,
        priority: b.priority,
        callback: b.call,
        symbol: symbolize(k.symbols, b.call, moduleSymbol) ?? absent('not-available', 'no symbol near the address'),
        verdict,
        module: module ?? absent('not-applicable'),
        suspicious: isSuspicious(verdict),
      };
    }
  },
});
