/**
 * A pahole-like layout of a struct/union (`vmsight types SOURCE NAME`):
 * each member with its offset and size (bitfields as byte:bit), anonymous
 * members expanded, holes and padding flagged, and a summary line.
 * Presentation of the profile's types, so it lives beside the command.
 */
import type { StructType, Type, TypeId, TypeRef } from '../../profile/type-model.js';
import type { TypeDb } from '../../profile/types.js';

/** Bound on layout text (anonymous members are expanded inline). */
const MAX_LAYOUT_LINES = 20_000;

/** The layout text of a struct or union (by name or id). */
export function layoutText(db: TypeDb, ref: TypeRef): string {
  const t = db.composite(ref);
  const lines: string[] = [];
  const stats = { holes: 0, holeBytes: 0, bitHoles: 0 };
  lines.push(`${t.kind} ${t.name || '{...}'} {`);
  const end = layoutMembers(db, t, 0, 1, lines, stats);
  if (lines.length > MAX_LAYOUT_LINES) lines.splice(MAX_LAYOUT_LINES, lines.length, '\t/* ... layout truncated ... */');
  const pad = t.size - Math.ceil(end / 8);
  lines.push('');
  lines.push(`\t/* size: ${t.size}, members: ${t.members.length}${stats.holes ? `, holes: ${stats.holes}, sum holes: ${stats.holeBytes}` : ''}${pad > 0 ? `, padding: ${pad}` : ''} */`);
  lines.push('};');
  return lines.join('\n');
}

function layoutMembers(db: TypeDb, t: StructType, base: number, indent: number, lines: string[], stats: { holes: number; holeBytes: number }): number {
  const tab = '\t'.repeat(indent);
  let cursor = base; // bits
  let maxEnd = base;
  for (const m of t.members) {
    if (lines.length > MAX_LAYOUT_LINES) break;
    const abs = base + m.bitOffset;
    const info = db.memberBits(m);
    const bitOff = abs + info.extraOffset;
    if (t.kind === 'struct' && bitOff > cursor && info.bitSize === 0) {
      const holeBits = bitOff - cursor;
      if (holeBits >= 8) {
        stats.holes++;
        stats.holeBytes += Math.floor(holeBits / 8);
        lines.push(`${tab}/* XXX ${Math.floor(holeBits / 8)} byte${holeBits >= 16 ? 's' : ''} hole, try to pack */`);
      } else lines.push(`${tab}/* XXX ${holeBits} bit${holeBits > 1 ? 's' : ''} hole */`);
    }
    let size = 0;
    try {
      size = db.sizeOf(m.type);
    } catch {
      size = 0;
    }
    const r = tryResolve(db, m.type);
    let endBits: number;
    if (m.name === '' && r && (r.kind === 'struct' || r.kind === 'union') && indent < 8) {
      lines.push(`${tab}${r.kind} {`);
      layoutMembers(db, r, bitOff, indent + 1, lines, stats);
      lines.push(`${tab}};${' '.repeat(Math.max(1, 40 - indent * 8))}/* ${pos(bitOff)} ${size} */`);
      endBits = bitOff + size * 8;
    } else if (info.bitSize) {
      const decl = `${db.declare(m.type, m.name)}:${info.bitSize};`;
      const byte = Math.floor(bitOff / 8);
      lines.push(`${tab}${pad(decl, 48 - indent * 8)} /* ${String(byte).padStart(5)}:${String(bitOff % 8).padStart(2)} ${String(size).padStart(4)} */`);
      endBits = bitOff + info.bitSize;
    } else {
      const decl = `${db.declare(m.type, m.name)};`;
      lines.push(`${tab}${pad(decl, 48 - indent * 8)} /* ${pos(bitOff)} ${String(size).padStart(4)} */`);
      endBits = bitOff + size * 8;
    }
    if (t.kind === 'struct') cursor = Math.max(cursor, endBits);
    maxEnd = Math.max(maxEnd, endBits);
  }
  return maxEnd;
}

function tryResolve(db: TypeDb, id: TypeId): Type | undefined {
  try {
    return db.resolve(id);
  } catch {
    return undefined;
  }
}

function pos(bits: number): string {
  return String(Math.floor(bits / 8)).padStart(6);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
