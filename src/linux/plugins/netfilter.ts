/**
 * netfilter: the hooks of every network namespace, per protocol family and
 * hook point, in the order the kernel runs them, each function resolved to a
 * symbol and to core kernel text or the module that holds it. nftables,
 * iptables and conntrack hooks live in modules; a hook in neither kernel
 * text nor a module is what a rootkit's hook looks like, and is flagged.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { classifyAddress, kernelTextClassifier, symbolize } from '../integrity.js';
import { netNamespaces } from '../net/netdevice.js';
import { netfilterHooks } from '../net/netfilter.js';

export interface NetfilterRow {
  netns: number;
  family: string;
  hook: string;
  index: number;
  priority: number | Absent;
  func: bigint;
  symbol: string | Absent;
  module: string | Absent;
  verdict: string;
  ops: bigint;
  priv: bigint;
  suspicious: boolean;
}

export default definePlugin<NetfilterRow>()({
  name: 'netfilter',
  aliases: ['linux.netfilter', 'linux.netfilter.Netfilter'],
  version: '1.0.0',
  summary: 'Netfilter hooks per network namespace, family and hook point, resolved to kernel or module; hooks outside both flagged',
  requires: {
    symbols: ['net_namespace_list', '_stext', '_etext'],
    fields: [
      ['net', 'list'],
      ['net', 'nf'],
      ['nf_hook_entries', 'num_hook_entries'],
      ['nf_hook_entries', 'hooks'],
      ['nf_hook_entry', 'hook'],
      ['nf_hook_ops', 'hook'],
      ['nf_hook_ops', 'priority'],
    ],
  },
  columns: [
    { key: 'netns', kind: 'int' },
    { key: 'family', kind: 'str' },
    { key: 'hook', kind: 'str' },
    { key: 'index', kind: 'int' },
    { key: 'priority', kind: 'int' },
    { key: 'func', kind: 'hex' },
    { key: 'symbol', kind: 'str' },
    { key: 'module', kind: 'str' },
    { key: 'verdict', kind: 'str' },
    { key: 'ops', kind: 'hex' },
    { key: 'priv', kind: 'hex' },
    { key: 'suspicious', kind: 'bool' },
  ],
  key: (r) => `${r.netns}:${r.family}:${r.hook}:${r.ops.toString(16)}:${r.index}`,
  *run(k, { anomalies }) {
    const { classify, moduleSymbol } = kernelTextClassifier(k, anomalies);
    for (const ns of netNamespaces(k, anomalies)) {
      for (const h of netfilterHooks(k, ns, anomalies)) {
        const { verdict, module } = classifyAddress(classify, h.func);
        yield {
          netns: h.netns,
          family: h.family,
          hook: h.hook,
          index: h.index,
          priority: h.priority ?? absent('unreadable'),
          func: h.func,
          symbol: symbolize(k.symbols, h.func, moduleSymbol) ?? absent('not-available'),
          module: module ?? absent('not-applicable'),
          verdict,
          ops: h.ops,
          priv: h.priv,
          suspicious: verdict === 'unknown' || verdict === 'init-text',
        };
      }
    }
  },
});
