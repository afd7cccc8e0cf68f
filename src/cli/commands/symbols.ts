/**
 * `vmsight symbols <source> [pattern]`: the kernel's symbols as the guest's
 * own kallsyms holds them (decoded from memory, KASLR applied), or from a
 * System.map given with --profile, or from a kernel image file with --image.
 */
import { readFileSync, statSync } from 'node:fs';
import { ProfileError, SourceError, UsageError } from '../../core/errors.js';
import { openSource } from '../../memory/open.js';
import { type KallsymsResult, kallsymsDigest, kallsymsFromBytes, loadKallsyms } from '../../profile/kallsyms.js';
import { bootstrapKernelSpace } from '../../profile/kernel-space.js';
import type { KernelSymbol, SymbolTable } from '../../profile/symbols.js';
import { loadSystemMap, looksLikeSystemMap } from '../../profile/system-map.js';
import { extractVmlinux, isBzImage } from '../../profile/vmlinux.js';
import type { Command, ParsedArgs } from '../command.js';
import type { Column } from '../render.js';
import { sourceOptions } from './common.js';

const USAGE =
  '<source> [pattern] [--at ADDR] [--type LETTERS] [--limit N] [--digest] [--method auto|search] [--profile System.map [--kaslr-shift HEX]] | --image vmlinux|vmlinuz [pattern]';

const COLUMNS: readonly Column[] = [
  { key: 'address', kind: 'hex' },
  { key: 'type', kind: 'str' },
  { key: 'name', kind: 'str' },
  { key: 'module', kind: 'str' },
];

const MAX_IMAGE_BYTES = 512 << 20;

interface Loaded {
  table: SymbolTable;
  /** One line on how the symbols were obtained. */
  how: string;
  kallsyms?: KallsymsResult;
}

function parseAddress(text: string, what: string): bigint {
  const t = text.trim().toLowerCase().replace(/_/g, '');
  const neg = t.startsWith('-');
  const body = neg ? t.slice(1) : t;
  if (!/^(0x)?[0-9a-f]{1,16}$/.test(body)) throw new UsageError(`${what} ${JSON.stringify(text)} is not a hex number`);
  const v = BigInt(body.startsWith('0x') ? body : `0x${body}`);
  return neg ? -v : v;
}

function positiveInt(text: string, what: string): number {
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) < 1) throw new UsageError(`${what} ${JSON.stringify(text)} is not a positive number`);
  return Number(text);
}

/** Symbols from a kernel image file: vmlinuz (extracted) or vmlinux/raw bytes, by pattern search; link-time addresses. */
function fromImage(path: string): Loaded {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new SourceError('file', path, `cannot read: ${(e as Error).message}`);
  }
  if (size > MAX_IMAGE_BYTES) throw new UsageError(`--image ${path} is ${size} bytes; expected a kernel image under ${MAX_IMAGE_BYTES >> 20} MiB`);
  let bytes: Uint8Array = readFileSync(path);
  let what = 'vmlinux';
  if (isBzImage(bytes)) {
    bytes = extractVmlinux(bytes, path);
    what = 'vmlinuz (extracted)';
  }
  const r = kallsymsFromBytes(bytes, { source: path });
  return { table: r.table, how: `${r.table.count} symbols from ${what} ${path} by pattern search (${r.layout.order}, ${r.layout.addressing}), link-time addresses, ${r.ms.toFixed(0)} ms`, kallsyms: r };
}

async function fromSource(spec: string, args: ParsedArgs): Promise<Loaded> {
  const v = args.values;
  const method = typeof v['method'] === 'string' ? v['method'] : 'auto';
  if (method !== 'auto' && method !== 'search') throw new UsageError(`--method ${method}: expected auto or search`);
  const opened = await openSource(spec, {
    ...(typeof v['technique'] === 'string' ? { technique: v['technique'] } : {}),
    ...(v['halting'] ? { halting: true } : {}),
  });
  const mem = opened.memory;
  try {
    const ks = await bootstrapKernelSpace(mem);
    const profile = typeof v['profile'] === 'string' ? v['profile'] : undefined;
    if (profile !== undefined) {
      let head: Buffer;
      try {
        head = readFileSync(profile).subarray(0, 4096);
      } catch (e) {
        throw new SourceError('file', profile, `cannot read: ${(e as Error).message}`);
      }
      if (!looksLikeSystemMap(head))
        throw new UsageError(`--profile ${profile} is not a System.map`, { hint: "'vmsight symbols' reads System.map profiles; 'vmsight profile' takes ISF and BTF files" });
      const shift = typeof v['kaslr-shift'] === 'string' ? parseAddress(v['kaslr-shift'], '--kaslr-shift') : (ks.kaslr?.virtualShift ?? 0n);
      const map = loadSystemMap(profile, { shift });
      return { table: map.table, how: `${map.table.count} symbols from ${profile}, KASLR shift 0x${shift.toString(16)}${map.skipped ? `, ${map.skipped} lines skipped` : ''}` };
    }
    const r = loadKallsyms({ space: ks.space, mem, ...(ks.vmcoreinfo ? { vmcoreinfo: ks.vmcoreinfo } : {}), forceSearch: method === 'search', target: mem.target });
    const how =
      `${r.table.count} symbols from kallsyms in guest memory by ${r.method === 'search' ? 'pattern search' : 'vmcoreinfo addresses'} ` +
      `(${r.layout.order}, ${r.layout.addressing}${r.layout.seqsOfNames ? ', seqs_of_names' : ''}), ${r.ms.toFixed(0)} ms` +
      (r.complete ? '' : `, INCOMPLETE: ${r.anomalies[0]?.reason ?? ''}`);
    return { table: r.table, how, kallsyms: r };
  } finally {
    await mem.close();
  }
}

