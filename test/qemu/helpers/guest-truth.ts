/**
 * Ground-truth helpers for the live-technique guest tests: where the
 * kernel banner is, computed from the guest's own vmcoreinfo note and
 * /proc/kallsyms (never a constant).
 */
import { readPhys } from '../../../src/memory/access.js';
import type { PhysicalMemory } from '../../../src/memory/types.js';
import type { GroundTruth } from '../../../src/lab/index.js';

/** Reads the VMCOREINFO note text at the address the guest reported in /sys/kernel/vmcoreinfo. */
export function vmcoreinfoText(mem: PhysicalMemory, truth: GroundTruth): string {
  if (!truth.vmcoreinfo) throw new Error('the guest did not report /sys/kernel/vmcoreinfo');
  const at = Number(truth.vmcoreinfo.paddr);
  const hdr = Buffer.from(readPhys(mem, at, 12));
  const namesz = hdr.readUInt32LE(0);
  const descsz = hdr.readUInt32LE(4);
  const name = Buffer.from(readPhys(mem, at + 12, namesz)).toString('latin1');
  if (!name.startsWith('VMCOREINFO')) throw new Error(`no VMCOREINFO note at 0x${at.toString(16)} (name ${JSON.stringify(name)})`);
  const descAt = at + 12 + ((namesz + 3) & ~3);
  return Buffer.from(readPhys(mem, descAt, descsz)).toString('latin1').replace(/\0+$/, '');
}

/** Guest-physical address of linux_banner: VA − __START_KERNEL_map + phys_base. */
export function bannerPhys(mem: PhysicalMemory, truth: GroundTruth): number {
  const info = vmcoreinfoText(mem, truth);
  const m = /^NUMBER\(phys_base\)=(-?\d+)$/m.exec(info);
  if (!m) throw new Error('vmcoreinfo has no NUMBER(phys_base)');
  const va = truth.kallsyms.spots['linux_banner']?.address;
  if (va === undefined) throw new Error('ground truth has no linux_banner address');
  return Number(va - 0xffffffff80000000n + BigInt(m[1]!));
}
