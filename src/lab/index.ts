/**
 * The guest lab's public API: Debian kernels, the scenario initramfs, the
 * QEMU launcher and the guest's own ground truth.
 */
import { LabError, VmsightError } from '../core/errors.js';
import { parseGroundTruth, type GroundTruth } from './ground-truth.js';
import { readConsole, type LabGuest } from './vm.js';

export { ensureKernel, parseKernelSpec, cachedKernels, DEFAULT_KERNEL, type LabKernel, type KernelRequest } from './kernels.js';
export { ensureInitramfs, LAB_MODULES, type Initramfs, type InitramfsOptions, type ExtraModuleFile } from './initramfs.js';
export { ensureUserland, USERLAND_TOOLS, userlandModulePath, type UserlandTool } from './userland.js';
export {
  labUp,
  labDown,
  labList,
  findGuest,
  readConsole,
  consolePathOf,
  chooseAccel,
  kvmUsable,
  defaultGuestName,
  guestAlive,
  type LabGuest,
  type LabUpOptions,
  type LabListEntry,
  type LabCpu,
  type LabAccel,
} from './vm.js';
export * from './ground-truth.js';
export { labExec, labSpawn, labRun, type LabExecOptions, type LabExecResult, type LabSpawnResult } from './exec.js';
export { HELPER_PATH, guestNow, spawnAction, actionEvents, waitActionEvent, parseActionOutput, type ActionEvent, type ScenarioAction } from './actions.js';
export { runGuestBench, parseBenchLine, GUEST_BENCH_KINDS, type GuestBenchKind, type GuestBenchResult } from './guest-bench.js';
export { KALLSYMS_SPOTS, EXEC_TTY, ONDEMAND_MODULE, SCENARIO, SCENARIO_ARGS, SCENARIO_ENV, SCENARIO_DATA, SCENARIO_FILES, SCENARIO_NET, SCENARIO_USER } from './scenario/init-script.js';
export { cacheDir, runDir } from './paths.js';
export { useLabGuests, labGuestEndpoints } from './resolver.js';
export { libvirtLabUp, libvirtLabDown, readLibvirtRecord, ensureLibvirtDaemons, stopLibvirtDaemons, libvirtDaemonPids, labDomainXml, type LibvirtLabGuest, type LibvirtLabBacking } from './libvirt.js';

/** The ground truth a running (or finished) lab guest printed on its console. */
export function readGroundTruth(guest: Pick<LabGuest, 'consolePath' | 'name'>): GroundTruth {
  try {
    return parseGroundTruth(readConsole(guest));
  } catch (e) {
    if (e instanceof LabError) throw e;
    const why = e instanceof VmsightError ? e.message : (e as Error).message;
    throw new LabError(`ground truth of guest '${guest.name}' unreadable: ${why}`, { hint: `see its console: ${guest.consolePath}`, cause: e });
  }
}
