#!/usr/bin/env node
// Single-file builds of the CLI (npm run build:bundle), for the cold start of a new process per command
// (no per-module resolution, stat and read); measured against dist/ by `npm run bench -- cold`:
//   dist/bundle/vmsight.mjs          one ES module with every command and plugin. Commands and plugins stay
//                                    lazy inside it (esbuild wraps each dynamically imported module in an
//                                    init function that runs on first import).
//   dist/bundle/vmsight-cached.cjs   the same as CommonJS, compiled through vm.Script with V8's code cache
//                                    (dist/bundle/vmsight.v8cache, written on first run when the folder is
//                                    writable; node_modules files it requires get theirs in modules.v8cache/):
//                                    Node 20 has no code cache for ES modules (module.enableCompileCache
//                                    arrives in Node 22). The loader is scripts/bundle-launcher.cjs.
// koffi is native and stays an external dependency; the bridge's worker and backends and the lab's C
// sources are placed beside the bundle, where the modules that use them look.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
mkdirSync(outdir, { recursive: true });
const entry = join(outdir, 'entry.ts');
writeFileSync(entry, `import { finish, main } from '../../src/cli/main.js';\nfinish(await main(process.argv.slice(2)));\n`);
const result = await build({
  entryPoints: [entry],
  outfile: join(outdir, 'vmsight.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __vmsightRequire } from 'node:module'; const require = __vmsightRequire(import.meta.url);" },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
// The synchronous bridge starts its worker and backends from files beside the module that asks
// (siblingModule(import.meta.url, …)): in the bundle that is dist/bundle/, so they are built there too.
await build({
  entryPoints: ['worker', 'gdb-backend', 'monitor-backend'].map((n) => join(root, 'src', 'memory', 'bridge', `${n}.ts`)),
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  legalComments: 'none',
  logLevel: 'warning',
});
// The CommonJS twin for the code-cache loader (no top-level await there); import.meta.url becomes the
// bundle's own file URL.
const cjsEntry = join(outdir, 'entry-cjs.ts');
writeFileSync(cjsEntry, `import { finish, main } from '../../src/cli/main.js';\nvoid main(process.argv.slice(2)).then(finish);\n`);
await build({
  entryPoints: [cjsEntry],
  outfile: join(outdir, 'vmsight.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['koffi'],
  define: { 'import.meta.url': '__vmsightUrl', 'import.meta.resolve': '__vmsightResolve' },
  banner: { js: "const __vmsightUrl = require('node:url').pathToFileURL(__filename).href; const __vmsightResolve = (s) => require.resolve(s);" },
  legalComments: 'none',
  // Whitespace and comments out (names kept, for stack traces with --debug): less source to hash and hold,
  // and one non-ASCII character in a comment made V8 keep the whole source as a two-byte string.
  minifyWhitespace: true,
  charset: 'ascii',
  logLevel: 'warning',
});
// The code-cache loader (see its header).
copyFileSync(join(root, 'scripts', 'bundle-launcher.cjs'), join(outdir, 'vmsight-cached.cjs'));
for (const f of ['vmsight.v8cache', 'vmsight.v8cache.commands', 'vmsight-long.v8cache', 'vmsight-long.v8cache.commands', 'modules.v8cache']) rmSync(join(outdir, f), { force: true, recursive: true }); // a new bundle invalidates the old caches
// Data files the lab reads beside its modules (helper source, rootkit module sources).
mkdirSync(join(outdir, 'scenario'), { recursive: true });
copyFileSync(join(root, 'src', 'lab', 'scenario', 'vmi-helper.c'), join(outdir, 'scenario', 'vmi-helper.c'));
for (const f of ['vmi_rootkit.c', 'Kbuild']) copyFileSync(join(root, 'src', 'lab', 'rootkit', f), join(outdir, f));
chmodSync(join(outdir, 'vmsight.mjs'), 0o755);
chmodSync(join(outdir, 'vmsight-cached.cjs'), 0o755);
const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
process.stdout.write(`bundle: dist/bundle/vmsight.mjs, ${(bytes / 1024).toFixed(0)} KiB, ${Object.keys(result.metafile.inputs).length} modules\n`);
