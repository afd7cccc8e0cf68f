/** Every plugin, listed explicitly (static imports; no directory scanning). Order is the order of `vmsight plugins`. */
import type { Plugin } from '../plugin.js';
import pslist from './pslist.js';
import pstree from './pstree.js';
import psaux from './psaux.js';
import envars from './envars.js';
import threads from './threads.js';
import kthreads from './kthreads.js';
import psxview from './psxview.js';
import creds from './creds.js';
import capabilities from './capabilities.js';
import namespaces from './namespaces.js';
import maps from './maps.js';
import elfs from './elfs.js';
import malfind from './malfind.js';
import memmap from './memmap.js';
import procdump from './procdump.js';
import lsof from './lsof.js';
import sockstat from './sockstat.js';
import ifconfig from './ifconfig.js';
import mountinfo from './mountinfo.js';
import lsmod from './lsmod.js';
import hiddenModules from './hidden_modules.js';
import checkSyscall from './check_syscall.js';
import checkIdt from './check_idt.js';
import kmsg from './kmsg.js';
import kallsyms from './kallsyms.js';
import ebpf from './ebpf.js';
import netfilter from './netfilter.js';
import ftrace from './ftrace.js';
import iomem from './iomem.js';
import ttyCheck from './tty_check.js';
import keyboardNotifiers from './keyboard_notifiers.js';
import pagecache from './pagecache.js';
import bash from './bash.js';

export const plugins: readonly Plugin<any>[] = [
  pslist, pstree, psaux, envars, threads, kthreads, psxview, creds, capabilities, namespaces, maps, elfs, malfind, memmap, procdump, lsof, sockstat, ifconfig, mountinfo, lsmod, hiddenModules, checkSyscall, checkIdt, kmsg, kallsyms,
  ebpf, netfilter, ftrace, iomem, ttyCheck, keyboardNotifiers, pagecache, bash,
];

export function findPlugin(name: string): Plugin<any> | undefined {
  return plugins.find((p) => p.name === name || p.aliases?.includes(name));
}