function rowOf(s: KernelSymbol): Record<string, unknown> {
  return { address: s.address, type: s.type, name: s.name, module: s.module };
}

export const command: Command = {
  name: 'symbols',
  aliases: ['ksyms'],
  summary: "kernel symbols from the guest's own kallsyms (KASLR applied), a System.map (--profile) or a kernel image (--image); filter by glob or /regex/",
  usage: USAGE,
  options: {
    ...sourceOptions,
    at: { type: 'string' },
    type: { type: 'string' },
    limit: { type: 'string' },
    digest: { type: 'boolean' },
    method: { type: 'string' },
    'kaslr-shift': { type: 'string' },
    image: { type: 'string' },
  },
  async run(args, ctx) {
    const v = args.values;
    const image = typeof v['image'] === 'string' ? v['image'] : undefined;
    let pattern: string | undefined;
    let loaded: Loaded;
    if (image !== undefined) {
      if (args.positionals.length > 1) throw new UsageError('with --image, give at most a pattern', { hint: `usage: vmsight symbols ${USAGE}` });
      pattern = args.positionals[0];
      loaded = fromImage(image);
    } else {
      const spec = args.positionals[0];
      if (!spec) throw new UsageError('missing <source>', { hint: `usage: vmsight symbols ${USAGE}` });
      if (args.positionals.length > 2) throw new UsageError('too many arguments', { hint: `usage: vmsight symbols ${USAGE}` });
      pattern = args.positionals[1];
      loaded = await fromSource(spec, args);
    }
    const { table } = loaded;
    ctx.out.text(loaded.how);
    for (const a of loaded.kallsyms?.anomalies ?? []) ctx.out.text(`anomaly: ${a.table}${a.index === undefined ? '' : ` #${a.index}`}: ${a.reason}`);

    if (v['digest']) {
      const d = kallsymsDigest(table);
      ctx.out.record({ source: table.source, count: d.count, sha256: d.sha256 });
      return 0;
    }
    if (typeof v['at'] === 'string') {
      const va = parseAddress(v['at'], '--at');
      const at = table.nameOf(va);
      if (!at) throw new ProfileError(`no symbol holds 0x${va.toString(16)}`, { tried: [table.source] });
      ctx.out.record({ address: va, symbol: at.name, offset: at.offset, type: at.symbol.type, symbolAddress: at.symbol.address, module: at.symbol.module });
      return 0;
    }
    const types = typeof v['type'] === 'string' ? new Set(v['type']) : undefined;
    const limit = typeof v['limit'] === 'string' ? positiveInt(v['limit'], '--limit') : Infinity;
    const indices = pattern === undefined ? undefined : table.searchIndices(pattern);
    const rows: Record<string, unknown>[] = [];
    const take = (i: number): boolean => {
      if (types && !types.has(table.typeAt(i))) return true;
      rows.push(rowOf(table.at(i)));
      return rows.length < limit;
    };
    if (indices) {
      for (const i of indices) if (!take(i)) break;
    } else {
      for (let i = 0; i < table.count; i++) if (!take(i)) break;
    }
    if (pattern !== undefined && rows.length === 0)
      throw new ProfileError(`no symbol matches ${JSON.stringify(pattern)}${types ? ` with type ${[...types].join('')}` : ''}`, { tried: [table.source] });
    ctx.out.rows(
      rows.some((r) => r.module !== undefined) ? COLUMNS : COLUMNS.filter((c) => c.key !== 'module'),
      rows,
    );
    return 0;
  },
};
