/**
 * bpftool as an independent BTF decoder for tests: `bpftool btf dump file X
 * format raw` reduced to words, and our decoded types rendered the same way.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Type } from '../../../src/profile/types.js';

const KIND: Record<string, Type['kind']> = {
  INT: 'int',
  PTR: 'pointer',
  ARRAY: 'array',
  STRUCT: 'struct',
  UNION: 'union',
  ENUM: 'enum',
  ENUM64: 'enum',
  FWD: 'fwd',
  TYPEDEF: 'typedef',
  VOLATILE: 'volatile',
  CONST: 'const',
  RESTRICT: 'restrict',
  FUNC: 'func',
  FUNC_PROTO: 'func_proto',
  VAR: 'var',
  DATASEC: 'datasec',
  FLOAT: 'float',
  DECL_TAG: 'decl_tag',
  TYPE_TAG: 'type_tag',
};

export function hasBpftool(): boolean {
  return spawnSync('bpftool', ['version']).status === 0;
}

/** Our decoding of one type, rendered in bpftool's raw words. */
export function describe(t: Type): string[] {
  const name = t.name && t.name !== 'void' ? t.name : '(anon)';
  const head: string[] = [String(t.id), t.kind, name];
  const lines: string[] = [];
  switch (t.kind) {
    case 'int':
      head.push(`size=${t.size}`, `bits_offset=${t.bitOffset}`, `nr_bits=${t.bits}`);
      break;
    case 'float':
      head.push(`size=${t.size}`);
      break;
    case 'pointer':
    case 'typedef':
    case 'const':
    case 'volatile':
    case 'restrict':
    case 'type_tag':
      head.push(`type_id=${t.target}`);
      break;
    case 'array':
      head.push(`type_id=${t.elem}`, `nr_elems=${t.length}`);
      break;
    case 'struct':
    case 'union':
      head.push(`size=${t.size}`, `vlen=${t.members.length}`);
      for (const m of t.members) lines.push(`'${m.name || '(anon)'}' type_id=${m.type} bits_offset=${m.bitOffset}${m.bitSize ? ` bitfield_size=${m.bitSize}` : ''}`);
      break;
    case 'enum':
      head.push(`size=${t.size}`, `vlen=${t.values.length}`);
      for (const v of t.values) lines.push(`'${v.name}' val=${v.value}`);
      break;
    case 'fwd':
      head.push(`fwd_kind=${t.union ? 'union' : 'struct'}`);
      break;
    case 'func':
      head.push(`type_id=${t.proto}`);
      break;
    case 'func_proto':
      head.push(`ret_type_id=${t.ret}`, `vlen=${t.params.length}`);
      for (const p of t.params) lines.push(`'${p.name || '(anon)'}' type_id=${p.type}`);
      break;
    case 'var':
      head.push(`type_id=${t.type}`);
      break;
    case 'datasec':
      head.push(`size=${t.size}`, `vlen=${t.vars.length}`);
      for (const v of t.vars) lines.push(`type_id=${v.type} offset=${v.offset} size=${v.size}`);
      break;
    case 'decl_tag':
      head.push(`type_id=${t.target}`, `component_idx=${t.component}`);
      break;
    default:
      break;
  }
  return [head.join(' '), ...lines];
}

/** bpftool's raw dump reduced to the same words. */
export function fromBpftool(text: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  let cur: string[] | undefined;
  for (const line of text.split('\n')) {
    const h = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(line);
    if (h) {
      const [, id, kind, name, rest] = h;
      const words = rest!.replace(/,/g, '').trim().split(/\s+/).filter(Boolean);
      const keep = words.filter((w) => /^(size|bits_offset|nr_bits|type_id|nr_elems|vlen|fwd_kind|ret_type_id|component_idx)=/.test(w));
      cur = [[id, KIND[kind!] ?? kind, name, ...keep].join(' ')];
      out.set(Number(id), cur);
      continue;
    }
    if (cur && line.startsWith('\t')) {
      const m = line.trim().replace(/ \(VAR '[^']*'\)$/, '').replace(/ val=(-?\d+)U?LL$/, ' val=$1');
      cur.push(m);
    }
  }
  return out;
}


/** bpftool's raw dump of a BTF blob, by type id (throws when bpftool fails). */
export function bpftoolDump(bytes: Uint8Array): Map<number, string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmsight-bpftool-'));
  try {
    const file = path.join(dir, 'vmlinux.btf');
    writeFileSync(file, bytes);
    const r = spawnSync('bpftool', ['btf', 'dump', 'file', file, 'format', 'raw'], { maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`bpftool failed: ${r.stderr?.toString()}`);
    return fromBpftool(r.stdout.toString('latin1'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
