/** Every plugin, listed explicitly (static imports; no directory scanning). */
import type { Plugin } from '../plugin.js';

export const plugins: readonly Plugin<any>[] = [];

export function findPlugin(name: string): Plugin<any> | undefined {
  return plugins.find((p) => p.name === name || p.aliases?.includes(name));
}
