/**
 * The WebAssembly assembler (core/wasm.ts): modules it writes are valid, and their functions compute what
 * their instructions say, over the memory the caller gives, with memory accesses checked by the engine.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { FunctionBody, instantiate, moduleBytes, type WasmFunction, wasmAvailable, type WasmMemory, wasmMemory as tryMemory, wasmPages } from '../../src/core/wasm.js';

/** A memory the test needs to have. */
function wasmMemory(pages: number): WasmMemory {
  const m = tryMemory(pages);
  assert.ok(m, `a memory of ${pages} pages`);
  return m;
}

/** sum(from, to): the bytes of memory[from, to) summed, a loop with a block to leave it by. */
function sumBytes(): WasmFunction {
  const [FROM, TO, TOTAL] = [0, 1, 2];
  const f = new FunctionBody();
  f.block().loop();
  f.get(FROM).get(TO).geU().brIf(1);
  f.get(TOTAL).get(FROM).load8().add().set(TOTAL);
  f.get(FROM).const(1).add().set(FROM);
  f.br(0);
  f.end().end();
  f.get(TOTAL);
  return { name: 'sum', params: 2, locals: 1, results: 1, body: f };
}

// The project's lib settings carry no WebAssembly types (core/wasm.ts types the API narrowly).
const WebAssembly = (globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean; RuntimeError: new () => Error } }).WebAssembly;

describe('core/wasm', () => {
  it('runs here (Node 20 without --jitless)', () => assert.equal(wasmAvailable(), true));

  it('writes a module WebAssembly validates', () => {
    const bytes = moduleBytes(sumBytes());
    assert.equal(WebAssembly.validate(bytes), true);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  });

  it('a function computes over the memory it is given; each memory its own instance', () => {
    const compiled = {};
    const a = wasmMemory(1);
    const b = wasmMemory(wasmPages(70000));
    assert.equal(b.buffer.byteLength, 2 * 65536);
    new Uint8Array(a.buffer).set([1, 2, 3, 250], 100);
    new Uint8Array(b.buffer).fill(1, 0, 70000);
    const sumA = instantiate<(from: number, to: number) => number>(sumBytes(), a, compiled);
    const sumB = instantiate<(from: number, to: number) => number>(sumBytes(), b, compiled);
    assert.equal(sumA(100, 104), 256);
    assert.equal(sumA(104, 100), 0);
    assert.equal(sumB(0, 70000), 70000);
  });

  it('constants across the i32 range encode as signed LEB128', () => {
    for (const n of [0, 1, -1, 63, 64, -64, -65, 127, 128, 0x7fffffff, -0x80000000, 0xffffffff, 0x80000000]) {
      const f = new FunctionBody().const(n);
      const get = instantiate<() => number>({ name: 'k', params: 0, locals: 0, results: 1, body: f }, wasmMemory(0), {});
      assert.equal(get(), n | 0, `const ${n}`);
    }
    assert.throws(() => new FunctionBody().const(2 ** 32), RangeError);
    assert.throws(() => new FunctionBody().const(1.5), RangeError);
  });

  it('a memory this process cannot have is undefined, not an exception: the caller runs its JavaScript pass', () => {
    assert.equal(tryMemory(65537), undefined, 'past 4 GiB');
  });

  it('an access past the memory traps instead of reading outside it', () => {
    const sum = instantiate<(from: number, to: number) => number>(sumBytes(), wasmMemory(1), {});
    assert.throws(() => sum(65530, 65540), WebAssembly.RuntimeError);
  });
});
