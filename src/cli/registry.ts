/** Every command, listed explicitly (no directory scanning). Order is the order of `vmsight help`. */
import type { Command } from './command.js';
import { command as lab } from './commands/lab.js';
import { command as pluginsList, pluginCommands } from './commands/plugins.js';
import { command as profile } from './commands/profile.js';
import { command as demo } from './commands/demo.js';

export const commands: readonly Command[] = [demo, lab, profile, pluginsList, ...pluginCommands];
