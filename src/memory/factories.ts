/**
 * The techniques openSource ranks, each loaded only when a target names what it needs (sources/catalog.ts):
 * a dump loads the file formats, a QMP socket the live techniques. A loaded module's factory must be the one
 * its catalog entry describes.
 */
import type { SourceFactory } from './source-factory.js';
import * as catalog from './sources/catalog.js';
import type { SourceInfo } from './sources/catalog.js';

/** A factory that answers from its catalog entry while the target cannot fit, and loads its module otherwise. */
export function lazyFactory(info: SourceInfo, load: () => Promise<{ readonly factory: SourceFactory }>): SourceFactory {
  let loaded: Promise<SourceFactory> | undefined;
  const real = (): Promise<SourceFactory> =>
    (loaded ??= load().then(({ factory }) => {
      if (factory.name !== info.name || factory.class !== info.class) {
        throw new Error(`memory/sources: the module of ${info.name} (${info.class}) holds the factory ${factory.name} (${factory.class})`);
      }
      return factory;
    }));
  return {
    name: info.name,
    class: info.class,
    summary: info.summary,
    async probe(target) {
      const reason = info.needs(target);
      if (reason !== undefined) return { ok: false, rank: 0, reason };
      return (await real()).probe(target);
    },
    async open(target, options) {
      return (await real()).open(target, options);
    },
  };
}

/** Every technique, in the order `vmsight sources` lists them. */
export const FACTORIES: readonly SourceFactory[] = [
  lazyFactory(catalog.QEMU_SHM, () => import('./sources/qemu-shm.js')),
  lazyFactory(catalog.QEMU_PROCESS, () => import('./sources/qemu-process.js')),
  lazyFactory(catalog.GDB_STUB, () => import('./sources/gdb-stub.js')),
  lazyFactory(catalog.MONITOR_READ, () => import('./sources/monitor-read.js')),
  lazyFactory(catalog.HALT_SNAPSHOT, () => import('./sources/halt-snapshot.js')),
  lazyFactory(catalog.LIVE_SNAPSHOT, () => import('./sources/live-snapshot.js')),
  lazyFactory(catalog.ELF_CORE, () => import('./sources/elf-core.js')),
  lazyFactory(catalog.KDUMP, () => import('./sources/kdump.js')),
  lazyFactory(catalog.LIME, () => import('./sources/lime.js')),
  lazyFactory(catalog.RAW_FILE, () => import('./sources/raw-file.js')),
];
