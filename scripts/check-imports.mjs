#!/usr/bin/env node
// Import-boundary check (run by .ci/run): every relative import in src/, static, `export … from` or dynamic
// `import()`, goes from a higher layer to a lower one or stays inside its folder, and no two folders import
// each other. The layers, lowest first, are those of ARCHITECTURE.md:
//   core → qemu → memory → arch → profile → linux → monitor | lab → cli → bench → index.ts
// monitor/ and lab/ share a rank and may not import each other. Exits 1 and lists every violation.
//   node scripts/check-imports.mjs [PROJECT_DIR]
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..'), 'src');
const RANK = { core: 0, qemu: 1, memory: 2, arch: 3, profile: 4, linux: 5, monitor: 6, lab: 6, cli: 7, bench: 8, 'index.ts': 9 };
const IMPORT_RE = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^\s*import\s+['"](\.[^'"]+)['"]/gm;

const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(ts|mts)$/.test(name)) files.push(p);
  }
})(root);

const layerOf = (p) => relative(root, p).split(sep)[0];
const problems = [];
const edges = new Map(); // "from>to" → first file that makes the edge
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    const from = layerOf(file);
    const to = layerOf(resolve(dirname(file), spec));
    if (from === to) continue;
    if (!edges.has(`${from}>${to}`)) edges.set(`${from}>${to}`, relative(root, file));
    if (!(from in RANK) || !(to in RANK)) {
      problems.push(`unknown layer: ${relative(root, file)} imports ${spec} (add the folder to the layer list)`);
      continue;
    }
    if (RANK[to] >= RANK[from]) problems.push(`upward: ${relative(root, file)} -> ${to} (${spec})`);
  }
}
for (const [edge, file] of edges) {
  const [a, b] = edge.split('>');
  if (a < b && edges.has(`${b}>${a}`)) problems.push(`cycle: ${a} <-> ${b} (${file}; ${edges.get(`${b}>${a}`)})`);
}
for (const p of problems) console.log(p);
console.log(`imports: ${files.length} files, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
