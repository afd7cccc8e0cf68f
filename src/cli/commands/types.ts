/**
 * `vmsight types <source> NAME`: the layout of a kernel type as the guest's
 * own BTF describes it, like pahole: members with offsets, sizes, bitfields
 * and holes. `--profile FILE` alone (no source) reads a BTF file, a vmlinux,
 * a vmlinuz or a Volatility ISF instead. NAME may be a glob ('*_struct') to
 * list matching type names. --json/--csv give one row per member.
 */
import { existsSync } from 'node:fs';
import { MissingFileError, ProfileError, UsageError } from '../../core/errors.js';
import { attachKernel } from '../../linux/attach.js';
import { loadBtfFile } from '../../profile/btf/sources.js';
import { importIsf } from '../../profile/isf.js';
import { TypeDb, type StructType, type Type, type TypeId } from '../../profile/types.js';
import type { Command, ParsedArgs } from '../command.js';
import type { Column } from '../render.js';
import { attachOptions, attachOptionSpec } from './common.js';
import { layoutText } from './type-layout.js';

const USAGE = '<source> NAME | --profile FILE NAME  [--kind struct|union|enum|typedef] [--expand]';

const MEMBER_COLUMNS: readonly Column[] = [
  { key: 'offset', kind: 'int' },
  { key: 'bit', kind: 'int' },
  { key: 'bits', kind: 'int' },
  { key: 'size', kind: 'int' },
  { key: 'member', kind: 'str' },
  { key: 'type', kind: 'str' },
];

const LIST_COLUMNS: readonly Column[] = [
  { key: 'kind', kind: 'str' },
  { key: 'name', kind: 'str' },
  { key: 'size', kind: 'int' },
];

const KINDS = ['struct', 'union', 'enum', 'typedef'] as const;
type LookupKind = (typeof KINDS)[number];

/** Types from a profile file: ISF (.json / .json.xz) or BTF (raw, vmlinux, vmlinuz). */
function typesFromFile(file: string): TypeDb {
  if (!existsSync(file)) throw new MissingFileError('--profile', file);
  if (/\.json(\.xz)?$/i.test(file)) return importIsf(file).db;
  return new TypeDb(loadBtfFile(file));
}

/** One row per member, through anonymous members (and nested named ones with --expand). */
function memberRows(db: TypeDb, t: StructType, expand: boolean, prefix = '', baseBits = 0, depth = 0, rows: Record<string, unknown>[] = []): Record<string, unknown>[] {
  for (const m of t.members) {
    if (rows.length > 50_000) break;
    const r = safeResolve(db, m.type);
    const path = m.name ? `${prefix}${m.name}` : prefix;
    const bits = baseBits + m.bitOffset;
    const f = m.name ? db.tryField(t.id, m.name) : undefined;
    const bitOffset = f ? baseBits + f.bitOffset : bits;
    const bitSize = f?.bitSize ?? m.bitSize;
    if (m.name) {
      rows.push({
        offset: bitSize ? (f ? baseBits / 8 + f.offset : Math.floor(bits / 8)) : Math.floor(bitOffset / 8),
        bit: bitSize ? bitOffset % 8 : null,
        bits: bitSize || null,
        size: sizeOrZero(db, m.type),
        member: path,
        type: db.typeName(m.type),
      });
    }
    const nested = r && (r.kind === 'struct' || r.kind === 'union') && (m.name === '' || expand) && depth < 8;
    if (nested) memberRows(db, r as StructType, expand, m.name ? `${path}.` : prefix, bits, depth + 1, rows);
  }
  return rows;
}

function safeResolve(db: TypeDb, id: TypeId): Type | undefined {
  try {
    return db.resolve(id);
  } catch {
    return undefined;
  }
}

