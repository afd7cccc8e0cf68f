/** A small well-formedness check of the study's HTML: every tag closed in order (void elements aside), no stray '<'. */
import assert from 'node:assert/strict';

const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);

export function assertWellFormed(html: string): void {
  const body = html.replace(/^<!doctype html>\s*/i, '');
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-zA-Z0-9:-]+="[^"<>]*")*)\s*(\/?)>/g;
  let at = 0;
  for (let m; (m = tag.exec(body)); ) {
    assert.ok(!body.slice(at, m.index).includes('<'), `stray '<' near ${JSON.stringify(body.slice(at, at + 60))}`);
    at = tag.lastIndex;
    const [, close, name, , self] = m;
    const n = name!.toLowerCase();
    if (self || VOID.has(n)) continue;
    if (close) assert.equal(stack.pop(), n, `</${n}> closes the wrong element`);
    else stack.push(n);
  }
  assert.ok(!body.slice(at).includes('<'), 'stray < at the end');
  assert.deepEqual(stack, [], 'every element is closed');
}

export function svgs(html: string): string[] {
  return [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
}
