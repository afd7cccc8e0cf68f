/**
 * A real vmlinux BTF for tests: the `.BTF` section of a Debian kernel in the
 * lab cache (6.1 preferred), extracted once and kept in the OS temp dir so
 * repeated runs skip the ~1 s decompression. Undefined when no kernel is
 * cached (tests then skip, saying so).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cachedKernels } from '../../../src/lab/kernels.js';
import { elfSection, extractVmlinux } from '../../../src/profile/vmlinux.js';

export interface RealBtf {
  kernel: string;
  vmlinuz: string;
  bytes: Uint8Array;
}

const memo = new Map<string, RealBtf | undefined>();

export async function realVmlinuxBtf(prefer = '6.1'): Promise<RealBtf | undefined> {
  if (memo.has(prefer)) return memo.get(prefer);
  const kernels = cachedKernels()
    .map((k) => ({ ...k, vmlinuz: path.join(k.root, 'boot', `vmlinuz-${k.release}`) }))
    .filter((k) => existsSync(k.vmlinuz));
  const pick = kernels.find((k) => k.release.startsWith(prefer)) ?? kernels[0];
  let result: RealBtf | undefined;
  if (pick) {
    const st = statSync(pick.vmlinuz);
    const cached = path.join(os.tmpdir(), `vmsight-test-btf-${pick.release}-${st.size}.btf`);
    let bytes: Uint8Array;
    if (existsSync(cached)) bytes = readFileSync(cached);
    else {
      const btf = elfSection(extractVmlinux(readFileSync(pick.vmlinuz), pick.vmlinuz), '.BTF', pick.vmlinuz);
      if (!btf) throw new Error(`${pick.vmlinuz} has no .BTF`);
      bytes = Uint8Array.from(btf);
      writeFileSync(cached, bytes);
    }
    result = { kernel: pick.release, vmlinuz: pick.vmlinuz, bytes };
  }
  memo.set(prefer, result);
  return result;
}
