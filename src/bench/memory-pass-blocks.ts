/**
 * The memory-live row of a source read in pass blocks (live read): what the walkers pay per read inside a pass.
 */
import { PhysReader } from '../arch/phys-reader.js';
import type { PhysicalMemory } from '../memory/types.js';
import { type BenchRow, latencyUs, rate, round } from './memory-live.js';

/**
 * The row of a source read in pass blocks (live read): the walkers' path, PhysReader inside one pass,
 * so a random 8 B or 4 KiB read costs a block fetch (the 4 KiB reads go to other addresses than the 8 B
 * reads, whose blocks are kept by then) and a page-local one mostly none. No scan: bulk
 * reads bypass the blocks (the plain row's scan is that figure).
 */
export function passBlockRow(mem: PhysicalMemory, addrs: number[], local: number[], sliceMs: number, technique: string, implementation: string): BenchRow {
  const phys = new PhysReader(mem);
  const halves = new Uint32Array(2);
  let sink = 0;
  phys.beginPass();
  try {
    const block = phys.passBlocks?.blockBytes ?? 0;
    const read8Us = latencyUs((i) => {
      phys.u64Halves(addrs[i % addrs.length]!, halves);
      sink ^= halves[0]!;
    }, sliceMs);
    // Other addresses than the 8 B reads': pages whose block this pass has not fetched yet.
    const read4kUs = latencyUs((i) => {
      sink ^= phys.bytes(addrs[(i + (addrs.length >> 1)) % addrs.length]! & ~4095, 4096)[0]!;
    }, sliceMs);
    const perCall = 1024;
    const u64Rate = (list: readonly number[]) =>
      rate((i) => {
        const base = i * perCall;
        for (let k = 0; k < perCall; k++) {
          phys.u64Halves(list[(base + k) % list.length]!, halves);
          sink ^= halves[1]!;
        }
      }, perCall, sliceMs);
    const readsPerSec = u64Rate(addrs);
    const localReadsPerSec = u64Rate(local);
    void sink; // the loads are kept by their side effects on it
    return {
      technique,
      class: 'live-read',
      implementation,
      read8Us: round(read8Us),
      read4kUs: round(read4kUs),
      readsPerSec: round(readsPerSec),
      localReadsPerSec: round(localReadsPerSec),
      scanMBps: NaN,
      cpuMsPerMiB: NaN,
      note: `PhysReader.u64 inside one pass: a read outside the blocks kept fetches its ${block / 1024} KiB block (one system call), later reads of the block copy nothing`,
    };
  } finally {
    phys.endPass();
  }
}
