/**
 * System.map (and saved /proc/kallsyms copies) as a SymbolTable.
 *
 * Lines are `ADDRESS TYPE NAME`, optionally followed by `\t[module]` as in
 * /proc/kallsyms. A System.map holds link-time addresses; a KASLR-relocated
 * guest needs them moved by the virtual shift (vmcoreinfo KERNELOFFSET).
 * Only kernel-image addresses move: absolute and per-cpu symbols (small
 * values) and module addresses stay as they are, as the kernel's own
 * relocation does.
 */
import { readFileSync, statSync } from 'node:fs';
import { FormatError, ProfileError, SourceError } from '../core/errors.js';
import { KERNEL_IMAGE_MAP, SymbolTable, SymbolTableBuilder } from './symbols.js';

export { KERNEL_IMAGE_MAP };
/** Largest file accepted (real ones: 5–12 MB). */
export const MAX_SYSTEM_MAP_BYTES = 256 << 20;

export interface SystemMapOptions {
  /** KASLR virtual shift added to kernel-image addresses (KERNELOFFSET). */
  readonly shift?: bigint;
  /** Which addresses move with `shift` (default: the x86-64 kernel image map). */
  readonly shiftRange?: readonly [bigint, bigint];
  /** For SymbolTable.source and messages (default 'System.map'). */
  readonly source?: string;
}

export interface SystemMap {
  readonly table: SymbolTable;
  /** Lines that were not symbol lines (blank lines not counted). */
  readonly skipped: number;
  /** The first few skipped lines, with line numbers. */
  readonly anomalies: readonly string[];
  readonly shift: bigint;
}

const LINE = /^([0-9a-fA-F]{1,16})\s+([A-Za-z?-])\s+(\S{1,1024})(?:\s+\[([^\]\s]{1,256})\])?\s*$/;
const DEBIAN_STUB = 'The real System.map is in';

/** Parses System.map text. Throws FormatError when nothing in it is a symbol line. */
export function parseSystemMap(text: string, options: SystemMapOptions = {}): SystemMap {
  const source = options.source ?? 'System.map';
  const shift = options.shift ?? 0n;
  const [lo, hi] = options.shiftRange ?? KERNEL_IMAGE_MAP;
  const builder = new SymbolTableBuilder();
  const anomalies: string[] = [];
  let skipped = 0;
  let lineNo = 0;
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl);
    pos = nl + 1;
    lineNo++;
    if (line.trim() === '') continue;
    if (line.includes(DEBIAN_STUB))
      throw new FormatError(source, "is Debian's one-line stub, not a symbol map", {
        hint: 'the real System.map is in the linux-image-<version>-dbg package; or let vmsight read kallsyms from guest memory',
      });
    const m = LINE.exec(line);
    if (!m) {
      skipped++;
      if (anomalies.length < 8) anomalies.push(`line ${lineNo}: ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    let address = BigInt(`0x${m[1]}`);
    if (shift !== 0n && address >= lo && address < hi) address = BigInt.asUintN(64, address + shift);
    builder.add(m[3]!, address, m[2]!, m[4]);
  }
  if (builder.count === 0)
    throw new FormatError(source, `holds no 'ADDRESS TYPE NAME' lines (${skipped} other lines)`, {
      hint: 'give a System.map or a saved /proc/kallsyms',
    });
  const label = shift === 0n ? source : `${source} (KASLR shift 0x${shift.toString(16)})`;
  return { table: builder.build(`System.map:${label}`), skipped, anomalies, shift };
}

/** Reads and parses a System.map file. */
export function loadSystemMap(path: string, options: SystemMapOptions = {}): SystemMap {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new SourceError('file', path, `cannot read: ${(e as Error).message}`);
  }
  if (size > MAX_SYSTEM_MAP_BYTES) throw new FormatError(path, `is ${size} bytes; a System.map is under ${MAX_SYSTEM_MAP_BYTES >> 20} MiB`);
  const text = readFileSync(path, 'latin1');
  return parseSystemMap(text, { ...options, source: options.source ?? path });
}

/** True when the first symbol-looking line of `head` (a file's first bytes) is a System.map line. */
export function looksLikeSystemMap(head: Uint8Array | string): boolean {
  const text = typeof head === 'string' ? head : Buffer.from(head).toString('latin1');
  for (const line of text.split('\n').slice(0, 4)) {
    if (line.trim() === '') continue;
    return LINE.test(line) && !line.includes(DEBIAN_STUB);
  }
  return false;
}

/**
 * The KASLR shift that moves a link-time table onto a running kernel:
 * runtime `_text` (kallsyms, or link-time `_text` + KERNELOFFSET) minus the table's `_text`.
 */
export function kaslrShift(linkTime: SymbolTable, runtimeText: bigint): bigint {
  const text = linkTime.tryAddress('_text') ?? linkTime.tryAddress('_stext');
  if (text === undefined) throw new ProfileError('cannot compute the KASLR shift: the map has neither _text nor _stext', { symbol: '_text', tried: [linkTime.source] });
  return runtimeText - text;
}
