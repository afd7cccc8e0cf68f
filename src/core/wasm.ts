/**
 * WebAssembly functions assembled in code, for the few loops of a cold start that visit every byte of a
 * large table once (the kallsyms name index, 1.5 MB of tokens). Such a loop runs in V8's interpreter until
 * TurboFan has compiled it in the background (on-stack replacement, ~5 ms of compiling on this machine),
 * about three times slower than it then runs; a WebAssembly function is compiled by Liftoff when the module
 * is made, in microseconds, and runs at machine speed from its first iteration. Memory accesses are
 * bounds-checked by the engine (an access past the memory traps, it never reads outside it).
 *
 * One function per module, over a memory the caller makes and imports as env.memory, i32 values only: what
 * those loops need. A build-time assembler (wabt) would add a tool and a build step to both builds (dist/
 * and the bundle) for kernels of a few dozen instructions; this writes the binary format directly (the
 * WebAssembly core specification, sections 5.4 and 5.5).
 */

/** Instruction opcodes (WebAssembly core specification 5.4), the i32 subset. */
const OP = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  return: 0x0f,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i32Load8U: 0x2d,
  i32Load16U: 0x2f,
  i64Load: 0x29,
  i32Store: 0x36,
  i64Store: 0x37,
  i32Store8: 0x3a,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32LtU: 0x49,
  i32GtU: 0x4b,
  i32LeU: 0x4d,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Or: 0x72,
  i32Shl: 0x74,
  i32ShrU: 0x76,
} as const;

const I32 = 0x7f;
const EMPTY_BLOCK = 0x40;

