/**
 * C type expressions over a TypeDb: parsing ('struct list_head *',
 * 'unsigned long', 'char[65]') into ids, C declarations of ids
 * ('char comm[16]', 'void (*fn)(int)'), the spellings of integer types, and
 * field paths ('a.b[2].c'). TypeDb.parse/declare/typeName delegate here.
 */
import { ProfileError } from '../core/errors.js';
import type { TypeId } from './type-model.js';
import type { TypeDb } from './types.js';

/** Bound on typedef/qualifier chains and nesting: hostile BTF may loop. */
const MAX_DEPTH = 64;

/**
 * Parses a C type expression into an id: 'struct list_head', 'task_struct'
 * (tried as struct, union, typedef, base type), 'unsigned long', 'char[65]',
 * 'struct printk_ringbuffer *', 'sys_call_ptr_t[451]'.
 */
export function parseCType(db: TypeDb, expr: string): TypeId {
  let s = expr.trim();
  const dims: number[] = [];
  for (let m = /\[(\d*)\]\s*$/.exec(s); m; m = /\[(\d*)\]\s*$/.exec(s)) {
    dims.unshift(m[1] === '' ? 0 : Number(m[1]));
    s = s.slice(0, m.index).trim();
  }
  let stars = 0;
  while (s.endsWith('*')) {
    stars++;
    s = s.slice(0, -1).trim();
  }
  s = s.replace(/\b(const|volatile)\b/g, '').replace(/\s+/g, ' ').trim();
  let id: TypeId;
  const tagged = /^(struct|union|enum) (\S+)$/.exec(s);
  if (tagged) {
    const kind = tagged[1] as 'struct' | 'union' | 'enum';
    const t = db.find(tagged[2]!, [kind, 'fwd']);
    if (!t) throw new ProfileError(`${kind} ${tagged[2]} is not defined`, { type: `${kind} ${tagged[2]}`, tried: [db.source] });
    id = t.id;
  } else if (s === 'void') {
    id = 0;
  } else {
    let t = db.find(s, ['struct', 'union', 'typedef', 'int', 'float', 'enum', 'fwd']);
    for (const alt of intSpellings(s)) t ??= db.find(alt, ['int']);
    if (!t) throw new ProfileError(`type '${s}' is not defined`, { type: s, tried: [db.source] });
    id = t.id;
  }
  for (let i = 0; i < stars; i++) id = db.pointerTo(id);
  for (let i = dims.length - 1; i >= 0; i--) id = db.arrayOf(id, dims[i]!);
  return id;
}

/** A C declaration of `name` with type `id`, e.g. 'char comm[16]', 'void (*fn)(int)'. */
export function declareC(db: TypeDb, id: TypeId, name: string, depth = 0, budget = { steps: 4096 }): string {
  if (depth > MAX_DEPTH || --budget.steps < 0) return `... ${name}`;
  const t = db.get(id);
  const sp = name ? (name.startsWith('[') ? name : ` ${name}`) : '';
  switch (t.kind) {
    case 'void':
    case 'int':
    case 'float':
    case 'typedef':
      return `${t.name}${sp}`;
    case 'struct':
    case 'union':
    case 'enum':
      return `${t.kind} ${t.name || '{...}'}${sp}`;
    case 'fwd':
      return `${t.union ? 'union' : 'struct'} ${t.name}${sp}`;
    case 'pointer': {
      const target = db.get(t.target);
      const inner = target.kind === 'array' || target.kind === 'func_proto' ? `(*${name})` : `*${name}`;
      return declareC(db, t.target, inner, depth + 1, budget);
    }
    case 'array':
      return declareC(db, t.elem, `${name}[${t.length}]`, depth + 1, budget);
    case 'const':
    case 'volatile':
    case 'restrict': {
      const target = db.get(t.target);
      if (target.kind === 'pointer') return declareC(db, t.target, `${t.kind}${sp}`, depth + 1, budget);
      return `${t.kind} ${declareC(db, t.target, name, depth + 1, budget)}`;
    }
    case 'type_tag':
      return declareC(db, t.target, name, depth + 1, budget);
    case 'func_proto': {
      const params = t.params.map((p) => (p.type === 0 && t.variadic ? '...' : declareC(db, p.type, p.name, depth + 1, budget).trim()));
      return declareC(db, t.ret, `${name}(${params.join(', ') || 'void'})`, depth + 1, budget);
    }
    case 'func':
      return declareC(db, t.proto, t.name, depth + 1, budget);
    case 'var':
      return declareC(db, t.type, t.name, depth + 1, budget);
    case 'datasec':
      return `SEC("${t.name}")${sp}`;
    case 'decl_tag':
      return `__attribute__((btf_decl_tag("${t.name}")))${sp}`;
  }
}

/**
 * Other spellings of a C integer type name: GCC's DWARF/BTF says
 * 'long unsigned int' where C code says 'unsigned long'.
 */
export function intSpellings(name: string): string[] {
  const words = name.split(' ');
  if (!words.every((w) => ['unsigned', 'signed', 'short', 'long', 'int', 'char'].includes(w))) return [];
  const unsigned = words.includes('unsigned');
  const longs = words.filter((w) => w === 'long').length;
  const base = words.includes('char') ? 'char' : words.includes('short') ? 'short' : longs === 2 ? 'long long' : longs === 1 ? 'long' : 'int';
  if (base === 'char') return unsigned ? ['unsigned char'] : words.includes('signed') ? ['signed char'] : ['char'];
  if (base === 'int') return unsigned ? ['unsigned int', 'unsigned'] : ['int', 'signed int'];
  return unsigned ? [`${base} unsigned int`, `unsigned ${base} int`, `unsigned ${base}`] : [`${base} int`, `signed ${base} int`, base, `signed ${base}`];
}

/** Splits 'a.b[2].c' into ['a', 'b', 2, 'c']; undefined when malformed. */
export function splitPath(path: string): (string | number)[] | undefined {
  const out: (string | number)[] = [];
  const re = /\s*(?:\.?\s*([A-Za-z_$][\w$]*)|\[\s*(\d+)\s*\])/y;
  let i = 0;
  if (path === '') return out;
  while (i < path.length) {
    re.lastIndex = i;
    const m = re.exec(path);
    if (!m || (m[1] !== undefined && out.length === 0 && path[i] === '.')) return undefined;
    out.push(m[1] !== undefined ? m[1] : Number(m[2]));
    i = re.lastIndex;
  }
  return out;
}
