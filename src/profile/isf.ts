/**
 * Volatility 3 Intermediate Symbol Format (ISF, schema 6.x) in and out.
 *
 * Import: an ISF JSON (optionally .json.xz, decompressed with the host `xz`)
 * becomes a TypeDb plus a symbol table, for kernels without BTF.
 * Export: our BTF (+ kallsyms) profile becomes an ISF that Volatility 3 can
 * load; `symbols.linux_banner.constant_data` carries the banner so its
 * symbol finder matches the image.
 *
 * Format facts (volatility3/schemas/schema-6.x.json): top-level keys
 * metadata {format '6.x.y', producer {name, version}, linux {}}, base_types
 * {size, signed, kind void|int|float|char|bool, endian}, user_types {kind
 * struct|union|class, size, fields {name: {type, offset, anonymous?}}}, enums
 * {size, base, constants}, symbols {address, type?, constant_data? (base64)}.
 * Type descriptors: base{name}, pointer{subtype}, array{count, subtype},
 * struct|union|class{name}, enum{name}, function, bitfield{bit_position,
 * bit_length, type}. Typedefs do not exist in ISF; they are resolved.
 * Kernel addresses exceed 2^53, so JSON integers are parsed losslessly.
 *
 * Longer than ~400 lines on purpose: import and export of one format share its
 * facts (type descriptors, base types, banner); keeping them together keeps
 * the round trip consistent.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { childProcess } from '../core/builtins.js';
import { startProgress } from '../core/progress.js';
import { FormatError, ProfileError, SourceError } from '../core/errors.js';
import { globalSpec, globalType } from './globals.js';
import { ArrayTypeStore, TypeDb, type Member, type Type, type TypeId } from './types.js';

export const ISF_FORMAT = '6.2.0';
export const PRODUCER = { name: 'vmsight', version: '0.1.0' };

/** A type descriptor as ISF writes it. */
export type IsfTypeDesc =
  | { kind: 'base'; name: string }
  | { kind: 'pointer'; subtype: IsfTypeDesc; base?: string }
  | { kind: 'array'; count: number; subtype: IsfTypeDesc }
  | { kind: 'struct' | 'union' | 'class'; name: string }
  | { kind: 'enum'; name: string }
  | { kind: 'function' }
  | { kind: 'bitfield'; bit_position: number; bit_length: number; type: IsfTypeDesc };

export interface IsfJson {
  metadata: { format: string; producer?: { name: string; version: string; datetime?: string }; linux?: Record<string, unknown>; [k: string]: unknown };
  base_types: Record<string, { size: number; signed: boolean; kind: string; endian: string }>;
  user_types: Record<string, { kind: string; size: number; fields: Record<string, { type: IsfTypeDesc; offset: number; anonymous?: boolean }> }>;
  enums: Record<string, { size: number; base: string; constants: Record<string, number | bigint> }>;
  symbols: Record<string, { address: number | bigint; type?: IsfTypeDesc; linkage_name?: string; constant_data?: string }>;
}

export interface IsfSymbol {
  readonly address: bigint;
  /** The symbol's type when the ISF gives one (also registered as a VAR in the TypeDb). */
  readonly type?: TypeId;
}

/** Symbols from an ISF; `address(name)` matches the kallsyms SymbolTable shape. */
export class IsfSymbols {
  readonly byName: ReadonlyMap<string, IsfSymbol>;
  constructor(byName: Map<string, IsfSymbol>) {
    this.byName = byName;
  }
  address(name: string): bigint | undefined {
    return this.byName.get(name)?.address;
  }
  tryAddress(name: string): bigint | undefined {
    return this.byName.get(name)?.address;
  }
  get size(): number {
    return this.byName.size;
  }
}

export interface ImportedIsf {
  readonly db: TypeDb;
  readonly symbols: IsfSymbols;
  /** The kernel banner from `symbols.linux_banner.constant_data`, without its trailing newline. */
  readonly banner: string | undefined;
  readonly metadata: IsfJson['metadata'];
}

/** Reads an ISF file (.json or .json.xz) as JSON, keeping big integers exact. */
export function readIsfFile(path: string): IsfJson {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SourceError('file', path, (e as Error).message, { cause: e });
  }
  if (bytes[0] === 0xfd && bytes[1] === 0x37 && bytes[2] === 0x7a) {
    const r = childProcess().spawnSync('xz', ['-dc'], { input: bytes, maxBuffer: 1 << 30 });
    if (r.error || r.status !== 0) {
      throw new SourceError('xz', path, `cannot decompress: ${r.error?.message ?? r.stderr.toString().trim()}`, { cause: r.error, hint: 'install xz-utils' });
    }
    bytes = r.stdout;
  }
  return parseIsfText(bytes.toString('utf8'), path);
}

