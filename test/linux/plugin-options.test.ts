/**
 * The typed plugin contract: option values are checked against their declarations before a plugin runs
 * (issue 10 bug 7: an unknown value of an enumerated option is a usage error naming the valid ones, for
 * every enumerated option of every plugin, through runPlugin and through the CLI before attaching), and
 * the declarations type the values inside `run` and the column keys (checked by tsc through the
 * @ts-expect-error lines below: if a typo compiled, tsc would fail on the unused directive).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExitCode, UsageError } from '../../src/core/errors.js';
import { checkOptionValues, definePlugin, runPlugin, type Column, type OptionValues } from '../../src/linux/plugin.js';
import type { Kernel } from '../../src/linux/kernel.js';
import { plugins } from '../../src/linux/plugins/index.js';
import { pluginCommand } from '../../src/cli/commands/plugins.js';
import { PID_OPTION } from '../../src/linux/tasks.js';
import { runCommand } from '../cli/helpers/run-command.js';

const enumerated = plugins.flatMap((p) =>
  Object.entries(p.options ?? {}).flatMap(([name, d]) => (d.type === 'string' && d.choices ? [{ plugin: p, name, choices: d.choices }] : [])),
);

test('sockstat --family is declared as an enumerated option', () => {
  const family = enumerated.find((e) => e.plugin.name === 'sockstat' && e.name === 'family');
  assert.ok(family, 'sockstat declares --family with choices');
  for (const c of ['tcp', 'udp', 'unix', 'inet6']) assert.ok(family.choices.includes(c), c);
});

for (const { plugin, name, choices } of enumerated) {
  test(`${plugin.name} --${name} bogus is a usage error naming the valid values (runPlugin)`, () => {
    // The check precedes any kernel access: runPlugin must throw before touching the kernel.
    const untouchable = new Proxy({}, { get: () => assert.fail('kernel touched before the option check') }) as Kernel;
    assert.throws(
      () => runPlugin(plugin, untouchable, { [name]: 'bogus' }),
      (e: unknown) => e instanceof UsageError && e.message.includes(`--${name} 'bogus'`) && choices.every((c) => e.message.includes(c)),
    );
  });

  test(`${plugin.name} --${name} bogus exits with the usage code before attaching (CLI)`, async () => {
    const command = pluginCommand(plugin);
    // A source that does not exist: were the source opened first, the error would be a source error.
    const r = await runCommand(command, ['/nonexistent/vmsight-image.elf', `--${name}`, 'bogus']);
    assert.equal(r.code, ExitCode.usage, r.error);
    assert.match(r.error ?? '', new RegExp(`valid: ${choices.join(', ')}`));
  });

  test(`${plugin.name} --${name} accepts each of its choices`, () => {
    for (const c of choices) assert.deepEqual(checkOptionValues(plugin.name, plugin.options, { [name]: c }), { [name]: c });
  });
}

test('checkOptionValues rejects a value for a flag and several values for a single option', () => {
  const decls = { all: { type: 'boolean' }, one: { type: 'string' } } as const;
  assert.throws(() => checkOptionValues('p', decls, { all: 'yes' }), /--all is a flag/);
  assert.throws(() => checkOptionValues('p', decls, { one: ['a', 'b'] }), /--one takes one value/);
  assert.deepEqual(checkOptionValues('p', decls, { all: true, one: 'a', other: 'ignored' }), { all: true, one: 'a', other: 'ignored' });
});

test('the shared pid option is the one declaration of every per-process plugin', () => {
  const withPid = plugins.filter((p) => p.options && 'pid' in p.options && p.name !== 'mountinfo');
  assert.ok(withPid.length >= 13, `${withPid.length} plugins take --pid`);
  for (const p of withPid) assert.equal(p.options!['pid'], PID_OPTION.pid, `${p.name} uses PID_OPTION`);
});

test('declared option types reach run, and column keys must be row keys (compile-time)', () => {
  interface Row { pid: number; comm: string }
  const p = definePlugin<Row>()({
    name: 't',
    version: '0',
    summary: 't',
    requires: {},
    options: { ...PID_OPTION, mode: { type: 'string', choices: ['a', 'b'] }, all: { type: 'boolean' } },
    columns: [
      { key: 'pid', kind: 'int' },
      // @ts-expect-error a column key that is not a key of the row does not compile
      { key: 'cmm', kind: 'str' },
    ],
    key: (r) => String(r.pid),
    *run(_k, { options }) {
      const pids: readonly string[] | undefined = options.pid;
      const mode: 'a' | 'b' | undefined = options.mode;
      const all: boolean | undefined = options.all;
      // @ts-expect-error an enumerated option's value is one of its choices, not any string
      const wrong: 'c' | undefined = options.mode;
      // @ts-expect-error an undeclared option is not there
      void options.nope;
      void wrong;
      yield { pid: pids?.length ?? 0, comm: `${mode}${all}` };
    },
  });
  const widened: readonly Column[] = p.columns; // renderers take the widened type
  assert.equal(widened.length, 2);
  const values: OptionValues<typeof p.options & {}> = { mode: 'a' };
  assert.equal(values.mode, 'a');
});
