/**
 * A plugin's declared requirements checked against the kernel's profile
 * before it runs (by Pass.run and runPlugin, so library callers, benchmarks
 * and the CLI all get the same one-line error naming what is missing).
 */
import { ProfileError } from '../core/errors.js';
import type { Kernel } from './kernel.js';
import type { Plugin, Requirements } from './plugin.js';

/** Throws a ProfileError naming the first requirement the kernel's profile lacks. */
export function checkRequirements(kernel: Kernel, plugin: Plugin<any>): void {
  const r: Requirements = plugin.requires;
  const tried = [kernel.symbols.source, kernel.types.source];
  for (const s of r.symbols ?? [])
    if (!kernel.hasSymbol(s)) throw new ProfileError(`${plugin.name} needs symbol ${s}`, { symbol: s, tried });
  for (const t of r.types ?? [])
    if (!kernel.types.hasType(t)) throw new ProfileError(`${plugin.name} needs type ${t}`, { type: t, tried });
  for (const [t, f] of r.fields ?? [])
    if (!kernel.types.hasMember(t, f)) throw new ProfileError(`${plugin.name} needs ${t}.${f}`, { type: t, field: f, tried });
  for (const group of r.anyOf ?? [])
    if (!group.some(([t, f]) => kernel.types.hasMember(t, f)))
      throw new ProfileError(`${plugin.name} needs one of ${group.map(([t, f]) => `${t}.${f}`).join(', ')}`, { tried });
}
