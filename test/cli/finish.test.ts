/**
 * finish() (cli/main.ts): a command-line process exits at once when only the standard streams are left, with
 * every byte written and 'exit' listeners run, and lets the event loop end as usual when anything else is
 * still pending. The end-to-end cases run finish() in a child bundled by esbuild (a child under tsx holds
 * tsx's own connections open), with stdout a pipe as in `vmsight … | less`.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { onlyStreamsLeft } from '../../src/cli/main.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.ts');

/** Runs `body` (with finish and main in scope) in a child process; stdout is a pipe, or a file with `toFile`. */
function run(body: string, { toFile = false } = {}): { status: number | null; stdout: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-finish-'));
  try {
    const entry = path.join(dir, 'entry.ts');
    // After the module loader's own file reads have closed (a close still pending is a resource too), as main() is.
    fs.writeFileSync(entry, `import { finish, main } from ${JSON.stringify(MAIN)};\nawait new Promise((r) => setTimeout(r, 30));\n${body}\n`);
    const out = path.join(dir, 'entry.mjs');
    buildSync({ entryPoints: [entry], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', external: ['koffi'], logLevel: 'silent', banner: { js: "import { createRequire as __finishRequire } from 'node:module'; const require = __finishRequire(import.meta.url);" } });
    if (toFile) {
      const file = path.join(dir, 'stdout.txt');
      const fd = fs.openSync(file, 'w');
      try {
        const r = spawnSync(process.execPath, [out], { stdio: ['ignore', fd, 'pipe'] });
        return { status: r.status, stdout: fs.readFileSync(file, 'utf8') };
      } finally {
        fs.closeSync(fd);
      }
    }
    const r = spawnSync(process.execPath, [out], { encoding: 'utf8', maxBuffer: 64 << 20 });
    return { status: r.status, stdout: r.stdout };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('onlyStreamsLeft: exactly the standard streams\' resources, whatever their order', () => {
  assert.equal(onlyStreamsLeft([], [undefined, undefined]), true);
  assert.equal(onlyStreamsLeft(['PipeWrap', 'TTYWrap'], ['TTYWrap', 'PipeWrap']), true);
  assert.equal(onlyStreamsLeft(['PipeWrap'], [undefined, 'PipeWrap']), true);
  assert.equal(onlyStreamsLeft(['PipeWrap', 'PipeWrap'], ['PipeWrap', undefined]), false, 'a second pipe: a socket or a child');
  assert.equal(onlyStreamsLeft(['Timeout'], [undefined, undefined]), false);
  assert.equal(onlyStreamsLeft(['TTYWrap'], ['PipeWrap', undefined]), false);
  assert.equal(onlyStreamsLeft(['PipeWrap'], ['unknown', undefined]), false);
});

test('with only the standard streams left: the exit code given, every byte written, exit listeners run', () => {
  const r = run(`process.on('exit', () => process.stdout.write('exit-listener\\n'));
process.stdout.write('rows\\n'.repeat(1000));
finish(3);
process.stdout.write('after finish\\n');`);
  assert.equal(r.status, 3);
  assert.equal(r.stdout, 'rows\n'.repeat(1000) + 'exit-listener\n', 'the process ended in finish()');
});

test('stdout a file and stderr a pipe never written (nothing active): exits in finish() without making stderr', () => {
  const r = run(`process.on('exit', () => process.stdout.write(\`exit-listener \${JSON.stringify(process.getActiveResourcesInfo())}\\n\`));
process.stdout.write('rows\\n'.repeat(1000));
finish(3);
process.stdout.write('after finish\\n');`, { toFile: true });
  assert.equal(r.status, 3);
  assert.equal(r.stdout, 'rows\n'.repeat(1000) + 'exit-listener []\n', 'ended in finish(), and no stream was made on the stderr pipe');
});

test('output a pipe has not taken yet keeps the process until it is written', () => {
  // 4 MiB is more than a pipe holds: the rest waits in the stream (writableLength), and finish() leaves it be.
  const r = run(`process.stdout.write('x'.repeat(4 << 20) + '\\n');
finish(5);
process.stdout.write('after finish\\n');`);
  assert.equal(r.status, 5);
  assert.equal(r.stdout, 'x'.repeat(4 << 20) + '\nafter finish\n');
});

test('a pending timer keeps the process to the end of its event loop; an unref()ed one does not', () => {
  const timer = run(`setTimeout(() => process.stdout.write('timer ran\\n'), 100);
finish(4);
process.stdout.write('after finish\\n');`);
  assert.equal(timer.status, 4);
  assert.equal(timer.stdout, 'after finish\ntimer ran\n');
  const unref = run(`setTimeout(() => process.stdout.write('timer ran\\n'), 5000).unref();
finish(0);
process.stdout.write('after finish\\n');`);
  assert.equal(unref.status, 0);
  assert.equal(unref.stdout, '', 'an unref()ed timer keeps nothing alive');
});

test("a command's output to a file (written with fs.writeSync) is what the same command writes to a pipe", () => {
  const body = `const code = await main(['--help']);\nfinish(code);`;
  const toPipe = run(body);
  const toFile = run(body, { toFile: true });
  assert.equal(toPipe.status, 0);
  assert.equal(toFile.status, 0);
  assert.match(toFile.stdout, /^usage: vmsight/m);
  assert.equal(toFile.stdout, toPipe.stdout);
});
