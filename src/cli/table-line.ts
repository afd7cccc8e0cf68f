/**
 * A table's line function, generated for its columns once their widths are known: one straight run of code
 * per row (each cell read by its name, formatted, and written after the padding the cell before it
 * needs), where a loop over the columns read each cell by a computed key and padded it with padStart or
 * padEnd. A listing of 94k rows is formatted in code that is still warming up; this is the shortest path
 * V8 can take through it (the whole kallsyms listing: ~20 ms less).
 *
 * Of the columns, the generated source holds only their keys, as JSON string literals, and their widths,
 * as checked integers; the text functions are passed in. A column named anything reads the key it names.
 */

/** One column as the line function sees it: where its cell is, how it is written, how wide it is. */
export interface LineColumn {
  readonly key: string;
  /** The cell's text ('' for an empty cell: nothing is written, and the padding carries on). */
  readonly text: (v: unknown) => string;
  readonly width: number;
  /** Right-aligned (numbers) rather than left-aligned. */
  readonly right: boolean;
}

/**
 * The line of a row: its cells, each padded to its column's width and two spaces apart; a cell's padding
 * is written only when a later cell follows it, so empty trailing cells add nothing, and a line that still
 * ends in white space (a cell's own) is trimmed. A longer cell pushes the rest of its line right.
 */
export function lineFunction(columns: readonly LineColumn[]): (row: Record<string, unknown>) => string {
  // Widths are written into the source as numbers: integers only.
  for (const c of columns) if (!Number.isInteger(c.width) || c.width < 0) throw new RangeError(`column ${c.key}: width ${c.width}`);
  const most = columns.reduce((sum, c) => sum + c.width + 2, 0);
  const runs: string[] = [];
  for (let n = 0; n <= most; n++) runs.push(' '.repeat(n));
  const spaces = (n: number): string => runs[n] ?? ' '.repeat(n);
  const body: string[] = ['let s = "";', 'let gap = 0;', 'let cell;', 'let n;'];
  columns.forEach((c, i) => {
    body.push(`cell = text[${i}](row[${JSON.stringify(c.key)}]);`, 'n = cell.length;');
    body.push(`if (n === 0) gap += ${c.width + 2};`);
    if (c.right) body.push(`else { s += spaces(gap + (n < ${c.width} ? ${c.width} - n : 0)) + cell; gap = 2; }`);
    else body.push(`else { s += spaces(gap) + cell; gap = (n < ${c.width} ? ${c.width} - n : 0) + 2; }`);
  });
  body.push('const last = s.charCodeAt(s.length - 1);', 'return (last <= 32 || last >= 0x80 ? s.trimEnd() : s) + "\\n";');
  const make = new Function('text', 'spaces', `"use strict"; return function line(row) {\n${body.join('\n')}\n};`) as (
    text: readonly ((v: unknown) => string)[],
    spaces: (n: number) => string,
  ) => (row: Record<string, unknown>) => string;
  return make(
    columns.map((c) => c.text),
    spaces,
  );
}
