/**
 * ebpf: the eBPF programs, maps and links the kernel holds (prog_idr,
 * map_idr, link_idr), with what `bpftool prog|map|link show` prints: id,
 * type, name, program tag and sizes, map shape, the maps a program uses and
 * what it or its link attaches to.
 */
import { absent, definePlugin, type Absent } from '../plugin.js';
import { bpfLinks, bpfMaps, bpfPrograms } from '../bpf.js';
import { bootWallClockNs, formatWallClock } from '../boot-time.js';
import { WalkBudget } from '../walk/common.js';

export interface EbpfRow {
  kind: 'prog' | 'map' | 'link';
  id: number;
  address: bigint;
  type: string;
  name: string | Absent;
  tag: string | Absent;
  insns: number | Absent;
  jited: number | Absent;
  func: bigint | Absent;
  maps: number[] | Absent;
  attach: string | Absent;
  prog: number | Absent;
  key_size: number | Absent;
  value_size: number | Absent;
  max_entries: number | Absent;
  flags: number | Absent;
  uid: number | Absent;
  load_ns: bigint | Absent;
  /** load_ns as a wall-clock date (bpftool's `loaded_at`), from the guest's own boot time. */
  loaded: string | Absent;
}

const KINDS = ['prog', 'map', 'link'] as const;
const na = absent('not-applicable');

/** A row with every kind-specific column not applicable. */
function base(kind: EbpfRow['kind'], id: number, address: bigint, type: string): EbpfRow {
  return { kind, id, address, type, name: na, tag: na, insns: na, jited: na, func: na, maps: na, attach: na, prog: na, key_size: na, value_size: na, max_entries: na, flags: na, uid: na, load_ns: na, loaded: na };
}

export default definePlugin<EbpfRow>()({
  name: 'ebpf',
  aliases: ['linux.ebpf', 'linux.ebpf.EBPF'],
  version: '1.0.0',
  summary: 'eBPF programs, maps and links from the kernel\'s id tables (like bpftool prog/map/link show)',
  requires: {
    symbols: ['prog_idr', 'map_idr'],
    fields: [
      ['bpf_prog', 'aux'],
      ['bpf_prog', 'type'],
      ['bpf_prog', 'tag'],
      ['bpf_prog_aux', 'id'],
      ['bpf_prog_aux', 'name'],
      ['bpf_map', 'id'],
      ['bpf_map', 'map_type'],
      ['bpf_map', 'name'],
      ['idr', 'idr_rt'],
    ],
  },
  options: { kind: { type: 'string', choices: KINDS, valueName: 'KIND', description: 'only programs, maps or links', byDefault: 'all three' } },
  columns: [
    { key: 'kind', kind: 'str' },
    { key: 'id', kind: 'int' },
    { key: 'address', kind: 'hex' },
    { key: 'type', kind: 'str' },
    { key: 'name', kind: 'str' },
    { key: 'tag', kind: 'str' },
    { key: 'insns', kind: 'int' },
    { key: 'jited', kind: 'int' },
    { key: 'func', kind: 'hex' },
    { key: 'maps', kind: 'int' },
    { key: 'attach', kind: 'str' },
    { key: 'prog', kind: 'int' },
    { key: 'key_size', kind: 'int' },
    { key: 'value_size', kind: 'int' },
    { key: 'max_entries', kind: 'int' },
    { key: 'flags', kind: 'hex' },
    { key: 'uid', kind: 'int' },
    { key: 'load_ns', kind: 'int' },
    { key: 'loaded', kind: 'str' },
  ],
  key: (r) => `${r.kind}:${r.id}:${r.address.toString(16)}`,
  *run(k, { options, anomalies }) {
    const budget = new WalkBudget();
    const want = (kind: EbpfRow['kind']) => options.kind === undefined || options.kind === kind;
    if (want('prog')) {
      let boot: ReturnType<typeof bootWallClockNs> | undefined;
      for (const p of bpfPrograms(k, anomalies, budget)) {
        yield {
          ...base('prog', p.id, p.address, p.type),
          name: p.name,
          tag: p.tag,
          insns: p.insns,
          jited: p.jitedBytes,
          func: p.func,
          maps: p.mapIds,
          attach: p.attachTo ?? absent('not-applicable', 'attaches to no kernel function'),
          uid: p.uid ?? absent('not-available'),
          load_ns: p.loadNs,
          loaded: typeof (boot ??= bootWallClockNs(k, anomalies)) === 'bigint' ? formatWallClock(boot + p.loadNs) : boot,
        };
      }
    }
    if (want('map')) {
      for (const m of bpfMaps(k, anomalies, budget)) {
        yield { ...base('map', m.id, m.address, m.type), name: m.name, key_size: m.keySize, value_size: m.valueSize, max_entries: m.maxEntries, flags: m.flags };
      }
    }
    if (want('link')) {
      for (const l of bpfLinks(k, anomalies, budget)) {
        yield { ...base('link', l.id, l.address, l.type), prog: l.progId === null ? absent('not-applicable', 'the link holds no program') : (l.progId ?? absent('unreadable')) };
      }
    }
  },
});
