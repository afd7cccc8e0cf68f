/** Discoverable options (issue 10): per-command help from the declarations, `plugins --json` options, suggestions, one renderer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { editDistance, suggestNames } from '../../src/cli/help.js';
import { commandEntries } from '../../src/cli/registry.js';
import { plugins } from '../../src/linux/plugins/index.js';
import { runCli } from './helpers/spawn-cli.js';

/** The help line of one option (`  --pid PID…  text`), or undefined. */
const optionLine = (help: string, flag: string) => help.split('\n').find((l) => new RegExp(`^\\s+(-\\w, )?${flag}( |$)`).test(l));

describe('vmsight <plugin> --help', () => {
  it("lists the plugin's options with value, default and description, then source and global options", () => {
    const r = runCli(['pslist', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: vmsight pslist /);
    assert.match(r.stdout, /also known as: .*linux\.pslist\.PsList/);
    assert.match(optionLine(r.stdout, '--pid') ?? '', /--pid PID\[,PID…\]\s+only these processes \(repeatable\); default: every process/);
    assert.match(optionLine(r.stdout, '--threads') ?? '', /default: thread group leaders only/);
    const sections = r.stdout.split('\n').filter((l) => /^\S.*:$/.test(l));
    assert.deepEqual(sections, ['options:', 'source options:', 'global options:']);
    for (const flag of ['--technique', '--halting', '--no-cache', '--validate', '--json', '--jsonl', '--csv', '--profile', '--debug'])
      assert.ok(optionLine(r.stdout, flag), `${flag} listed`);
  });

  it('names the choices of an enumerated option (the same list the option check uses)', async () => {
    const sockstat = plugins.find((p) => p.name === 'sockstat')!;
    const choices = (sockstat.options as Record<string, { choices?: readonly string[] }>)['family']!.choices!;
    const r = runCli(['sockstat', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(optionLine(r.stdout, '--family') ?? '', new RegExp(`one of: ${choices.join(', ')}`));
  });

  it('is the same text as `vmsight help <plugin>` and works under a Volatility name', () => {
    const a = runCli(['kmsg', '--help']);
    const b = runCli(['help', 'linux.kmsg.Kmsg']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.stdout, a.stdout);
    assert.match(optionLine(a.stdout, '--limit') ?? '', /--limit N\s+only the last N records/);
  });

  it('lists a command without plugin options with its own options', () => {
    const r = runCli(['translate', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(optionLine(r.stdout, '--dtb'), r.stdout);
    assert.ok(optionLine(r.stdout, '--technique'));
  });
});

describe('vmsight --help', () => {
  it('lists the global options and the source options', () => {
    const r = runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const flag of ['--json', '--jsonl', '--csv', '--profile', '--debug', '--technique', '--halting', '--no-cache'])
      assert.ok(optionLine(r.stdout, flag), `${flag} in top-level help`);
    assert.match(optionLine(r.stdout, '--technique') ?? '', /debugger-stub/);
  });
});

describe('vmsight plugins --json', () => {
  it("carries every plugin's declared options: type, repeatable, choices, default, description", () => {
    const r = runCli(['plugins', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const listed = JSON.parse(r.stdout) as { name: string; aliases: string[]; options: { name: string; type: string; multiple: boolean; choices: string[] | null; default: string | null; description: string | null }[] }[];
    assert.deepEqual(listed.map((p) => p.name), plugins.map((p) => p.name));
    for (const p of plugins) {
      const row = listed.find((x) => x.name === p.name)!;
      assert.deepEqual(row.aliases, [...(p.aliases ?? [])]);
      const decls = Object.entries((p.options ?? {}) as Record<string, { type: string; multiple?: boolean; choices?: string[]; description?: string }>);
      assert.deepEqual(row.options.map((o) => o.name), decls.map(([n]) => n), p.name);
      for (const [n, d] of decls) {
        const o = row.options.find((x) => x.name === n)!;
        assert.equal(o.type, d.type);
        assert.equal(o.multiple, d.multiple === true);
        assert.deepEqual(o.choices, d.choices ?? null);
        assert.ok(o.description, `${p.name} --${n} has a description`);
      }
    }
    const sockstat = listed.find((p) => p.name === 'sockstat')!;
    assert.ok(sockstat.options[0]!.choices!.includes('tcp'));
  });
});

describe('suggestions for an unknown command or plugin', () => {
  it('edit distance counts insertions, deletions, substitutions and transpositions', () => {
    assert.equal(editDistance('pslist', 'pslist'), 0);
    assert.equal(editDistance('pslst', 'pslist'), 1);
    assert.equal(editDistance('plsist', 'pslist'), 1);
    assert.equal(editDistance('PSLIST', 'pslist'), 0);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kmsg', 'lsmod'), 4);
  });

  const candidates = commandEntries.map((c) => ({ name: c.name, words: c.aliases ?? [] }));
  it('suggests the nearest names, also through Volatility names, and nothing for a word far from all', () => {
    assert.deepEqual(suggestNames('pslst', candidates)[0], 'pslist');
    assert.deepEqual(suggestNames('linux.pslist.PsLst', candidates)[0], 'pslist');
    assert.deepEqual(suggestNames('Check_syscal', candidates)[0], 'check_syscall');
    assert.deepEqual(suggestNames('dmseg', candidates)[0], 'kmsg');
    assert.deepEqual(suggestNames('xyzzyplugh', candidates), []);
  });

  it('the CLI says "did you mean" with exit 2', () => {
    const r = runCli(['pstre', 'somewhere']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vmsight: unknown command 'pstre': did you mean pstree\b/);
    const h = runCli(['help', 'lsmd']);
    assert.equal(h.code, 2);
    assert.match(h.stderr, /did you mean lsmod\b/);
    const far = runCli(['xyzzyplugh']);
    assert.equal(far.code, 2);
    assert.doesNotMatch(far.stderr, /did you mean/);
  });
});

describe('renderers', () => {
  it('two renderers at once are a usage error naming both, before any source is opened', () => {
    for (const pair of [['--json', '--csv'], ['--jsonl', '--json'], ['--csv', '--jsonl']]) {
      const r = runCli(['pslist', '/nonexistent/image', ...pair]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^vmsight: pslist: (${pair[0]} and ${pair[1]}|${pair[1]} and ${pair[0]}) conflict: choose one renderer`));
    }
  });
});
