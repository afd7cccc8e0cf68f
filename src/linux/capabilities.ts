/**
 * Linux capability names (include/uapi/linux/capability.h), and decoding of
 * a kernel_cap_t mask into them.
 */
export const CAPABILITY_NAMES = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner',
  'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice',
  'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease', 'audit_write', 'audit_control', 'setfcap',
  'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf',
  'checkpoint_restore',
] as const;

/** Names of the bits set in `mask` (unknown bits as 'cap_<n>'). */
export function capabilityNames(mask: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) out.push(CAPABILITY_NAMES[i] ?? `cap_${i}`);
  return out;
}

/** A mask as /proc/<pid>/status prints it: 16 lower-case hex digits. */
export function capabilityHex(mask: bigint): string {
  return mask.toString(16).padStart(16, '0');
}
