/**
 * A small BTF encoder for tests: builds blobs of every kind (and split BTF
 * over a base) so the parser is checked against bytes we laid out by hand
 * from the format description, not against its own output.
 */
export interface MemberSpec {
  name: string;
  type: number;
  /** Bits from the start of the struct. */
  bitOffset: number;
  /** Bitfield width (needs kflag on the struct). */
  bitSize?: number;
}

export class BtfEncoder {
  private readonly records: number[][] = [];
  private readonly strings: number[] = [];
  private readonly strOffsets = new Map<string, number>();
  /** First id this blob defines (1, or the base's count for split BTF). */
  readonly firstId: number;
  /** First string offset (0, or the base's string length). */
  readonly strBase: number;

  constructor(base?: { count: number; strLen: number }) {
    this.firstId = base ? base.count : 1;
    this.strBase = base ? base.strLen : 0;
    if (!base) this.str('');
  }

  /** Next type id. */
  get nextId(): number {
    return this.firstId + this.records.length;
  }

  /** Count of ids including void and the base (what a split blob continues from). */
  get count(): number {
    return this.nextId;
  }

  get strLen(): number {
    return this.strBase + this.strings.length;
  }

  str(s: string): number {
    const known = this.strOffsets.get(s);
    if (known !== undefined) return known;
    const off = this.strBase + this.strings.length;
    for (const b of Buffer.from(s, 'latin1')) this.strings.push(b);
    this.strings.push(0);
    this.strOffsets.set(s, off);
    return off;
  }

  private add(name: string, kind: number, vlen: number, kflag: boolean, sizeOrType: number, tail: number[] = []): number {
    const info = ((kflag ? 1 : 0) << 31) | (kind << 24) | vlen;
    this.records.push([name ? this.str(name) : 0, info >>> 0, sizeOrType >>> 0, ...tail.map((v) => v >>> 0)]);
    return this.nextId - 1;
  }

  int(name: string, size: number, opts: { signed?: boolean; char?: boolean; bool?: boolean; bits?: number; offset?: number } = {}): number {
    const enc = (opts.signed ? 1 : 0) | (opts.char ? 2 : 0) | (opts.bool ? 4 : 0);
    return this.add(name, 1, 0, false, size, [(enc << 24) | ((opts.offset ?? 0) << 16) | (opts.bits ?? size * 8)]);
  }
  ptr(target: number): number {
    return this.add('', 2, 0, false, target);
  }
  array(elem: number, index: number, n: number): number {
    return this.add('', 3, 0, false, 0, [elem, index, n]);
  }
  struct(name: string, size: number, members: MemberSpec[], kflag = false): number {
    return this.add(name, 4, members.length, kflag, size, this.memberWords(members, kflag));
  }
  union(name: string, size: number, members: MemberSpec[], kflag = false): number {
    return this.add(name, 5, members.length, kflag, size, this.memberWords(members, kflag));
  }
  enum(name: string, size: number, values: [string, number][], signed = false): number {
    return this.add(name, 6, values.length, signed, size, values.flatMap(([n, v]) => [this.str(n), v]));
  }
  enum64(name: string, size: number, values: [string, bigint][], signed = false): number {
    return this.add(
      name,
      19,
      values.length,
      signed,
      size,
      values.flatMap(([n, v]) => {
        const u = BigInt.asUintN(64, v);
        return [this.str(n), Number(u & 0xffffffffn), Number(u >> 32n)];
      }),
    );
  }
  fwd(name: string, union = false): number {
    return this.add(name, 7, 0, union, 0);
  }
  typedef(name: string, target: number): number {
    return this.add(name, 8, 0, false, target);
  }
  volatile(target: number): number {
    return this.add('', 9, 0, false, target);
  }
  const(target: number): number {
    return this.add('', 10, 0, false, target);
  }
  restrict(target: number): number {
    return this.add('', 11, 0, false, target);
  }
  func(name: string, proto: number, linkage = 1): number {
    return this.add(name, 12, linkage, false, proto);
  }
  funcProto(ret: number, params: [string, number][]): number {
    return this.add('', 13, params.length, false, ret, params.flatMap(([n, t]) => [n ? this.str(n) : 0, t]));
  }
  var(name: string, type: number, linkage = 1): number {
    return this.add(name, 14, 0, false, type, [linkage]);
  }
  datasec(name: string, size: number, vars: [number, number, number][]): number {
    return this.add(name, 15, vars.length, false, size, vars.flat());
  }
  float(name: string, size: number): number {
    return this.add(name, 16, 0, false, size);
  }
  declTag(name: string, target: number, component: number): number {
    return this.add(name, 17, 0, false, target, [component]);
  }
  typeTag(name: string, target: number): number {
    return this.add(name, 18, 0, false, target);
  }
  /** A record with a raw kind number (to test unknown kinds). */
  raw(kind: number, vlen: number, sizeOrType: number, tail: number[] = []): number {
    return this.add('', kind, vlen, false, sizeOrType, tail);
  }