function sizeOrZero(db: TypeDb, id: TypeId): number {
  try {
    return db.sizeOf(id);
  } catch {
    return 0;
  }
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** Struct/union/enum/typedef names matching a glob (bounded). */
function listTypes(db: TypeDb, glob: string, kind: LookupKind | undefined): Record<string, unknown>[] {
  const re = globToRegExp(glob);
  const rows: Record<string, unknown>[] = [];
  const seen = new Set<string>();
  for (let id = 1; id < db.store.count && rows.length < 10_000; id++) {
    const t = db.get(id);
    if (!t.name || !(KINDS as readonly string[]).includes(t.kind) || (kind && t.kind !== kind) || !re.test(t.name)) continue;
    const key = `${t.kind} ${t.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ kind: t.kind, name: t.name, size: sizeOrZero(db, id) });
  }
  return rows.sort((a, b) => String(a['name']).localeCompare(String(b['name'])));
}

function findType(db: TypeDb, name: string, kind: LookupKind | undefined): Type {
  const t = db.find(name, kind ? [kind] : ['struct', 'union', 'enum', 'typedef']);
  if (t) return t;
  throw new ProfileError(`${kind ?? 'type'} ${name} is not defined`, {
    type: name,
    tried: [db.source],
    hint: "list the names with a glob, e.g. `vmsight types <source> '*task*'`",
  });
}

function show(db: TypeDb, name: string, args: ParsedArgs, ctx: Parameters<Command['run']>[1]): void {
  const kindArg = args.values['kind'];
  if (kindArg !== undefined && (typeof kindArg !== 'string' || !(KINDS as readonly string[]).includes(kindArg))) {
    throw new UsageError(`--kind ${String(kindArg)}: expected struct, union, enum or typedef`);
  }
  const kind = kindArg as LookupKind | undefined;
  if (/[*?]/.test(name)) {
    ctx.out.rows(LIST_COLUMNS, listTypes(db, name, kind));
    return;
  }
  const t = findType(db, name, kind);
  const expand = args.values['expand'] === true;
  if (t.kind === 'enum') {
    if (ctx.out.format === 'table') {
      ctx.out.text(`enum ${t.name} {   /* size ${t.size}, ${t.signed ? 'signed' : 'unsigned'} */`);
      for (const v of t.values) ctx.out.text(`\t${v.name} = ${v.value},`);
      ctx.out.text('};');
    } else {
      ctx.out.rows(
        [
          { key: 'name', kind: 'str' },
          { key: 'value', kind: 'int' },
        ],
        t.values.map((v) => ({ name: v.name, value: v.value })),
      );
    }
    return;
  }
  const resolved = db.resolve(t.id);
  if (t.kind === 'typedef' && ctx.out.format === 'table') ctx.out.text(`typedef ${db.declare(t.target, t.name)};   /* size ${sizeOrZero(db, t.id)} */`);
  if (resolved.kind !== 'struct' && resolved.kind !== 'union') {
    if (ctx.out.format !== 'table') ctx.out.record({ name: t.name, kind: t.kind, type: db.typeName(t.id), size: sizeOrZero(db, t.id) });
    return;
  }
  if (ctx.out.format === 'table') {
    ctx.out.text(layoutText(db, resolved.id));
    ctx.out.text(`/* from ${db.source} */`);
  } else {
    ctx.out.rows(MEMBER_COLUMNS, memberRows(db, resolved, expand));
  }
}

export const command: Command = {
  name: 'types',
  aliases: ['type', 'pahole'],
  summary: "a kernel type's layout (offsets, sizes, bitfields, holes) from the guest's BTF or a profile file",
  usage: USAGE,
  options: { ...attachOptionSpec, kind: { type: 'string' }, expand: { type: 'boolean' } },
  async run(args, ctx) {
    const profile = typeof args.values['profile'] === 'string' ? args.values['profile'] : undefined;
    const [first, second] = args.positionals;
    if (profile && first !== undefined && second === undefined) {
      show(typesFromFile(profile), first, args, ctx);
      return 0;
    }
    if (first === undefined || second === undefined) throw new UsageError('missing <source> or NAME', { hint: `usage: vmsight types ${USAGE}` });
    const kernel = await attachKernel(first, attachOptions(args));
    try {
      show(kernel.types, second, args, ctx);
    } finally {
      await kernel.close();
    }
    return 0;
  },
};
