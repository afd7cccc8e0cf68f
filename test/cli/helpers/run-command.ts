/**
 * Runs a command object the way main.ts does (parseArgs with the global
 * options), capturing its output, against a synthetic guest written to a raw
 * image file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { globalOptions } from '../../../src/cli/main.js';
import { describeError } from '../../../src/core/errors.js';
import type { Command } from '../../../src/cli/command.js';
import { createOutput } from '../../../src/cli/render.js';
import { syntheticGuest, type SyntheticGuest, type SyntheticGuestOptions } from '../../arch/helpers/synthetic-guest.js';

export interface RunResult {
  code: number;
  out: string;
  error?: string;
}

export async function runCommand(command: Command, argv: string[]): Promise<RunResult> {
  let out = '';
  const parsed = parseArgs({
    args: argv,
    options: { ...globalOptions, ...command.options },
    allowPositionals: true,
    strict: true,
  });
  const format = parsed.values['json'] ? 'json' : 'table';
  try {
    const code = await command.run(
      { positionals: parsed.positionals, values: parsed.values as Record<string, string | boolean | undefined> },
      { out: createOutput(format, (s) => (out += s)), debug: false },
    );
    return { code: code ?? 0, out };
  } catch (e) {
    const { line, exitCode } = describeError(e);
    return { code: exitCode, out, error: line };
  }
}

/** A synthetic guest saved as a raw image in a temp dir; `cleanup()` removes it. */
export function guestImage(options: SyntheticGuestOptions = {}): { guest: SyntheticGuest; file: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-test-cli-'));
  const guest = syntheticGuest(options);
  const file = path.join(dir, 'guest.raw');
  fs.writeFileSync(file, guest.ram);
  return { guest, file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
