// A test reporter beside spec: the wall time each test file took (files run one at a time), slowest first,
// so the suite's budget (30 minutes on a 2-core machine) shows where it goes.
import { relative } from 'node:path';

export default async function* fileTimes(source) {
  const spans = new Map();
  let last = Date.now();
  for await (const event of source) {
    // Results only: every file is enqueued at the start, and its results stream in while it runs.
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const file = event.data?.file;
    if (!file) continue;
    const now = Date.now();
    let s = spans.get(file);
    // A file's span starts when the one before it last reported: its before hooks (a guest boot) report nothing.
    if (!s) spans.set(file, (s = { start: last, end: now }));
    s.end = now;
    last = now;
  }
  const rows = [...spans].map(([file, s]) => [file, (s.end - s.start) / 1000]).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((a, r) => a + r[1], 0);
  yield `\nwall time per test file (${rows.length} files, ${total.toFixed(0)} s), slowest first:\n`;
  for (const [file, s] of rows.slice(0, 25)) yield `  ${s.toFixed(1).padStart(7)} s  ${relative(process.cwd(), file)}\n`;
}
