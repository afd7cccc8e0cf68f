/**
 * The plugins as the CLI lists them before loading any: name, Volatility names
 * and summary per plugin, and how to load its module. `vmsight --help` and
 * command lookup read only this table, so a cold start imports the one plugin
 * it runs (test/cli/registry.test.ts checks the table against the plugins'
 * own declarations, so a new plugin must be added here too, in the same order).
 */
import type { Plugin } from '../linux/plugin.js';

export interface PluginEntry {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly summary: string;
  load(): Promise<Plugin<any, any>>;
}

function plugin(name: string, aliases: readonly string[], summary: string, load: () => Promise<{ default: Plugin<any, any> }>): PluginEntry {
  return { name, aliases, summary, load: async () => (await load()).default };
}

export const PLUGIN_CATALOG: readonly PluginEntry[] = [
  plugin('pslist', ['linux.pslist', 'linux.pslist.PsList'], 'Processes from the kernel task list (pid, ppid, uids, comm, state, start time)', () => import('../linux/plugins/pslist.js')),
  plugin('pstree', ['linux.pstree', 'linux.pstree.PsTree'], 'Process tree (parent/child by real_parent)', () => import('../linux/plugins/pstree.js')),
  plugin('psaux', ['linux.psaux', 'linux.psaux.PsAux'], 'Processes with their full command line (argv from user memory)', () => import('../linux/plugins/psaux.js')),
  plugin('envars', ['linux.envars', 'linux.envars.Envars'], 'Environment variables of each process (from user memory)', () => import('../linux/plugins/envars.js')),
  plugin('threads', ['linux.pslist.threads'], 'Threads of each process (tid, comm, state)', () => import('../linux/plugins/threads.js')),
  plugin('kthreads', ['linux.kthreads', 'linux.kthreads.Kthreads'], 'Kernel threads and the function each runs', () => import('../linux/plugins/kthreads.js')),
  plugin('psxview', ['linux.psxview', 'linux.psxview.PsXView'], 'Cross-view process listing: task list vs pid IDR vs children lists vs run queues (hidden processes)', () => import('../linux/plugins/psxview.js')),
  plugin('creds', ['linux.check_creds', 'linux.check_creds.Check_creds'], 'Credentials per process; flags a struct cred shared between unrelated processes', () => import('../linux/plugins/creds.js')),
  plugin('capabilities', ['linux.capabilities', 'linux.capabilities.Capabilities'], 'Capability sets of each process (inheritable, permitted, effective, bounding, ambient)', () => import('../linux/plugins/capabilities.js')),
  plugin('namespaces', ['linux.namespaces'], 'Namespaces (pid, mnt, net, user, uts, ipc, cgroup, time inode numbers) and cgroup path per process', () => import('../linux/plugins/namespaces.js')),
  plugin('maps', ['linux.proc.Maps', 'linux.proc'], 'Memory mappings of each process, as /proc/<pid>/maps', () => import('../linux/plugins/maps.js')),
  plugin('elfs', ['linux.elfs', 'linux.elfs.Elfs'], 'ELF images mapped in each process (VMAs starting with an ELF header)', () => import('../linux/plugins/elfs.js')),
  plugin('malfind', ['linux.malfind', 'linux.malfind.Malfind'], 'Suspicious mappings: writable+executable, or executable without a file', () => import('../linux/plugins/malfind.js')),
  plugin('memmap', ['linux.memmap'], 'Virtual to physical page runs of each process mapping (present pages only)', () => import('../linux/plugins/memmap.js')),
  plugin('procdump', ['linux.proc.Maps.dump'], 'Writes every mapping of a process to a file in --dump DIR (missing pages as zeros), with sizes and SHA-256', () => import('../linux/plugins/procdump.js')),
  plugin('lsof', ['linux.lsof', 'linux.lsof.Lsof'], 'Open files of every process (paths, sockets, pipes, anon inodes, devices)', () => import('../linux/plugins/lsof.js')),
  plugin('sockstat', ['linux.sockstat', 'linux.sockstat.Sockstat'], 'Sockets of every process: TCP/UDP/RAW over IPv4/IPv6, unix paths, owning pids', () => import('../linux/plugins/sockstat.js')),
  plugin('ifconfig', ['linux.ip.Addr', 'linux.ifconfig'], 'Network interfaces per namespace with flags, MTU, MAC and IPv4/IPv6 addresses', () => import('../linux/plugins/ifconfig.js')),
  plugin('mountinfo', ['linux.mountinfo', 'linux.mountinfo.MountInfo'], 'Mounts of a mount namespace (like /proc/PID/mountinfo; list or rbtree by kernel)', () => import('../linux/plugins/mountinfo.js')),
  plugin('lsmod', ['linux.lsmod', 'linux.lsmod.Lsmod'], 'Loaded kernel modules from the modules list (like /proc/modules)', () => import('../linux/plugins/lsmod.js')),
  plugin('hidden_modules', ['linux.hidden_modules', 'linux.hidden_modules.Hidden_modules'], 'Modules missing from the modules list but present in sysfs kobjects or carved from module memory', () => import('../linux/plugins/hidden_modules.js')),
  plugin('check_syscall', ['linux.check_syscall', 'linux.check_syscall.Check_syscall'], 'System call tables and the x64_sys_call switch: entries resolved to symbols, those outside kernel text flagged', () => import('../linux/plugins/check_syscall.js')),
  plugin('check_idt', ['linux.check_idt', 'linux.check_idt.Check_idt'], 'Interrupt descriptor table gates resolved to symbols; handlers outside kernel text flagged', () => import('../linux/plugins/check_idt.js')),
  plugin('kmsg', ['dmesg', 'linux.kmsg', 'linux.kmsg.Kmsg'], 'Kernel log records from the printk ring buffer (like dmesg)', () => import('../linux/plugins/kmsg.js')),
  plugin('kallsyms', ['linux.kallsyms', 'linux.kallsyms.Kallsyms'], 'Kernel symbols (core kallsyms and modules\' own symbol tables)', () => import('../linux/plugins/kallsyms.js')),
  plugin('ebpf', ['linux.ebpf', 'linux.ebpf.EBPF'], 'eBPF programs, maps and links from the kernel\'s id tables (like bpftool prog/map/link show)', () => import('../linux/plugins/ebpf.js')),
  plugin('netfilter', ['linux.netfilter', 'linux.netfilter.Netfilter'], 'Netfilter hooks per network namespace, family and hook point, resolved to kernel or module; hooks outside both flagged', () => import('../linux/plugins/netfilter.js')),
  plugin('ftrace', ['linux.tracing.ftrace', 'linux.tracing.ftrace.CheckFtrace'], 'Registered ftrace_ops (ftrace_ops_list) with their callbacks resolved; callbacks in modules or outside kernel text flagged', () => import('../linux/plugins/ftrace.js')),
  plugin('iomem', ['linux.iomem', 'linux.iomem.IOMem'], 'Physical memory map from the iomem_resource tree (like /proc/iomem as root); --ioports for /proc/ioports', () => import('../linux/plugins/iomem.js')),
  plugin('tty_check', ['linux.tty_check', 'linux.tty_check.tty_check'], 'TTY driver and line-discipline operations resolved to symbols; pointers outside kernel text flagged', () => import('../linux/plugins/tty_check.js')),
  plugin('keyboard_notifiers', ['linux.keyboard_notifiers', 'linux.keyboard_notifiers.Keyboard_notifiers'], 'Callbacks on the keyboard notifier chain (where keyloggers register) resolved to symbols; outside kernel text flagged', () => import('../linux/plugins/keyboard_notifiers.js')),
  plugin('pagecache', ['linux.pagecache.Files', 'linux.pagecache.InodePages'], 'Files with cached pages (super blocks, their inodes, nrpages); --dump INODE|PATH --dump-dir DIR extracts a file\'s cached content', () => import('../linux/plugins/pagecache.js')),
  plugin('bash', ['linux.bash', 'linux.bash.Bash'], 'Command history of bash processes from their heaps (readline entries with HISTTIMEFORMAT timestamps)', () => import('../linux/plugins/bash.js')),
];
