// A StrykerJS ignorer plugin for `npm run mutation`: leaves the wording of messages unmutated — string and
// template literals that only become text a person reads: the message of a `new …Error(…)`, the detail of a
// walker's `ctx.anomaly(kind, address, detail)`, a `reason` / `detail` / `hint` property, and the reasons a
// search collects (`rejected.push(…)`, `reasons.push(…)`). Mutating them ("" for the text) makes survivors
// that say nothing about behaviour, and each one costs a full run of the area's tests. Literals that are data
// stay mutated: an anomaly's kind ('cycle'), a FaultError's space ('virtual'), a table or field name (no space
// in it), and everything outside those places.
import { PluginKind, declareValuePlugin } from '@stryker-mutator/api/plugin';

const MESSAGE_KEYS = new Set(['reason', 'detail', 'hint']);
const REASON_LISTS = new Set(['rejected', 'reasons']);

/** A literal that reads as prose: any template, or a string with a space in it. */
function prose(path) {
  return path.isTemplateLiteral() || (path.isStringLiteral() && path.node.value.includes(' '));
}

function messageContext(path) {
  let child = path;
  for (let p = path.parentPath; p && !p.isStatement() && !p.isFunction(); child = p, p = p.parentPath) {
    if (p.isObjectProperty()) {
      const key = p.node.key;
      return child.node === p.node.value && key.type === 'Identifier' && MESSAGE_KEYS.has(key.name);
    }
    if (p.isObjectExpression() || p.isArrayExpression()) continue;
    if (p.isNewExpression()) {
      const callee = p.node.callee;
      return callee.type === 'Identifier' && /Error$/.test(callee.name) && p.node.arguments.includes(child.node) && prose(path);
    }
    if (p.isCallExpression()) {
      const callee = p.node.callee;
      if (callee.type !== 'MemberExpression' || callee.property.type !== 'Identifier') continue;
      if (callee.property.name === 'anomaly') return p.node.arguments.indexOf(child.node) >= 2;
      if (callee.property.name === 'push' && callee.object.type === 'Identifier' && REASON_LISTS.has(callee.object.name)) return true;
    }
  }
  return false;
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'message-text', {
    shouldIgnore(path) {
      if (!path.isStringLiteral() && !path.isTemplateLiteral()) return undefined;
      return messageContext(path) ? 'message text: wording, not behaviour' : undefined;
    },
  }),
];
