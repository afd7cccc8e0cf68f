/**
 * The lab guest's /init (a busybox sh script). It mounts the pseudo
 * filesystems, loads modules, starts the scenario, waits until every scenario
 * process says it is set up, prints the kernel-wide part of the ground truth
 * and then execs vmi-init, which prints the process part and VMI-READY and
 * stays PID 1. Exec'ing (rather than running a child) leaves no transient
 * process behind, so the process list in the ground truth is exactly what a
 * host-side reader finds afterwards.
 *
 * Console protocol (every line is one line of the serial log):
 *   VMI-INIT                    /init started
 *   VMI-WARN <text>             something in the scenario did not come up
 *   VMI-BOOTED uptime=<s>       scenario running
 *   VMI-GT-BEGIN v1             ground truth follows; '@@ <section> [arg]' starts a section
 *   VMI-GT-END                  end of ground truth
 *   VMI-READY uptime=<s>        the guest is settled: introspect away
 */

/** Symbols whose /proc/kallsyms lines the guest prints (spot values for profile tests). */
export const KALLSYMS_SPOTS = [
  'init_task',
  'linux_banner',
  'init_top_pgt',
  '_text',
  '_stext',
  '_etext',
  'page_offset_base',
  'vmemmap_base',
  'vmalloc_base',
  '__start_BTF',
  '__stop_BTF',
  'init_net',
  'modules',
  'sys_call_table',
  'ia32_sys_call_table',
  'idt_table',
  'init_uts_ns',
  'init_pid_ns',
  'init_mm',
  'prb',
  'super_blocks',
  'vmcoreinfo_note',
  'vmcoreinfo_data',
  'kallsyms_num_syms',
  'kallsyms_names',
  'kallsyms_token_table',
  'kallsyms_token_index',
  'kallsyms_offsets',
  'kallsyms_relative_base',
  'kallsyms_markers',
  'kallsyms_seqs_of_names',
] as const;

/** Scenario process names (comm) and what each holds; tests look them up by these names. */
export const SCENARIO = {
  user: 'vmi-user',
  args: 'vmi-args',
  files: 'vmi-files',
  threads: 'vmi-threads',
  net: 'vmi-net',
  client: 'vmi-client',
  ns: 'vmi-ns',
  /** The `lab exec` agent on /dev/ttyS1 (lab tooling, not part of what introspection relies on). */
  exec: 'vmi-exec',
  init: 'vmi-init',
} as const;

/** The exec agent's serial port (COM2; the console is ttyS0). */
export const EXEC_TTY = '/dev/ttyS1';

/**
 * A dependency-free module of the kernel package that /init does not load:
 * shipped as /lib/modules/ondemand/<name>.ko for tests that load and unload
 * a module while a monitor watches (crc7: a pure library, no side effects).
 */
export const ONDEMAND_MODULE = { name: 'crc7', path: '/lib/modules/ondemand/crc7.ko' } as const;

/** Every name the helper binary answers to (scenario roles plus the transient vmi-ksyms). */
export const HELPER_ROLES = [...Object.values(SCENARIO), 'vmi-ksyms'] as const;

/** The argv and environment vmi-args is started with. */
export const SCENARIO_ARGS = ['/bin/vmi-args', '--alpha', 'one', '--beta=two words', 'last'] as const;
export const SCENARIO_ENV = ['HOME=/home/vmi', 'PATH=/bin', 'VMI_MARKER=vmsight-env-marker', 'VMI_LANG=C.UTF-8'] as const;
/** Content of the file vmi-files holds open on fd 7 (and maps). */
export const SCENARIO_DATA = 'vmsight lab data file\nVMI-FILE-MARKER 0123456789\n';
export const SCENARIO_FILES = { dataPath: '/tmp/vmi-data.txt', dataFd: 7, logPath: '/tmp/vmi-files.log', logFd: 8 } as const;
export const SCENARIO_NET = {
  tcp4Port: 4444,
  tcp6Port: 8080,
  udp4Port: 6000,
  udp6Port: 6001,
  unixPath: '/tmp/vmi.sock',
  dummyIpv4: '10.0.2.15/24',
  dummyIpv6: 'fd00:10::15/64',
} as const;
export const SCENARIO_USER = { uid: 1000, gid: 1000 } as const;

