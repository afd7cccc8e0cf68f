/**
 * Options for tests that run every plugin: a plugin with a required output folder (procdump --dump) gets a
 * temporary one, and, to keep what it writes small, only pid 1's memory. Everything else runs as declared.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Plugin, PluginOptions } from '../../src/linux/plugin.js';

export function everyPluginOptions(plugin: Plugin<any, any>): PluginOptions {
  const decls = (plugin.options ?? {}) as Record<string, { required?: boolean }>;
  const out: PluginOptions = {};
  for (const [name, d] of Object.entries(decls)) {
    if (!d.required) continue;
    if (name !== 'dump') throw new Error(`${plugin.name}: no test value for its required --${name}`);
    out[name] = fs.mkdtempSync(path.join(os.tmpdir(), `vmsight-test-${plugin.name}-`));
    if ('pid' in decls) out['pid'] = ['1'];
  }
  return out;
}
