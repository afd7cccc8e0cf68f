#!/usr/bin/env node
// dist/bundle/vmsight-cached.cjs (copied there by scripts/bundle.mjs): runs vmsight.cjs through vm.Script
// with V8's code cache (v8-compile-cache style, for Node 20). The cache holds the functions earlier runs
// compiled: a run of a command that no earlier run had (they are listed beside the cache) writes it again
// at exit with what it compiled too, so the cache grows to cover the commands in use. Written to a
// temporary file and renamed, so no run reads a half-written cache; a cache V8 rejects (another bundle,
// another Node) is replaced. A read-only folder just has none.
//
// CommonJS files the bundle requires at run time from node_modules (iced-x86's 0.9 MB of JavaScript, the
// SQLite binding's) get a code cache each, in modules.v8cache/ beside it: the bundle's cache cannot cover
// them, and compiling iced-x86 was ~14 ms of a cold malfind.
'use strict';
// V8 flags, set first: a code cache is accepted only by a V8 with the flags it was made under, so each set
// has caches of its own (CACHE_PROFILE names them).
// - WebAssembly stays on V8's baseline compiler (Liftoff): the disassembler's 0.8 MB module otherwise tiers
//   hot functions up with TurboFan in the background, which cost malfind and check_syscall ~15 MB of RSS
//   and a wait for those compile jobs at exit, for decoding a few thousand instructions.
// - A one-shot command keeps the young generation at its first size (1 MiB semi-spaces): V8 doubles it
//   as allocation goes on, to 4 MiB or 8 MiB for a listing, 2–6 MB of peak RSS (kallsyms 81 → 75 MB) for
//   scavenges that find few survivors; measured no slower. The commands that run for minutes (the
//   monitor, benchmarks, demos, the lab's guests) keep V8's default growth.
const LONG_RUNNING = new Set(['monitor', 'bench', 'demo', 'lab']);
const longRunning = LONG_RUNNING.has(String(process.argv[2] ?? ''));
const CACHE_PROFILE = longRunning ? '-long' : '';
require('node:v8').setFlagsFromString(longRunning ? '--liftoff-only' : '--liftoff-only --semi-space-growth-factor=1');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

/** Replaces `file` with `bytes` through a temporary file and a rename; false when the folder is read-only. */
function writeAtomically(file, bytes) {
  try {
    const tmp = `${file}.${process.pid}`;
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
    return true;
  } catch {
    return false;
  }
}

function readOrUndefined(file) {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Versions by package folder: a package of many files reads its package.json once. */
const versions = new Map();

/** The version in the package.json of the node_modules package that holds `filename` ('0' when unreadable). */
function packageVersion(filename) {
  const at = filename.lastIndexOf(nodeModules) + nodeModules.length;
  const parts = filename.slice(at).split(path.sep);
  const root = filename.slice(0, at) + (parts[0].startsWith('@') ? path.join(parts[0], parts[1] ?? '') : parts[0]);
  let version = versions.get(root);
  if (version === undefined) {
    try {
      version = String(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version).replace(/[^A-Za-z0-9._-]/g, '_');
    } catch {
      version = '0';
    }
    versions.set(root, version);
  }
  return version;
}

const moduleCaches = path.join(__dirname, 'modules.v8cache');
/** Module caches to write at exit: [file, script]. */
const pendingCaches = [];
const nodeModules = `${path.sep}node_modules${path.sep}`;
const compile = Module.prototype._compile;
Module.prototype._compile = function compileWithCache(content, filename) {
  if (typeof filename !== 'string' || !filename.includes(nodeModules) || !filename.endsWith('.js')) return compile.call(this, content, filename);
  // V8 checks a cache against the source's length only: the package's version is in the name too.
  const cacheFile = path.join(moduleCaches, `${filename.replace(/[^A-Za-z0-9._-]/g, '_').slice(-160)}-${packageVersion(filename)}-${content.length}${CACHE_PROFILE}.v8cache`);
  const cachedData = readOrUndefined(cacheFile);
  let script;
  try {
    script = new vm.Script(Module.wrap(content), { filename, ...(cachedData ? { cachedData } : {}) });
  } catch {
    return compile.call(this, content, filename); // Node's own compile reports the error as it always does
  }
  if (!cachedData || script.cachedDataRejected) {
    // One exit listener for them all (a listener per file passed Node's limit of 10 and warned on stderr).
    if (!pendingCaches.length)
      process.once('exit', () => {
        try {
          fs.mkdirSync(moduleCaches, { recursive: true });
        } catch {}
        for (const [f, s] of pendingCaches) writeAtomically(f, s.createCachedData());
      });
    pendingCaches.push([cacheFile, script]);
  }
  // The require a CommonJS module gets from Node, rebuilt for this module.
  const mod = this;
  const req = (id) => mod.require(id);
  req.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
  req.resolve.paths = (request) => Module._resolveLookupPaths(request, mod);
  req.main = require.main;
  req.extensions = Module._extensions;
  req.cache = Module._cache;
  return script.runInThisContext({ displayErrors: true }).call(mod.exports, mod.exports, req, mod, filename, path.dirname(filename));
};

const file = path.join(__dirname, 'vmsight.cjs');
const cacheFile = path.join(__dirname, `vmsight${CACHE_PROFILE}.v8cache`);
const listFile = `${cacheFile}.commands`;
const cachedData = readOrUndefined(cacheFile);
let commands = [];
try {
  commands = fs.readFileSync(listFile, 'utf8').split('\n').filter(Boolean);
} catch {}
const word = String(process.argv[2] ?? '').slice(0, 64);
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, ...(cachedData ? { cachedData } : {}) });
const m = { exports: {} };
script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, __dirname);
const rejected = !cachedData || script.cachedDataRejected;
if (rejected || (!commands.includes(word) && commands.length < 64))
  process.on('exit', () => {
    if (writeAtomically(cacheFile, script.createCachedData())) {
      try {
        fs.writeFileSync(listFile, [...(rejected ? [] : commands), word].join('\n') + '\n');
      } catch {}
    }
  });