export interface ExtraModule {
  /** File name inside the initramfs (`/lib/modules/extra/<name>`). */
  name: string;
  /** insmod parameters, e.g. 'target=vmi-args'. Only [A-Za-z0-9_=,.-] and spaces. */
  params?: string;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function initScript(modules: readonly string[], extra: readonly ExtraModule[] = []): string {
  for (const m of [...modules, ...extra.map((e) => e.name)]) {
    if (!/^[A-Za-z0-9_.-]+$/.test(m)) throw new RangeError(`module file name '${m}' has characters /init cannot pass safely`);
  }
  for (const e of extra) {
    if (e.params !== undefined && !/^[A-Za-z0-9_=,. -]*$/.test(e.params)) throw new RangeError(`module parameters '${e.params}' have unsafe characters`);
  }
  const insmods = modules.map((m) => `insmod /lib/modules/${m} || echo "VMI-WARN insmod ${m} failed"`).join('\n');
  const extraInsmods = extra
    .map((e) => `insmod /lib/modules/extra/${e.name}${e.params ? ' ' + e.params : ''} || echo "VMI-WARN insmod ${e.name} failed"`)
    .join('\n');
  return `#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/vmi /home/vmi /sys/fs/cgroup
chmod 1777 /run/vmi
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null && mkdir -p /sys/fs/cgroup/vmi-container
echo VMI-INIT
${insmods}
hostname vmi-lab
ip link set lo up
if ip link show dummy0 >/dev/null 2>&1; then
  ip link set dummy0 up
  ip addr add ${SCENARIO_NET.dummyIpv4} dev dummy0
  ip -6 addr add ${SCENARIO_NET.dummyIpv6} dev dummy0
fi
printf '%s' ${shQuote(SCENARIO_DATA)} > ${SCENARIO_FILES.dataPath}

wait_ready() {
  i=0
  while [ ! -e /run/vmi/$1.ready ] && [ $i -lt 1500 ]; do usleep 20000; i=$((i+1)); done
  [ -e /run/vmi/$1.ready ] || echo "VMI-WARN $1 not ready"
}

/bin/vmi-user &
env -i ${SCENARIO_ENV.map(shQuote).join(' ')} ${SCENARIO_ARGS.map(shQuote).join(' ')} &
/bin/vmi-files &
/bin/vmi-threads &
/bin/vmi-ns &
[ -d /sys/fs/cgroup/vmi-container ] && echo $! > /sys/fs/cgroup/vmi-container/cgroup.procs
/bin/vmi-net &
wait_ready vmi-net
/bin/vmi-client &
/bin/vmi-exec ${EXEC_TTY} </dev/null >/dev/null 2>&1 &
for r in vmi-user vmi-args vmi-files vmi-threads vmi-ns vmi-client vmi-net-accepted vmi-exec; do wait_ready $r; done
${extraInsmods}
echo "VMI-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"

# Keep kernel messages off the console while the ground truth prints (dmesg still has them).
echo 1 > /proc/sys/kernel/printk
echo "VMI-GT-BEGIN v1"
echo "@@ uname"; uname -r
echo "@@ version"; cat /proc/version
echo "@@ cmdline"; cat /proc/cmdline
echo "@@ hostname"; hostname
/bin/vmi-ksyms ${KALLSYMS_SPOTS.join(' ')}
echo "@@ kallsyms-tagged"; grep ']$' /proc/kallsyms
echo "@@ vmcoreinfo"; cat /sys/kernel/vmcoreinfo 2>/dev/null
echo "@@ fw-cfg-vmcoreinfo"
f=/sys/firmware/qemu_fw_cfg/by_name/etc/vmcoreinfo/raw
[ -r $f ] && od -An -v -tx1 $f | tr -d ' \\n' && echo
echo "@@ cpu-flags"; grep -m 1 '^flags' /proc/cpuinfo
echo "@@ iomem"; cat /proc/iomem
echo "@@ ip-addr"; ip -o addr
echo "@@ ip-link"; ip -o link
echo "@@ dmesg"; dmesg | tail -n 30
exec /bin/vmi-init
`;
}
