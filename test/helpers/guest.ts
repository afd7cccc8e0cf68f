/**
 * Shared lab guests for *.guest.test.ts files. A guest is named after its
 * configuration (prefix `t-`), booted by the first test that asks for it and
 * reused by every later test file and process (labUp's per-name lock makes
 * concurrent callers wait for one boot). The test runner calls
 * stopTestGuests() once at the end.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { LabError } from '../../src/core/errors.js';
import { labDown, labList, labUp, readGroundTruth, type ExtraModuleFile, type GroundTruth, type LabCpu, type LabGuest, type UserlandTool } from '../../src/lab/index.js';
import { releaseLock, tryLock } from '../../src/lab/lock.js';
import { useLabGuests } from '../../src/lab/resolver.js';

// Tests name shared guests as sources, as the CLI does.
useLabGuests();

/**
 * Name prefix of shared test guests (default `t-`). Two test runs on one
 * machine (two checkouts) set different prefixes so their guests, sockets and
 * shm files never collide.
 */
export const TEST_GUEST_PREFIX = process.env['VMSIGHT_TEST_GUEST_PREFIX'] ?? 't-';

/** User QMP sockets of a shared guest: test files run in parallel processes and QEMU serves one client per socket. */
export const SHARED_QMP_SOCKETS = 6;

export interface SharedGuestOptions {
  /** Kernel spec (default '6.1'). */
  kernel?: string;
  /** MiB (default 256). */
  memory?: number;
  cpu?: LabCpu;
  /** Out-of-tree modules to load; they become part of the guest's name. */
  extraModules?: readonly ExtraModuleFile[];
  /**
   * A guest apart for tests that change the guest after boot (lab exec sessions grow the exec agent's
   * memory, actions start processes): the purpose becomes part of the name, so the guests whose boot-time
   * ground truth other tests compare with stay untouched.
   */
  purpose?: string;
  /** Debian userland tools in the initramfs (bpftool, nft); they become part of the name. */
  tools?: readonly UserlandTool[];
}

export interface SharedGuest {
  guest: LabGuest;
  truth: GroundTruth;
}

/** The deterministic name of the shared guest for these options. */
export function sharedGuestName(opts: SharedGuestOptions = {}): string {
  const kernel = (opts.kernel ?? '6.1').replace(/^linux-image-/, '').replace(/[^A-Za-z0-9_.-]/g, '_');
  const memory = opts.memory ?? 256;
  let name = `${TEST_GUEST_PREFIX}${kernel}-m${memory}${opts.cpu === 'max' ? '-max' : ''}`;
  if (opts.purpose) name += `-${opts.purpose.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  if (opts.tools?.length) name += `-${[...opts.tools].sort().join('-')}`;
  if (opts.extraModules?.length) {
    const h = crypto.createHash('sha256');
    for (const m of opts.extraModules) h.update(m.path).update('\0').update(m.params ?? '').update('\0').update(fs.readFileSync(m.path));
    name += `-x${h.digest('hex').slice(0, 8)}`;
  }
  return name.slice(0, 48);
}

/** Boots (or reuses) the shared guest for these options and returns it with its ground truth. */
export async function sharedGuest(opts: SharedGuestOptions = {}): Promise<SharedGuest> {
  const guest = await labUp({
    name: sharedGuestName(opts),
    kernel: opts.kernel ?? '6.1',
    memory: opts.memory ?? 256,
    cpu: opts.cpu ?? 'default',
    gdb: true,
    reuse: true,
    extraQmpSockets: SHARED_QMP_SOCKETS - 1,
    ...(opts.extraModules ? { extraModules: opts.extraModules } : {}),
    ...(opts.tools ? { tools: opts.tools } : {}),
  });
  return { guest, truth: readGroundTruth(guest) };
}

/** Stops every shared test guest (names starting with the prefix). Returns the names stopped. */
export async function stopTestGuests(): Promise<string[]> {
  const stopped: string[] = [];
  for (const { guest, alive } of labList()) {
    if (!guest.name.startsWith(TEST_GUEST_PREFIX)) continue;
    if (alive) await labDown(guest.name);
    stopped.push(guest.name);
  }
  return stopped;
}

const owned = new Map<string, string>();

/**
 * One of the guest's user QMP sockets reserved for this test process until it
 * exits (a lock directory per socket, stale when its process is gone), so
 * test files running in parallel never queue behind each other's QMP client.
 */
export async function ownQmpSocket(guest: LabGuest, timeoutMs = 120_000): Promise<string> {
  const mine = owned.get(guest.name);
  if (mine) return mine;
  const sockets = guest.qmpSockets?.length ? [...guest.qmpSockets.slice(1), guest.qmpSockets[0]!] : [guest.qmpSocket];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const socket of sockets) {
      const lock = `${socket}.lock`;
      if (!tryLock(lock)) continue;
      owned.set(guest.name, socket);
      process.once('exit', () => releaseLock(lock));
      return socket;
    }
    if (Date.now() > deadline) throw new LabError(`all ${sockets.length} QMP sockets of guest '${guest.name}' stayed busy for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs `fn` with one of the guest's user QMP sockets that no other test
 * process holds (a lock directory per socket), waiting up to `timeoutMs` for
 * one to free up. Connect inside `fn` and close before it returns.
 */
export async function withQmpSocket<T>(guest: LabGuest, fn: (socket: string) => Promise<T>, timeoutMs = 120_000): Promise<T> {
  // Extra sockets first: code that ignores this protocol connects to qmpSocket directly.
  const sockets = guest.qmpSockets?.length ? [...guest.qmpSockets.slice(1), guest.qmpSockets[0]!] : [guest.qmpSocket];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const socket of sockets) {
      const lock = `${socket}.lock`;
      if (!tryLock(lock)) continue;
      try {
        return await fn(socket);
      } finally {
        releaseLock(lock);
      }
    }
    if (Date.now() > deadline) throw new LabError(`all ${sockets.length} QMP sockets of guest '${guest.name}' stayed busy for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
