/**
 * Builds the scenario helper (scenario/vmi-helper.c) as a static binary with
 * the host's gcc, cached under the source's hash. Busybox cannot make threads,
 * raw or v6-only sockets, or drop to a uid, so the scenario needs this.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LabError } from '../core/errors.js';
import { withLock } from './lock.js';
import { cacheDir } from './paths.js';

const run = promisify(execFile);

/** The C source, found next to this module or, from the compiled dist/ tree, in the package's src/. */
export function helperSourcePath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, 'scenario', 'vmi-helper.c'),
    path.resolve(here, '..', '..', '..', 'src', 'lab', 'scenario', 'vmi-helper.c'),
  ];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new LabError(`scenario source vmi-helper.c not found (looked in ${candidates.join(', ')})`, { hint: 'reinstall vmsight' });
  return found;
}

export interface HelperBinary {
  path: string;
  sha256: string;
  built: boolean;
}

/** Returns the static helper binary, compiling it once per source version. */
export async function ensureHelper(): Promise<HelperBinary> {
  const src = helperSourcePath();
  const source = fs.readFileSync(src);
  const sha = crypto.createHash('sha256').update(source).digest('hex');
  const dir = path.join(cacheDir(), 'helper', sha.slice(0, 16));
  const bin = path.join(dir, 'vmi-helper');
  if (fs.existsSync(bin)) return { path: bin, sha256: sha, built: false };
  return withLock(`${dir}.lock`, async () => {
    if (fs.existsSync(bin)) return { path: bin, sha256: sha, built: false };
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.tmp-${process.pid}`;
    try {
      await run('gcc', ['-static', '-pthread', '-O2', '-s', '-Wall', '-o', tmp, src], { maxBuffer: 4 * 1024 * 1024 });
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      if (err.code === 'ENOENT') throw new LabError('gcc not found', { hint: 'install gcc and libc6-dev: the lab compiles its scenario helper statically' });
      const why = (err.stderr ?? err.message).trim().split('\n').slice(-2).join(' | ');
      throw new LabError(`gcc -static ${src} failed: ${why}`, { hint: 'install libc6-dev (static libc is needed)' });
    }
    fs.renameSync(tmp, bin);
    return { path: bin, sha256: sha, built: true };
  });
}
