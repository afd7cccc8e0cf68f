/**
 * iomem: the kernel's physical memory map, the `iomem_resource` tree as
 * /proc/iomem prints it to root (real addresses, nesting as depth), or the
 * I/O port tree (`ioport_resource`, /proc/ioports) with --ioports.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { resourceRoot, walkResources } from '../resources.js';

export interface IomemRow {
  offset: bigint;
  depth: number;
  start: bigint;
  end: bigint;
  name: string | Absent;
  flags: bigint;
}

export default definePlugin<IomemRow>()({
  name: 'iomem',
  aliases: ['linux.iomem', 'linux.iomem.IOMem'],
  version: '1.0.0',
  summary: 'Physical memory map from the iomem_resource tree (like /proc/iomem as root); --ioports for /proc/ioports',
  requires: {
    symbols: ['iomem_resource'],
    fields: [
      ['resource', 'start'],
      ['resource', 'end'],
      ['resource', 'name'],
      ['resource', 'flags'],
      ['resource', 'parent'],
      ['resource', 'sibling'],
      ['resource', 'child'],
    ],
  },
  options: {
    ioports: { type: 'boolean', description: 'walk ioport_resource (I/O ports) instead of iomem_resource', byDefault: 'the memory map' },
  },
  columns: [
    { key: 'offset', kind: 'hex' },
    { key: 'depth', kind: 'int' },
    { key: 'start', kind: 'hex' },
    { key: 'end', kind: 'hex' },
    { key: 'name', kind: 'str' },
    { key: 'flags', kind: 'hex' },
  ],
  key: (r) => `${r.depth}:${r.start.toString(16)}-${r.end.toString(16)}:${typeof r.name === 'string' ? r.name : ''}`,
  *run(k, { options, anomalies }) {
    const tree = options.ioports ? 'ioport_resource' : 'iomem_resource';
    for (const r of walkResources(k, resourceRoot(k, tree), anomalies, tree)) {
      yield {
        offset: r.address,
        depth: r.depth,
        start: r.start,
        end: r.end,
        name: r.name ?? absent('unreadable', 'NULL or unreadable name (/proc prints <BAD>)'),
        flags: r.flags,
      };
    }
  },
});
