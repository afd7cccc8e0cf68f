/**
 * The launcher bin/vmsight.js picks the code-cached bundle only when it is at least as new as dist/, and
 * falls back to dist/ when the bundle is absent, stale or turned off (VMSIGHT_BUNDLE=0). Checked on a copy
 * of the launcher in a scratch tree whose dist/ and bundle each say which one ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../cli/helpers/spawn-cli.js';

function scratchTree(): { root: string; run(env?: NodeJS.ProcessEnv, args?: string[]): { code: number | null; stdout: string }; age(rel: string, seconds: number): void; remove(rel: string): void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-launcher-'));
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  put('package.json', '{"type":"module"}\n');
  fs.mkdirSync(path.join(root, 'bin'));
  for (const f of ['vmsight.js', 'package.json']) fs.copyFileSync(path.join(repoRoot, 'bin', f), path.join(root, 'bin', f));
  put('dist/src/cli/main.js', "export async function main(argv) { process.stdout.write(`dist ${argv.join(' ')}\\n`); return 3; }\nexport function finish(code) { process.exitCode = code; }\n");
  put('dist/bundle/vmsight-cached.cjs', "process.stdout.write(`bundle ${process.argv.slice(2).join(' ')}\\n`); process.exitCode = 4;\n");
  return {
    root,
    run(env = {}, args = ['pslist', '--json']) {
      const r = spawnSync(process.execPath, [path.join(root, 'bin', 'vmsight.js'), ...args], { encoding: 'utf8', env: { ...process.env, VMSIGHT_BUNDLE: '', ...env } });
      return { code: r.status, stdout: r.stdout };
    },
    age(rel, seconds) {
      const t = Date.now() / 1000 - seconds;
      fs.utimesSync(path.join(root, rel), t, t);
    },
    remove(rel) {
      fs.rmSync(path.join(root, rel));
    },
  };
}

test('bin/vmsight.js runs the bundle when it is as new as dist/, else dist/, passing the arguments and exit code', () => {
  const tree = scratchTree();
  try {
    tree.age('dist/src/cli/main.js', 60);
    assert.deepEqual(tree.run(), { code: 4, stdout: 'bundle pslist --json\n' }, 'a bundle newer than dist/');
    assert.deepEqual(tree.run({ VMSIGHT_BUNDLE: '0' }), { code: 3, stdout: 'dist pslist --json\n' }, 'turned off');
    assert.deepEqual(tree.run({}, ['--help']), { code: 3, stdout: 'dist --help\n' }, 'the top-level help: dist/ is lighter');
    assert.deepEqual(tree.run({}, []), { code: 3, stdout: 'dist \n' }, 'no arguments: the usage, from dist/');
    assert.deepEqual(tree.run({}, ['pslist', '--help']), { code: 4, stdout: 'bundle pslist --help\n' }, "a command's help: the bundle");
    tree.age('dist/bundle/vmsight-cached.cjs', 120);
    assert.deepEqual(tree.run(), { code: 3, stdout: 'dist pslist --json\n' }, 'a bundle older than dist/ (stale)');
    tree.remove('dist/bundle/vmsight-cached.cjs');
    assert.deepEqual(tree.run(), { code: 3, stdout: 'dist pslist --json\n' }, 'no bundle');
    tree.remove('dist/src/cli/main.js');
    const r = spawnSync(process.execPath, [path.join(tree.root, 'bin', 'vmsight.js'), 'pslist'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^vmsight: cannot load dist\/ .*; run npm run setup\n$/, 'no build at all: one line saying what to do');
  } finally {
    fs.rmSync(tree.root, { recursive: true, force: true });
  }
});

test('the code-cache loader gives a node_modules CommonJS file a code cache of its own, named by package version, and the file works as under require', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-modcache-'));
  try {
    const put = (rel: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), text);
    };
    fs.mkdirSync(path.join(root, 'dist', 'bundle'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'scripts', 'bundle-launcher.cjs'), path.join(root, 'dist', 'bundle', 'vmsight-cached.cjs'));
    // The "bundle": requires a package from node_modules, as vmsight.cjs requires iced-x86.
    put('dist/bundle/vmsight.cjs', "const p = require('../../node_modules/fake-pkg'); process.stdout.write(JSON.stringify(p.facts()) + '\\n');\n");
    put('node_modules/fake-pkg/package.json', '{"name":"fake-pkg","version":"1.2.3","main":"index.js"}\n');
    put('node_modules/fake-pkg/helper.js', `module.exports = 41 + ${Array.from({ length: 12 }, (_, i) => `require('./part${i}')`).join(' + ')};\n`);
    // A package of many files (the SQLite binding has more than ten): still no warning on stderr.
    for (let i = 0; i < 12; i++) put(`node_modules/fake-pkg/part${i}.js`, 'module.exports = 0;\n');
    put(
      'node_modules/fake-pkg/index.js',
      "const helper = require('./helper');\nexports.facts = () => ({ answer: helper + 1, dir: require('path').basename(__dirname), file: require('path').basename(__filename), resolved: require('path').basename(require.resolve('./helper')), self: module.exports === exports, cached: !!require.cache[__filename] });\n",
    );
    const run = () => spawnSync(process.execPath, [path.join(root, 'dist', 'bundle', 'vmsight-cached.cjs'), 'malfind'], { encoding: 'utf8' });
    const expected = `${JSON.stringify({ answer: 42, dir: 'fake-pkg', file: 'index.js', resolved: 'helper.js', self: true, cached: true })}\n`;
    const first = run();
    assert.equal(first.stderr, '');
    assert.equal(first.stdout, expected);
    const caches = path.join(root, 'dist', 'bundle', 'modules.v8cache');
    const files = fs.readdirSync(caches).sort();
    assert.equal(files.length, 14, `one cache per node_modules file: ${files.join(', ')}`);
    assert.ok(files.every((f) => f.includes('-1.2.3-')), 'the package version is in the name');
    const stamps = files.map((f) => fs.statSync(path.join(caches, f)).mtimeMs);
    assert.equal(run().stdout, expected, 'the same result from the cache');
    assert.deepEqual(files.map((f) => fs.statSync(path.join(caches, f)).mtimeMs), stamps, 'an accepted cache is not written again');
    put('node_modules/fake-pkg/package.json', '{"name":"fake-pkg","version":"1.2.4","main":"index.js"}\n');
    assert.equal(run().stdout, expected);
    assert.equal(fs.readdirSync(caches).filter((f) => f.includes('-1.2.4-')).length, 14, 'another version: caches of its own');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('one-shot and long-running commands run under their own V8 flags, each set with a code cache of its own that the other does not disturb', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-flagcache-'));
  try {
    const bundle = path.join(root, 'dist', 'bundle');
    fs.mkdirSync(bundle, { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'scripts', 'bundle-launcher.cjs'), path.join(bundle, 'vmsight-cached.cjs'));
    fs.writeFileSync(path.join(bundle, 'vmsight.cjs'), "process.stdout.write('ok\\n');\n");
    const run = (command: string) => spawnSync(process.execPath, [path.join(bundle, 'vmsight-cached.cjs'), command], { encoding: 'utf8' });
    const stamp = (f: string) => fs.statSync(path.join(bundle, f)).mtimeMs;
    assert.equal(run('pslist').status, 0);
    assert.ok(fs.existsSync(path.join(bundle, 'vmsight.v8cache')));
    assert.ok(!fs.existsSync(path.join(bundle, 'vmsight-long.v8cache')));
    assert.equal(run('monitor').status, 0);
    assert.ok(fs.existsSync(path.join(bundle, 'vmsight-long.v8cache')), 'the monitor caches under its own name');
    const oneShot = stamp('vmsight.v8cache');
    const long = stamp('vmsight-long.v8cache');
    assert.equal(run('pslist').stderr, '');
    assert.equal(run('monitor').stderr, '');
    assert.equal(stamp('vmsight.v8cache'), oneShot, "a one-shot command's cache is accepted after a monitor run (not made again)");
    assert.equal(stamp('vmsight-long.v8cache'), long, "the monitor's cache is accepted after a one-shot run");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
