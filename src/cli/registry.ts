/** Every command, listed explicitly (no directory scanning). Order is the order of `vmsight help`. */
import type { Command } from './command.js';

export const commands: readonly Command[] = [];
