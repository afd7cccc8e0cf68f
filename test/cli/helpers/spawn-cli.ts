/** Spawns the real `vmsight` process (through tsx), for what only a process shows: exit codes, stdout/stderr, pipes, signals. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const entry = path.join(root, 'test/cli/helpers/cli-entry.ts');

/** argv that runs vmsight: `node --import tsx …/cli-entry.ts`. */
export const CLI: readonly string[] = [process.execPath, '--import', 'tsx', entry];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs vmsight with these arguments to completion. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 256 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts vmsight in the background (for signal tests). */
export function startCli(args: readonly string[]): ChildProcess {
  return spawn(CLI[0]!, [...CLI.slice(1), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A shell-quoted command line that runs vmsight with these arguments (for pipelines). */
export function cliCommandLine(args: readonly string[]): string {
  return [...CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}

export const repoRoot = root;