  private memberWords(members: MemberSpec[], kflag: boolean): number[] {
    return members.flatMap((m) => [m.name ? this.str(m.name) : 0, m.type, kflag ? ((m.bitSize ?? 0) << 24) | m.bitOffset : m.bitOffset]);
  }

  /** The blob: 24-byte header, types, strings. */
  build(opts: { bigEndianMagic?: boolean; version?: number } = {}): Uint8Array {
    const typeWords = this.records.flat();
    const typeLen = typeWords.length * 4;
    const strLen = this.strings.length;
    const out = new Uint8Array(24 + typeLen + strLen);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, 0xeb9f, !opts.bigEndianMagic);
    dv.setUint8(2, opts.version ?? 1);
    dv.setUint8(3, 0);
    dv.setUint32(4, 24, true);
    dv.setUint32(8, 0, true);
    dv.setUint32(12, typeLen, true);
    dv.setUint32(16, typeLen, true);
    dv.setUint32(20, strLen, true);
    typeWords.forEach((w, i) => dv.setUint32(24 + i * 4, w, true));
    out.set(this.strings, 24 + typeLen);
    return out;
  }
}

/**
 * A kernel-like fixture: ints, a task_struct with an anonymous union, a
 * kind_flag bitfield, a char array, a list_head, a pointer to mm_struct, an
 * enum, and typedef/const chains.
 */
export function kernelLikeBtf(): { bytes: Uint8Array; ids: Record<string, number> } {
  const e = new BtfEncoder();
  const ids: Record<string, number> = {};
  ids.int = e.int('int', 4, { signed: true });
  ids.uint = e.int('unsigned int', 4);
  ids.ulong = e.int('long unsigned int', 8);
  ids.char = e.int('char', 1, { signed: true, char: true });
  ids.u64 = e.typedef('u64', e.int('long long unsigned int', 8));
  ids.pid_t = e.typedef('pid_t', ids.int);
  ids.listFwd = e.fwd('list_head');
  const listPtr = e.ptr(ids.listFwd);
  ids.list_head = e.struct('list_head', 16, [
    { name: 'next', type: listPtr, bitOffset: 0 },
    { name: 'prev', type: listPtr, bitOffset: 64 },
  ]);
  ids.state = e.enum('task_state', 4, [
    ['TASK_RUNNING', 0],
    ['TASK_INTERRUPTIBLE', 1],
    ['TASK_DEAD', -1],
  ], true);
  ids.mmFwd = e.fwd('mm_struct');
  const idx = ids.int;
  ids.comm = e.array(ids.char, idx, 16);
  ids.anonStruct = e.struct('', 8, [
    { name: 'prio', type: ids.int, bitOffset: 0 },
    { name: 'static_prio', type: ids.int, bitOffset: 32 },
  ]);
  ids.anonUnion = e.union('', 8, [
    { name: '', type: ids.anonStruct, bitOffset: 0 },
    { name: 'prio_word', type: ids.u64, bitOffset: 0 },
  ]);
  const constInt = e.const(ids.pid_t);
  ids.task_struct = e.struct(
    'task_struct',
    80,
    [
      { name: 'state', type: ids.state, bitOffset: 0 },
      { name: 'pid', type: ids.pid_t, bitOffset: 32 },
      { name: 'tgid', type: constInt, bitOffset: 64 },
      // bitfields: in_execve:1 at bit 96, in_iowait:1 at 97, flags3:3 at 98 (signed)
      { name: 'in_execve', type: ids.uint, bitOffset: 96, bitSize: 1 },
      { name: 'in_iowait', type: ids.uint, bitOffset: 97, bitSize: 1 },
      { name: 'flags3', type: ids.int, bitOffset: 98, bitSize: 3 },
      { name: 'tasks', type: ids.list_head, bitOffset: 128 },
      { name: 'mm', type: e.ptr(ids.mmFwd), bitOffset: 256 },
      { name: 'comm', type: ids.comm, bitOffset: 320 },
      { name: '', type: ids.anonUnion, bitOffset: 448 },
      { name: 'start_time', type: ids.u64, bitOffset: 512 },
      { name: 'stack', type: e.ptr(0), bitOffset: 576 },
    ],
    true,
  );
  ids.mm_struct = e.struct('mm_struct', 24, [
    { name: 'arg_start', type: ids.ulong, bitOffset: 0 },
    { name: 'arg_end', type: ids.ulong, bitOffset: 64 },
    { name: 'owner', type: e.ptr(ids.task_struct), bitOffset: 128 },
  ]);
  return { bytes: e.build(), ids };
}
