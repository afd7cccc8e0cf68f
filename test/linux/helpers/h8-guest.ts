/**
 * Shared lab guests for h8's guest-truth tests: 5.10, 6.1 and 6.12, each
 * attached once per test process, and a runner that returns rows and
 * anomalies of a plugin.
 */
import type { GroundTruth, LabGuest } from '../../../src/lab/index.js';
import type { Kernel } from '../../../src/linux/kernel.js';
import { runPlugin, type Plugin, type PluginOptions, type PluginResult } from '../../../src/linux/plugin.js';
import { sharedGuest, type SharedGuestOptions } from '../../helpers/guest.js';
import { attachLabKernel } from './attach.js';

/** 5.10, 6.1, 6.12, and 6.1 under 5-level paging (TCG -cpu max). */
export const H8_MATRIX: readonly { label: string; opts: SharedGuestOptions }[] = [
  { label: '5.10', opts: { kernel: '5.10' } },
  { label: '6.1', opts: { kernel: '6.1' } },
  { label: '6.12', opts: { kernel: '6.12' } },
  { label: '6.1 5-level', opts: { kernel: '6.1', cpu: 'max' } },
];

export interface H8Guest {
  guest: LabGuest;
  truth: GroundTruth;
  kernel: Kernel;
}

const cache = new Map<string, Promise<H8Guest>>();

export function h8Guest(opts: SharedGuestOptions): Promise<H8Guest> {
  const key = JSON.stringify(opts);
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const { guest, truth } = await sharedGuest(opts);
      return { guest, truth, kernel: await attachLabKernel(guest.name) };
    })();
    cache.set(key, p);
  }
  return p;
}

export function run<R extends object>(plugin: Plugin<R>, kernel: Kernel, options: PluginOptions = {}): PluginResult<R> {
  return runPlugin(plugin, kernel, options);
}