const BIG_MARK = '@@vmsight-bigint:';

/** JSON.parse that keeps integers beyond 2^53 as bigint. */
export function parseIsfText(text: string, source = 'isf'): IsfJson {
  const marked = text.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,}\]])/g, (_m, pre: string, digits: string) => `${pre}"${BIG_MARK}${digits}"`);
  let isf: IsfJson;
  try {
    isf = JSON.parse(marked) as IsfJson;
  } catch (e) {
    throw new FormatError(source, `not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  // Big integers can only be addresses and enum constants: revive them there (a reviver over every value is slow).
  const revive = (v: unknown): unknown => (typeof v === 'string' && v.startsWith(BIG_MARK) ? BigInt(v.slice(BIG_MARK.length)) : v);
  if (marked.length !== text.length) {
    for (const s of Object.values(isf.symbols ?? {})) if (s && typeof s === 'object') s.address = revive(s.address) as bigint;
    for (const e of Object.values(isf.enums ?? {})) {
      const c = e?.constants;
      if (c && typeof c === 'object') for (const k of Object.keys(c)) c[k] = revive(c[k]) as bigint;
    }
  }
  return isf;
}

/** JSON text with bigints written as plain integers (what Python's json expects). */
export function stringifyIsf(isf: IsfJson, indent?: number): string {
  const text = JSON.stringify(isf, (_k, v) => (typeof v === 'bigint' ? (v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : `${BIG_MARK}${v}`) : v), indent);
  return text.replace(/"@@vmsight-bigint:(-?\d+)"/g, '$1');
}

/** Writes an ISF; a path ending in .xz is compressed with the host `xz`. */
export function writeIsfFile(path: string, isf: IsfJson): void {
  let data: Buffer = Buffer.from(stringifyIsf(isf));
  if (path.endsWith('.xz')) {
    const r = childProcess().spawnSync('xz', ['-zc', '-T1'], { input: data, maxBuffer: 1 << 30 });
    if (r.error || r.status !== 0) throw new SourceError('xz', path, `cannot compress: ${r.error?.message ?? r.stderr.toString().trim()}`, { cause: r.error });
    data = r.stdout;
  }
  try {
    writeFileSync(path, data);
  } catch (e) {
    throw new SourceError('file', path, (e as Error).message, { cause: e });
  }
}

/**
 * writeIsfFile with progress: the JSON is streamed through the host `xz` in chunks (compressing a 6.x
 * kernel's ISF takes seconds), and the bytes fed so far are reported to the installed progress renderer.
 */
export async function writeIsfFileWithProgress(path: string, isf: IsfJson): Promise<void> {
  if (!path.endsWith('.xz')) return writeIsfFile(path, isf);
  const data = Buffer.from(stringifyIsf(isf));
  const progress = startProgress(`ISF export ${path}`, 'bytes', data.length);
  try {
    const compressed = await new Promise<Buffer>((resolve, reject) => {
      const xz = childProcess().spawn('xz', ['-zc', '-T1'], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      xz.stdout.on('data', (b: Buffer) => out.push(b));
      xz.stderr.on('data', (b: Buffer) => err.push(b));
      xz.on('error', reject);
      xz.stdin.on('error', () => undefined); // an early exit is reported by 'close' with its stderr
      xz.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(Buffer.concat(err).toString().trim() || `xz exited with ${code}`))));
      const CHUNK = 1 << 20;
      let at = 0;
      const feed = (): void => {
        while (at < data.length) {
          const part = data.subarray(at, at + CHUNK);
          at += part.length;
          progress.update(at);
          if (!xz.stdin.write(part)) return void xz.stdin.once('drain', feed);
        }
        xz.stdin.end();
      };
      feed();
    }).catch((e: Error) => {
      throw new SourceError('xz', path, `cannot compress: ${e.message}`, { cause: e });
    });
    try {
      writeFileSync(path, compressed);
    } catch (e) {
      throw new SourceError('file', path, (e as Error).message, { cause: e });
    }
  } finally {
    progress.end();
  }
}

/** The banner stored in an ISF (`linux_banner` constant data), trailing newline/NUL removed. */
export function isfBanner(isf: IsfJson): string | undefined {
  const data = isf.symbols?.['linux_banner']?.constant_data;
  if (typeof data !== 'string') return undefined;
  return normalizeBanner(Buffer.from(data, 'base64').toString('latin1'));
}

function normalizeBanner(b: string): string {
  return b.replace(/[\0\s]+$/, '');
}

/**
 * Refuses an ISF made for another kernel: throws ProfileError naming both
 * banners. An ISF without a banner is refused too (it cannot be checked).
 */
export function checkIsfMatches(isf: IsfJson, banner: string): void {
  const theirs = isfBanner(isf);
  const ours = normalizeBanner(banner);
  if (theirs === undefined) {
    throw new ProfileError(`the ISF has no linux_banner constant data, so it cannot be matched to this kernel ("${ours}")`, {
      symbol: 'linux_banner',
      tried: ['isf'],
      hint: 'use an ISF generated for this exact kernel (dwarf2json or vmsight profile export)',
    });
  }
  if (theirs !== ours) {
    throw new ProfileError(`the ISF is for another kernel: ISF banner "${theirs}", guest banner "${ours}"`, {
      symbol: 'linux_banner',
      tried: ['isf'],
      hint: 'give the ISF generated for the guest kernel',
    });
  }
}

/** Imports an ISF (object, JSON text or file path) into a TypeDb and symbol table. */
export function importIsf(input: IsfJson | string, source?: string): ImportedIsf {
  let isf: IsfJson;
  let name: string;
  if (typeof input === 'string') {
    name = source ?? `isf:${input}`;
    isf = input.trimStart().startsWith('{') ? parseIsfText(input, name) : readIsfFile(input);
  } else {
    isf = input;
    name = source ?? 'isf';
  }
  return new IsfImporter(isf, name).run();
}

class IsfImporter {
  private readonly store: ArrayTypeStore;
  private readonly base = new Map<string, TypeId>();
  private readonly user = new Map<string, TypeId>();
  private readonly enums = new Map<string, TypeId>();
  private readonly ptrs = new Map<TypeId, TypeId>();
  private readonly arrays = new Map<string, TypeId>();
  private funcProto: TypeId | undefined;

  constructor(
    private readonly isf: IsfJson,
    private readonly source: string,
  ) {
    this.store = new ArrayTypeStore(source);
  }

  run(): ImportedIsf {
    const isf = this.isf;
    for (const key of ['metadata', 'base_types', 'user_types', 'enums', 'symbols'] as const) {
      if (!isf || typeof isf[key] !== 'object' || isf[key] === null) throw new FormatError(this.source, `not an ISF: '${key}' is missing`);
    }
    const format = String(isf.metadata.format ?? '');
    if (!/^[4-6]\.\d+\.\d+$/.test(format)) throw new FormatError(this.source, `ISF format '${format}' is not supported (4.x–6.x are)`);

    for (const [n, b] of Object.entries(isf.base_types)) {
      if (n === 'pointer') continue; // pointer width, not a type
      const size = int(b.size, `base_types.${n}.size`, this.source);
      if (b.endian && b.endian !== 'little') throw new FormatError(this.source, `base type ${n} is ${b.endian}-endian; only little-endian is supported`);
      if (b.kind === 'void') this.base.set(n, 0);
      else if (b.kind === 'float') this.base.set(n, this.store.add({ kind: 'float', name: n, size }));
      else {
        this.base.set(
          n,
          this.store.add({ kind: 'int', name: n, size, signed: !!b.signed, char: b.kind === 'char', bool: b.kind === 'bool', bits: size * 8, bitOffset: 0 }),
        );
      }
    }
    if (!this.base.has('void')) this.base.set('void', 0);
    // Placeholders first: user types and enums refer to each other by name.
    for (const [n, u] of Object.entries(isf.user_types)) {
      const kind = u.kind === 'union' ? 'union' : 'struct';
      this.user.set(n, this.store.add({ kind, name: n, size: 0, members: [] }));
    }
    for (const [n, e] of Object.entries(isf.enums)) {
      const values = Object.entries(e.constants ?? {}).map(([k, v]) => ({ name: k, value: BigInt(v) }));
      const baseId = this.base.get(e.base);
      const signed = baseId !== undefined && baseId !== 0 ? (this.store.get(baseId) as { signed?: boolean }).signed === true : values.some((v) => v.value < 0n);
      this.enums.set(n, this.store.add({ kind: 'enum', name: n, size: int(e.size, `enums.${n}.size`, this.source), signed, values }));
    }
    for (const [n, u] of Object.entries(isf.user_types)) {
      const members: Member[] = [];
      for (const [fname, f] of Object.entries(u.fields ?? {})) {
        const offset = int(f.offset, `user_types.${n}.fields.${fname}.offset`, this.source);
        const anonymous = f.anonymous === true;
        if (f.type?.kind === 'bitfield') {
          const bf = f.type;
          members.push({ name: anonymous ? '' : fname, type: this.desc(bf.type, `${n}.${fname}`), bitOffset: offset * 8 + int(bf.bit_position, 'bit_position', this.source), bitSize: int(bf.bit_length, 'bit_length', this.source) });
        } else {
          members.push({ name: anonymous ? '' : fname, type: this.desc(f.type, `${n}.${fname}`), bitOffset: offset * 8, bitSize: 0 });
        }
      }
      members.sort((a, b) => a.bitOffset - b.bitOffset);
      const kind = u.kind === 'union' ? 'union' : 'struct';
      this.store.set(this.user.get(n)!, { kind, name: n, size: int(u.size, `user_types.${n}.size`, this.source), members });
    }
    const byName = new Map<string, IsfSymbol>();
    for (const [n, s] of Object.entries(isf.symbols)) {
      if (s.address === undefined) continue;
      const address = BigInt.asUintN(64, BigInt(s.address));
      let type: TypeId | undefined;
      if (s.type) {
        type = this.desc(s.type, n);
        this.store.add({ kind: 'var', name: n, type, linkage: 1 });
      }
      byName.set(n, type === undefined ? { address } : { address, type });
    }
    return { db: new TypeDb(this.store), symbols: new IsfSymbols(byName), banner: isfBanner(isf), metadata: isf.metadata };
  }

  private desc(d: IsfTypeDesc | undefined, where: string, depth = 0): TypeId {
    if (!d || typeof d !== 'object' || depth > 32) throw new FormatError(this.source, `type descriptor of ${where} is malformed`);
    switch (d.kind) {
      case 'base': {
        const id = this.base.get(d.name);
        if (id === undefined) throw new FormatError(this.source, `${where} uses base type '${d.name}', which base_types does not define`);
        return id;
      }
      case 'pointer': {
        const target = this.desc(d.subtype, where, depth + 1);
        let id = this.ptrs.get(target);
        if (id === undefined) this.ptrs.set(target, (id = this.store.add({ kind: 'pointer', name: '', target })));
        return id;
      }
      case 'array': {
        const elem = this.desc(d.subtype, where, depth + 1);
        const count = int(d.count, `${where} array count`, this.source);
        const key = `${elem}:${count}`;
        let id = this.arrays.get(key);
        if (id === undefined) this.arrays.set(key, (id = this.store.add({ kind: 'array', name: '', elem, length: count })));
        return id;
      }
      case 'struct':
      case 'union':
      case 'class': {
        let id = this.user.get(d.name);
        if (id === undefined) this.user.set(d.name, (id = this.store.add({ kind: 'fwd', name: d.name, union: d.kind === 'union' })));
        return id;
      }
      case 'enum': {
        const id = this.enums.get(d.name);
        if (id === undefined) throw new FormatError(this.source, `${where} uses enum '${d.name}', which enums does not define`);
        return id;
      }
      case 'function':
        return (this.funcProto ??= this.store.add({ kind: 'func_proto', name: '', ret: 0, params: [], variadic: false }));
      case 'bitfield':
        return this.desc(d.type, where, depth + 1);
      default:
        throw new FormatError(this.source, `${where} has unknown type kind '${(d as { kind: string }).kind}'`);
    }
  }
}

function int(v: unknown, what: string, source: string): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new FormatError(source, `${what} is not a non-negative integer`);
  return n;
}

export interface ExportOptions {
  /** The kernel banner (linux_banner); without it Volatility cannot match the ISF to an image. */
  banner?: string;
  /**
   * KASLR virtual shift (runtime − link-time) of the given symbol addresses.
   * It is subtracted, so the ISF holds link-time addresses as dwarf2json's do
   * and Volatility (or our importer) applies each boot's own shift.
   */
  shift?: bigint;
  /** Symbol sizes for T[] globals; default: distance to the next higher symbol address. */
  symbolSize?: (name: string) => number | undefined;
}

export interface ExportStats {
  userTypes: number;
  enums: number;
  baseTypes: number;
  symbols: number;
  /** Names defined more than once in BTF; the first definition was kept. */
  duplicateNames: string[];
}

/**
 * Exports a profile as an ISF: every struct, union and enum of the TypeDb
 * (anonymous ones named `unnamed_<kind>_<id>`), the base types they use, and
 * the symbols (typed where the globals table knows the type).
 */
export function exportIsf(db: TypeDb, symbols: Iterable<{ name: string; address: bigint }>, opts: ExportOptions = {}): { isf: IsfJson; stats: ExportStats } {
  const ex = new IsfExporter(db);
  for (let id = 1; id < db.store.count; id++) {
    const t = db.get(id);
    if (t.kind === 'struct' || t.kind === 'union' || t.kind === 'enum') ex.named(t);
  }
  ex.flush();
  const out: IsfJson['symbols'] = {};
  const list = [...symbols];
  const sizeOf = opts.symbolSize ?? distanceToNext(list);
  const shift = opts.shift ?? 0n;
  for (const s of list) {
    if (Object.prototype.hasOwnProperty.call(out, s.name)) continue; // the first of duplicate local names
    const entry: IsfJson['symbols'][string] = { address: BigInt.asUintN(64, s.address - shift) };
    if (globalSpec(s.name) || db.find(s.name, ['var'])) {
      try {
        const size = sizeOf(s.name);
        entry.type = ex.desc(globalType(db, s.name, size === undefined ? {} : { symbolSize: size }));
      } catch (e) {
        if (!(e instanceof ProfileError)) throw e; // a global whose type this profile lacks stays untyped
      }
    }
    out[s.name] = entry;
  }
  ex.flush();
  if (opts.banner !== undefined) {
    const b = normalizeBanner(opts.banner);
    const data = Buffer.from(`${b}\n\0`, 'latin1');
    ex.baseTypes['char'] ??= { size: 1, signed: true, kind: 'char', endian: 'little' };
    out['linux_banner'] = {
      address: out['linux_banner']?.address ?? 0n,
      type: { kind: 'array', count: data.length, subtype: { kind: 'base', name: 'char' } },
      constant_data: data.toString('base64'),
    };
  }
  const isf: IsfJson = {
    metadata: { format: ISF_FORMAT, producer: { ...PRODUCER, datetime: new Date().toISOString() }, linux: {} },
    base_types: ex.baseTypes,
    user_types: ex.userTypes,
    enums: ex.enums,
    symbols: out,
  };
  return {
    isf,
    stats: {
      userTypes: Object.keys(ex.userTypes).length,
      enums: Object.keys(ex.enums).length,
      baseTypes: Object.keys(ex.baseTypes).length,
      symbols: Object.keys(out).length,
      duplicateNames: ex.duplicates,
    },
  };
}

/** Symbol size as the distance to the next higher address (kallsyms has no sizes). */
function distanceToNext(list: readonly { name: string; address: bigint }[]): (name: string) => number | undefined {
  const addrs = [...new Set(list.map((s) => s.address))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const byName = new Map<string, bigint>();
  for (const s of list) if (!byName.has(s.name)) byName.set(s.name, s.address);
  return (name) => {
    const a = byName.get(name);
    if (a === undefined) return undefined;
    let lo = 0;
    let hi = addrs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (addrs[mid]! <= a) lo = mid + 1;
      else hi = mid;
    }
    const next = addrs[lo];
    if (next === undefined) return undefined;
    const d = next - a;
    return d > 0n && d < 1n << 24n ? Number(d) : undefined;
  };
}

class IsfExporter {
  readonly baseTypes: IsfJson['base_types'] = {
    pointer: { size: 8, signed: false, kind: 'int', endian: 'little' },
    void: { size: 0, signed: false, kind: 'void', endian: 'little' },
  };
  readonly userTypes: IsfJson['user_types'] = {};
  readonly enums: IsfJson['enums'] = {};
  readonly duplicates: string[] = [];
  /** Composite ids whose fields still need writing. */
  private readonly pending: Type[] = [];
  private readonly names = new Map<TypeId, string>();

  constructor(private readonly db: TypeDb) {}

  /** Registers a struct/union/enum under its ISF name and queues its body. */
  named(t: Type): string {
    const known = this.names.get(t.id);
    if (known !== undefined) return known;
    if (t.kind !== 'struct' && t.kind !== 'union' && t.kind !== 'enum') throw new Error(`not a named kind: ${t.kind}`);
    let name = t.name || `unnamed_${t.kind}_${t.id}`;
    const table = t.kind === 'enum' ? this.enums : this.userTypes;
    if (Object.prototype.hasOwnProperty.call(table, name)) {
      this.duplicates.push(name);
      this.names.set(t.id, name);
      return name;
    }
    this.names.set(t.id, name);
    if (t.kind === 'enum') {
      const constants: Record<string, number | bigint> = {};
      for (const v of t.values) constants[v.name] = v.value;
      this.enums[name] = { size: t.size, base: this.baseFor(t.size, t.signed), constants };
    } else {
      this.userTypes[name] = { kind: t.kind, size: t.size, fields: {} };
      this.pending.push(t);
    }
    return name;
  }

  flush(): void {
    for (let t = this.pending.pop(); t; t = this.pending.pop()) {
      if (t.kind !== 'struct' && t.kind !== 'union') continue;
      const fields = this.userTypes[this.names.get(t.id)!]!.fields;
      t.members.forEach((m, i) => {
        const key = m.name || `unnamed_field_${i}`;
        fields[key] = this.field(m, m.name === '');
      });
    }
  }

  private field(m: Member, anonymous: boolean): IsfJson['user_types'][string]['fields'][string] {
    let bitSize = m.bitSize;
    let bitOffset = m.bitOffset;
    const r = this.db.resolve(m.type);
    if (!bitSize && r.kind === 'int' && r.bits > 0 && (r.bits !== r.size * 8 || r.bitOffset)) {
      bitSize = r.bits; // legacy BTF bitfield encoding
      bitOffset += r.bitOffset;
    }
    if (bitSize) {
      const size = r.kind === 'int' || r.kind === 'enum' ? r.size : 4;
      const unit = size * 8;
      let start = Math.floor(bitOffset / unit) * unit;
      if (bitOffset + bitSize > start + unit) start = Math.floor(bitOffset / 8) * 8;
      const f = { type: { kind: 'bitfield' as const, bit_position: bitOffset - start, bit_length: bitSize, type: this.desc(m.type) }, offset: start / 8 };
      return anonymous ? { ...f, anonymous } : f;
    }
    const f = { type: this.desc(m.type), offset: Math.floor(bitOffset / 8) };
    return anonymous ? { ...f, anonymous } : f;
  }

  /** The ISF descriptor of a type id (typedefs and qualifiers resolved). */
  desc(id: TypeId, depth = 0): IsfTypeDesc {
    if (depth > 64) return { kind: 'base', name: 'void' };
    const t = this.db.resolve(id);
    switch (t.kind) {
      case 'void':
        return { kind: 'base', name: 'void' };
      case 'int': {
        const name = t.name || this.baseFor(t.size, t.signed);
        this.baseTypes[name] ??= { size: t.size, signed: t.signed, kind: t.bool ? 'bool' : t.char ? 'char' : 'int', endian: 'little' };
        return { kind: 'base', name };
      }
      case 'float':
        this.baseTypes[t.name] ??= { size: t.size, signed: true, kind: 'float', endian: 'little' };
        return { kind: 'base', name: t.name };
      case 'pointer':
        return { kind: 'pointer', subtype: this.desc(t.target, depth + 1) };
      case 'array':
        return { kind: 'array', count: t.length, subtype: this.desc(t.elem, depth + 1) };
      case 'struct':
      case 'union':
        return { kind: t.kind, name: this.named(t) };
      case 'enum':
        return { kind: 'enum', name: this.named(t) };
      case 'fwd': {
        const kind = t.union ? 'union' : 'struct';
        const full = this.db.find(t.name, [kind]);
        if (full) return { kind, name: this.named(full) };
        this.userTypes[t.name] ??= { kind, size: 0, fields: {} };
        return { kind, name: t.name };
      }
      case 'func_proto':
      case 'func':
        return { kind: 'function' };
      default:
        return { kind: 'base', name: 'void' };
    }
  }

  /** A base type name for an enum's storage. */
  private baseFor(size: number, signed: boolean): string {
    const names: Record<number, [string, string]> = {
      1: ['unsigned char', 'signed char'],
      2: ['short unsigned int', 'short int'],
      4: ['unsigned int', 'int'],
      8: ['long unsigned int', 'long int'],
    };
    const name = (names[size] ?? [`u${size * 8}`, `s${size * 8}`])[signed ? 1 : 0];
    this.baseTypes[name] ??= { size, signed, kind: 'int', endian: 'little' };
    return name;
  }
}

