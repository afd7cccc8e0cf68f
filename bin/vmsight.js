#!/usr/bin/env node
// The `vmsight` launcher. A cold start is mostly module loading (README "Cold start"), so it runs the
// single-file bundle with V8's code cache (dist/bundle/vmsight-cached.cjs, made by `npm run build:bundle`
// and by `npm run setup`) when that bundle is at least as new as the tsc build in dist/, and dist/ itself
// otherwise: no bundle, a bundle older than the last build (tsc rewrites every file of dist/, so main.js
// dates it), or VMSIGHT_BUNDLE=0. The top-level help loads next to nothing from dist/ (commands load lazily)
// and parsing the whole bundle costs it more than it saves (bench -- cold: 1.22× against 1.32× node -e 0).
// CommonJS (bin/package.json): an ES module entry would start Node's ES module loader, ~10 ms of a cold
// start, for a bundle that is CommonJS.
'use strict';
const { statSync } = require('node:fs');
const path = require('node:path');

const mtime = (rel) => statSync(path.join(__dirname, rel), { throwIfNoEntry: false })?.mtimeMs;
const args = process.argv.slice(2);
const topHelp = args.length === 0 || args.every((a) => a === '--help' || a === '-h');
const bundle = process.env.VMSIGHT_BUNDLE === '0' || topHelp ? undefined : mtime('../dist/bundle/vmsight-cached.cjs');
const dist = mtime('../dist/src/cli/main.js');
if (bundle !== undefined && (dist === undefined || bundle >= dist)) {
  require('../dist/bundle/vmsight-cached.cjs');
} else {
  import('../dist/src/cli/main.js').then(
    async ({ finish, main }) => {
      finish(await main(args));
    },
    (err) => {
      process.stderr.write(`vmsight: cannot load dist/ (${err.message}); run npm run setup\n`);
      process.exitCode = 1;
    },
  );
}
