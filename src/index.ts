/**
 * vmsight's library API. The layers, left to right, are the same as the
 * folders: memory sources → x86-64 translation → kernel profile → Linux
 * objects and plugins. Most users need only `attachKernel` and a plugin:
 *
 * @example
 * import { attachKernel, findPlugin, runPlugin } from 'vmsight';
 * const kernel = await attachKernel('lab:k61');          // or a dump path, qmp:SOCKET, shm:…, pid:…, gdb:…
 * const { rows } = runPlugin(findPlugin('pslist')!, kernel);
 * await kernel.close();
 */

// Errors and exit codes
export * from './core/errors.js';

// Memory: one interface for every technique, naming and opening sources
export type {
  PhysicalMemory,
  PhysRange,
  ReadOp,
  ReadFailure,
  MappedRegion,
  CpuState,
  SourceHints,
  TechniqueClass,
  TechniqueInfo,
} from './memory/types.js';
export type { SourceFactory, SourceTarget, ProbeResult, OpenOptions } from './memory/source-factory.js';
export {
  openSource,
  parseSourceSpec,
  rankTechniques,
  setGuestResolver,
  FACTORIES,
  type OpenedSource,
  type Candidate,
  type GuestResolver,
  type NamedGuest,
} from './memory/open.js';
export { readPhys, readPhysInto, readU64Phys, readU32Phys } from './memory/access.js';
export { HaltingMemory, qmpControl, type EmittedEvent, type GuestControl } from './memory/halting.js';
export { withPageCache, type CachedMemory, type PageCacheOptions } from './memory/cache.js';

// QEMU: QMP, discovery, registers, gdb remote protocol
export { QmpClient, type QmpEvent, type QmpGreeting } from './qemu/qmp.js';
export { acquireQmp, discoverQemu, findQemuPid, type QmpLease, type QemuDiscovery } from './qemu/discover.js';
export { GdbClient } from './qemu/gdb.js';

// x86-64 translation
export { AddressSpace, type VirtualReadOp, type VirtualReadFailure } from './arch/address-space.js';
export { PAGING_4_LEVEL, PAGING_5_LEVEL, pagingMode, walk, type PagingMode, type Translation, type WalkStep } from './arch/x86-64/paging.js';

// Kernel profile: vmcoreinfo, kernel space, kallsyms, BTF, types, ISF
export { parseVmcoreinfo, findVmcoreinfo, type VmcoreInfo } from './profile/vmcoreinfo.js';
export { bootstrapKernelSpace, type KernelSpace } from './profile/kernel-space.js';
export { loadKallsyms, kallsymsDigest, type KallsymsResult } from './profile/kallsyms.js';
export { SymbolTable, SymbolTableBuilder, type KernelSymbol } from './profile/symbols.js';
export { loadSystemMap, parseSystemMap } from './profile/system-map.js';
export { parseBtf, BtfTypes } from './profile/btf.js';
export { btfFromMemory, btfFromKernelSymbols, loadBtfFile } from './profile/btf/sources.js';
export { TypeDb, type Type, type TypeId, type FieldInfo } from './profile/types.js';
export { Typed, ObjRef, ObjValue } from './profile/typed.js';
export { KERNEL_GLOBALS, globalRef, validateGlobals } from './profile/globals.js';
export { importIsf, exportIsf, checkIsfMatches, readIsfFile, writeIsfFile } from './profile/isf.js';
export { loadProfile, type ProfileOptions, type LoadedProfile } from './profile/profile.js';

// Linux: the attached kernel, walkers, plugins
export { Kernel, type KernelProfile } from './linux/kernel.js';
export { attachKernel, AttachedKernel, type AttachOptions, type AttachReport } from './linux/attach.js';
export { AnomalySink, type Anomaly, type AnomalyKind } from './linux/anomaly.js';
export { definePlugin, runPlugin, absent, isAbsent, type Plugin, type PluginResult, type Absent } from './linux/plugin.js';
export { plugins, findPlugin } from './linux/plugins/index.js';
export { checkRequirements } from './linux/requirements.js';
export type { Pass, PassOptions, PassResult, PassSummary, PassRunSummary, RunValidation } from './linux/pass.js';
export { taskKey } from './linux/identity.js';
export { listForEach, listForEachEntry, hlistForEach, hlistForEachEntry } from './linux/walk/list.js';
export { rbtreeInorder } from './linux/walk/rbtree.js';
export { mtForEach } from './linux/walk/maple-tree.js';
export { xaForEach } from './linux/walk/xarray.js';
export { idrForEach } from './linux/walk/idr.js';

// Monitor: the event model, sinks (JSON Lines, terminal, SQLite store) and policies (rules → alerts)
export { EVENT_SCHEMA_VERSION, EVENT_TYPES, EventStamper, type EventDraft, type EventSink, type EventType, type EventValue, type EventProcess, type MonitorEvent, type Severity } from './monitor/events.js';
export { JsonlSink, TerminalSink, EventStore, SinkSet, type EventQuery, type EventStoreOptions } from './monitor/sinks/index.js';
export * from './monitor/policy/index.js';
// The monitor and its watch API (src/monitor/watcher.ts): write a watch, hand it to Monitor as a custom watch
export { Monitor, ALL_OPTIMIZATIONS, type MonitorOptions, type MonitorResult, type MonitorStats, type Optimizations, type EventHook } from './monitor/monitor.js';
export type { Watch, WatchChange, WatchContext } from './monitor/watcher.js';
export { WatchSet, type WatchRange, type RangeKind, type Detection } from './monitor/watch-set.js';
export { GuestView } from './monitor/guest-view.js';
export { GuestLifecycle, type LifecycleOptions, type OwnPauses } from './monitor/lifecycle.js';
export { PluginWatch, rangesOf, type PluginWatchSpec } from './monitor/watches/plugin-watch.js';
export { buildWatches, WATCH_NAMES, DEFAULT_WATCHES, type WatchName } from './monitor/watches/index.js';

// The guest lab (lab guest names resolve as sources for library callers too)
import { useLabGuests } from './lab/resolver.js';
useLabGuests();
export { useLabGuests, labUp, labDown, labList, findGuest, readGroundTruth, ensureKernel, type LabGuest, type LabUpOptions } from './lab/index.js';

// Rendering
export { createOutput, toJson, type Column, type Output, type OutputFormat } from './cli/render.js';
