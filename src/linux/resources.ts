/**
 * The kernel's resource trees (kernel/resource.c): `iomem_resource` and
 * `ioport_resource`, each a `struct resource` whose children hang off
 * `child` and chain through `sibling`, every node pointing back at its
 * `parent`. Walked in the order /proc/iomem prints (pre-order: a node, then
 * its children, then its next sibling), bounded, cycle-checked, and with
 * every back-link checked (a node whose parent is not the node it hangs
 * from is recorded as 'broken-link' and still listed).
 */
import { FaultError, ProfileError } from '../core/errors.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { readKernelString } from './kstring.js';
import { hex, isKernelPointer } from './walk/common.js';

/** Most nodes walked (a guest has a few hundred). */
export const MAX_RESOURCES = 20_000;
/** Deepest nesting followed (real trees are under 10 deep). */
export const MAX_RESOURCE_DEPTH = 32;
/** Longest name read (names are short literals such as "System RAM"). */
export const MAX_RESOURCE_NAME = 128;

export interface ResourceNode {
  /** Address of the struct resource. */
  readonly address: bigint;
  /** 0 for the root's children (the leftmost column of /proc/iomem). */
  readonly depth: number;
  readonly start: bigint;
  /** Inclusive, as /proc/iomem prints it. */
  readonly end: bigint;
  /** undefined when the name pointer is NULL (/proc/iomem prints "<BAD>") or unreadable. */
  readonly name: string | undefined;
  readonly flags: bigint;
}

/**
 * Every descendant of the resource at `root` (not the root itself), in /proc order.
 * @param where names the tree in anomalies, e.g. 'iomem_resource'
 */
export function* walkResources(kernel: Kernel, root: bigint, anomalies: AnomalySink, where: string): Generator<ResourceNode> {
  const typed = kernel.typed;
  const seen = new Set<bigint>([root]);
  let visited = 0;
  const read = (va: bigint) => {
    try {
      return typed.obj('resource', va).read({ copy: true });
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      anomalies.add({ kind: 'fault', where, address: va, detail: `struct resource: ${e.message}` });
      return undefined;
    }
  };
  const rootValue = read(root);
  if (!rootValue) return;
  // Explicit stack of [node, expected parent, depth]: a deep hostile tree cannot exhaust the JS stack.
  const stack: [bigint, bigint, number][] = [];
  const pushChain = (first: bigint, parent: bigint, depth: number) => {
    // Siblings are pushed lazily: only the first of a chain goes on the stack; its sibling follows it.
    if (first !== 0n) stack.push([first, parent, depth]);
  };
  pushChain(rootValue.ptr('child'), root, 0);
  while (stack.length) {
    const [va, parent, depth] = stack.pop()!;
    if (!isKernelPointer(va)) {
      anomalies.add({ kind: 'bad-pointer', where, address: va, detail: `resource link under ${hex(parent)} is not a kernel pointer` });
      continue;
    }
    if (seen.has(va)) {
      anomalies.add({ kind: 'cycle', where, address: va, detail: `resource under ${hex(parent)} was already visited` });
      continue;
    }
    if (visited >= MAX_RESOURCES) {
      anomalies.add({ kind: 'limit', where, address: va, detail: `stopped after ${MAX_RESOURCES} resources` });
      return;
    }
    seen.add(va);
    visited++;
    const r = read(va);
    if (!r) continue;
    if (r.ptr('parent') !== parent) anomalies.add({ kind: 'broken-link', where, address: va, detail: `parent is ${hex(r.ptr('parent'))}, expected ${hex(parent)}` });
    yield { address: va, depth, start: r.u64('start'), end: r.u64('end'), name: resourceName(kernel, r.ptr('name'), anomalies, where), flags: r.u64('flags') };
    // Pre-order: the sibling waits under the children.
    pushChain(r.ptr('sibling'), parent, depth);
    const child = r.ptr('child');
    if (child !== 0n) {
      if (depth + 1 >= MAX_RESOURCE_DEPTH) anomalies.add({ kind: 'limit', where, address: va, detail: `children below depth ${MAX_RESOURCE_DEPTH} not followed` });
      else pushChain(child, va, depth + 1);
    }
  }
}

function resourceName(kernel: Kernel, ptr: bigint, anomalies: AnomalySink, where: string): string | undefined {
  if (ptr === 0n) return undefined;
  if (!isKernelPointer(ptr & ~7n)) {
    anomalies.add({ kind: 'bad-pointer', where: `${where}.name`, address: ptr, detail: 'resource name is not a kernel pointer' });
    return undefined;
  }
  try {
    const s = readKernelString(kernel.typed.mem, ptr, MAX_RESOURCE_NAME);
    if (s.truncated) anomalies.add({ kind: 'truncated', where: `${where}.name`, address: ptr, detail: `name longer than ${MAX_RESOURCE_NAME} bytes` });
    return s.text;
  } catch (e) {
    if (!(e instanceof FaultError)) throw e;
    anomalies.add({ kind: 'fault', where: `${where}.name`, address: ptr, detail: e.message });
    return undefined;
  }
}

/** The root of a named resource tree; ProfileError when the kernel lacks it. */
export function resourceRoot(kernel: Kernel, tree: 'iomem_resource' | 'ioport_resource'): bigint {
  if (!kernel.hasSymbol(tree)) throw new ProfileError(`cannot locate ${tree}`, { symbol: tree, tried: [kernel.symbols.source] });
  return kernel.symbol(tree);
}
