/** Every command, listed explicitly (no directory scanning). Order is the order of `vmsight help`. */
import type { Command } from './command.js';
import { command as acquire } from './commands/acquire.js';
import { command as bench } from './commands/bench.js';
import { command as demo } from './commands/demo.js';
import { command as events } from './commands/events.js';
import { command as info } from './commands/info.js';
import { command as lab } from './commands/lab.js';
import { command as monitor } from './commands/monitor.js';
import { command as pluginsList, pluginCommands } from './commands/plugins.js';
import { command as profile } from './commands/profile.js';
import { command as read } from './commands/read.js';
import { command as sources } from './commands/sources.js';
import { command as symbols } from './commands/symbols.js';
import { command as translate } from './commands/translate.js';
import { command as types } from './commands/types.js';

export const commands: readonly Command[] = [
  demo,
  lab,
  info,
  sources,
  read,
  acquire,
  translate,
  profile,
  symbols,
  types,
  monitor,
  events,
  bench,
  pluginsList,
  ...pluginCommands,
];

/** The plugin commands, shown apart in `vmsight help`. */
export { pluginCommands };