function unsignedLeb(n: number, out: number[]): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not a u32: ${n}`);
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

function signedLeb(n: number, out: number[]): void {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0xffffffff) throw new RangeError(`not an i32: ${n}`);
  n |= 0; // values up to 2^32-1 are their i32 bit pattern
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/**
 * The instructions of one function body, appended by name. Branch depths are relative, as in the binary
 * format: 0 is the innermost enclosing block, loop or if.
 */
export class FunctionBody {
  readonly code: number[] = [];

  private op(code: number, ...immediates: number[]): this {
    this.code.push(code, ...immediates);
    return this;
  }
  private indexed(code: number, index: number): this {
    this.code.push(code);
    unsignedLeb(index, this.code);
    return this;
  }
  /** A memory access: natural alignment (log2 of the size) and a constant offset. */
  private memory(code: number, align: number, offset: number): this {
    this.code.push(code, align);
    unsignedLeb(offset, this.code);
    return this;
  }

  get(local: number): this {
    return this.indexed(OP.localGet, local);
  }
  set(local: number): this {
    return this.indexed(OP.localSet, local);
  }
  tee(local: number): this {
    return this.indexed(OP.localTee, local);
  }
  const(n: number): this {
    this.code.push(OP.i32Const);
    signedLeb(n, this.code);
    return this;
  }
  load(offset = 0): this {
    return this.memory(OP.i32Load, 2, offset);
  }
  load8(offset = 0): this {
    return this.memory(OP.i32Load8U, 0, offset);
  }
  load16(offset = 0): this {
    return this.memory(OP.i32Load16U, 1, offset);
  }
  store(offset = 0): this {
    return this.memory(OP.i32Store, 2, offset);
  }
  /** Eight bytes loaded and stored as one i64 (the value stays on the stack between them): a copy. */
  load64(offset = 0): this {
    return this.memory(OP.i64Load, 3, offset);
  }
  store64(offset = 0): this {
    return this.memory(OP.i64Store, 3, offset);
  }
  store8(offset = 0): this {
    return this.memory(OP.i32Store8, 0, offset);
  }
  block(): this {
    return this.op(OP.block, EMPTY_BLOCK);
  }
  loop(): this {
    return this.op(OP.loop, EMPTY_BLOCK);
  }
  if(): this {
    return this.op(OP.if, EMPTY_BLOCK);
  }
  else(): this {
    return this.op(OP.else);
  }
  end(): this {
    return this.op(OP.end);
  }
  br(depth: number): this {
    return this.indexed(OP.br, depth);
  }
  brIf(depth: number): this {
    return this.indexed(OP.brIf, depth);
  }
  return(): this {
    return this.op(OP.return);
  }
  eqz(): this {
    return this.op(OP.i32Eqz);
  }
  eq(): this {
    return this.op(OP.i32Eq);
  }
  ne(): this {
    return this.op(OP.i32Ne);
  }
  ltU(): this {
    return this.op(OP.i32LtU);
  }
  gtU(): this {
    return this.op(OP.i32GtU);
  }
  leU(): this {
    return this.op(OP.i32LeU);
  }
  geU(): this {
    return this.op(OP.i32GeU);
  }
  add(): this {
    return this.op(OP.i32Add);
  }
  sub(): this {
    return this.op(OP.i32Sub);
  }
  mul(): this {
    return this.op(OP.i32Mul);
  }
  and(): this {
    return this.op(OP.i32And);
  }
  or(): this {
    return this.op(OP.i32Or);
  }
  shl(): this {
    return this.op(OP.i32Shl);
  }
  shrU(): this {
    return this.op(OP.i32ShrU);
  }
}

export interface WasmFunction {
  /** Exported under this name. */
  readonly name: string;
  /** i32 parameters, then i32 locals (zero at entry), numbered on from the parameters. */
  readonly params: number;
  readonly locals: number;
  /** 0 or 1 i32 results. */
  readonly results: 0 | 1;
  readonly body: FunctionBody;
}

function section(id: number, payload: number[], out: number[]): void {
  out.push(id);
  unsignedLeb(payload.length, out);
  for (const b of payload) out.push(b);
}

function name(s: string, out: number[]): void {
  const bytes = new TextEncoder().encode(s);
  unsignedLeb(bytes.length, out);
  for (const b of bytes) out.push(b);
}

/** The binary module: type, import (env.memory), function, export and code sections. */
export function moduleBytes(fn: WasmFunction): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const type = [1, 0x60];
  unsignedLeb(fn.params, type);
  for (let i = 0; i < fn.params; i++) type.push(I32);
  type.push(fn.results, ...(fn.results ? [I32] : []));
  section(1, type, out);
  const imports = [1];
  name('env', imports);
  name('memory', imports);
  imports.push(0x02, 0x00, 0x00); // a memory, limits with no maximum, at least 0 pages
  section(2, imports, out);
  section(3, [1, 0], out);
  const exports = [1];
  name(fn.name, exports);
  exports.push(0x00, 0); // function 0
  section(7, exports, out);
  const body: number[] = [];
  if (fn.locals > 0) {
    body.push(1);
    unsignedLeb(fn.locals, body);
    body.push(I32);
  } else body.push(0);
  for (const b of fn.body.code) body.push(b);
  body.push(OP.end);
  const code = [1];
  unsignedLeb(body.length, code);
  for (const b of body) code.push(b);
  section(10, code, out);
  return Uint8Array.from(out);
}

/** WebAssembly pages of 64 KiB holding `bytes`. */
export function wasmPages(bytes: number): number {
  return Math.ceil(bytes / 65536);
}

// The WebAssembly JS API, typed narrowly here: the project's lib settings carry no DOM or WebAssembly types.
interface WasmModule {
  readonly kind?: 'module';
}
/** A WebAssembly memory: its bytes, zero when made. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** True when this Node can run WebAssembly (not under --jitless). */
export function wasmAvailable(): boolean {
  return api !== undefined;
}

/**
 * A zeroed memory of `pages` pages of 64 KiB, or undefined when this process cannot have it (no WebAssembly,
 * more than 4 GiB, or an address-space limit: V8 reserves a guard region around each memory). Callers then
 * run their JavaScript pass instead.
 */
export function wasmMemory(pages: number): WasmMemory | undefined {
  if (!api) return undefined;
  try {
    return new api.Memory({ initial: pages });
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

/**
 * The exported function of `fn` over `memory`. The module is compiled once per process (synchronously:
 * Liftoff, microseconds for a small one) and instantiated for each memory.
 */
export function instantiate<F extends (...args: number[]) => unknown>(fn: WasmFunction, memory: WasmMemory, compiled: { module?: WasmModule }): F {
  if (!api) throw new Error('WebAssembly is not available in this Node (--jitless?)');
  compiled.module ??= new api.Module(moduleBytes(fn));
  const instance = new api.Instance(compiled.module, { env: { memory } });
  return instance.exports[fn.name] as F;
}

/** A compiled module, kept by a kernel's module between its uses. */
export type CompiledModule = { module?: WasmModule };
