/**
 * The few libc calls the live techniques need, through koffi (no addon to
 * build): a read-only shared mmap of QEMU's RAM file, and process_vm_readv on
 * the QEMU process. Everything loads lazily, so a machine without koffi or
 * without libc.so.6 still runs every other technique; callers check
 * `nativeSupport()` and fall back to pread.
 */
import { createRequire } from 'node:module';

/** A failed system call, with its errno name (EPERM, ESRCH, …). */
export class NativeError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  constructor(syscall: string, errno: number) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${syscall} failed: ${code}`);
    this.name = 'NativeError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

/** The errno values the live techniques tell apart (Linux x86-64 numbering). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENODEV: 19,
  EINVAL: 22,
  ENOSYS: 38,
} as const;
const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Errno).map(([k, v]) => [v, k]));

// koffi's own types are loose (`any`), so this module keeps a narrow typed face over it.
interface Koffi {
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
  view(ptr: unknown, len: number): ArrayBuffer;
  address(value: unknown): bigint;
  errno(): number;
}

interface Libc {
  koffi: Koffi;
  mmap: (addr: unknown, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  munmap: (addr: unknown, len: number) => number;
  processVmReadv: (pid: number, local: Uint8Array, liovcnt: number, remote: Uint8Array, riovcnt: number, flags: number) => number;
}

let loaded: Libc | undefined;
let loadError: string | undefined;

function libc(): Libc {
  if (loaded) return loaded;
  if (loadError) throw new Error(loadError);
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as Koffi;
    const lib = koffi.load('libc.so.6');
    loaded = {
      koffi,
      mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)') as Libc['mmap'],
      munmap: lib.func('int munmap(void *addr, size_t len)') as Libc['munmap'],
      // iovec arrays are passed as raw bytes we lay out ourselves: one FFI call per batch.
      processVmReadv: lib.func(
        'intptr_t process_vm_readv(int pid, void *local, unsigned long liovcnt, void *remote, unsigned long riovcnt, unsigned long flags)',
      ) as Libc['processVmReadv'],
    };
    return loaded;
  } catch (err) {
    loadError = `native memory access unavailable (koffi or libc.so.6 could not be loaded: ${(err as Error).message})`;
    throw new Error(loadError);
  }
}

/** Whether mmap/process_vm_readv can be used here; the reason when not. */
export function nativeSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `native memory access needs Linux (this is ${process.platform})` };
  try {
    libc();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

const PROT_READ = 1;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MAP_FAILED = (1n << 64n) - 1n;

/**
 * A read-only shared mapping of part of a file. `bytes` is a zero-copy view.
 * After `unmap()` the file is released but the address range stays reserved
 * and reads as zeros, so a view someone kept cannot crash the process.
 */
export interface FileMapping {
  readonly bytes: Uint8Array;
  readonly offset: number;
  readonly length: number;
  unmap(): void;
}

const PAGE = 4096;
/** Largest single view handed out; Node 20 typed arrays stop at 4 GiB, and smaller views are cheap. */
export const MAX_VIEW = 1 << 30;

/**
 * Maps `length` bytes of the file open on `fd` from `offset`, read-only and
 * shared, so that the view follows the guest's writes. The fd may be closed
 * afterwards. `length` is at most MAX_VIEW; `offset` needs no alignment.
 */
export function mapFileReadOnly(fd: number, length: number, offset = 0): FileMapping {
  if (!Number.isSafeInteger(length) || length <= 0 || length > MAX_VIEW) throw new RangeError(`cannot map ${length} bytes (1..${MAX_VIEW})`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad file offset ${offset}`);
  const c = libc();
  const skew = offset % PAGE;
  const mapLen = length + skew;
  const ptr = c.mmap(null, mapLen, PROT_READ, MAP_SHARED, fd, offset - skew);
  if (ptr === null || c.koffi.address(ptr) === MAP_FAILED) throw new NativeError('mmap', c.koffi.errno());
  const bytes = new Uint8Array(c.koffi.view(ptr, mapLen), skew, length);
  let mapped = true;
  return {
    bytes,
    offset,
    length,
    unmap() {
      if (!mapped) return;
      mapped = false;
      // Swap the file for anonymous zero pages in place; munmap would turn stale views into SIGSEGV.
      const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
      const again = c.mmap(ptr, mapLen, PROT_READ, flags, -1, 0);
      if (again === null || c.koffi.address(again) === MAP_FAILED) c.munmap(ptr, mapLen);
    },
  };
}

/** Base address of each ArrayBuffer we have asked about: koffi.address costs a native call, this a WeakMap lookup. */
const baseAddresses = new WeakMap<ArrayBufferLike, number>();

/**
 * The host address of a typed array's first byte (the array must stay alive
 * across its use). ArrayBuffer contents never move once their address has
 * been taken (V8 moves small on-heap arrays off the heap first), so the base
 * address of each buffer is looked up once.
 */
export function addressOf(bytes: Uint8Array): number {
  const buf = bytes.buffer;
  let base = baseAddresses.get(buf);
  if (base === undefined) {
    base = Number(libc().koffi.address(bytes)) - bytes.byteOffset;
    baseAddresses.set(buf, base);
  }
  return base + bytes.byteOffset;
}

/** Most iovecs one process_vm_readv call takes (IOV_MAX on Linux). */
export const IOV_MAX = 1024;

/**
 * A reusable pair of iovec arrays for process_vm_readv: `add` lays out one
 * (local, remote, len) triple; `read` issues a single system call for all.
 */
export class IovecBatch {
  private readonly localBytes = new Uint8Array(IOV_MAX * 16);
  private readonly remoteBytes = new Uint8Array(IOV_MAX * 16);
  private readonly local = new Uint32Array(this.localBytes.buffer);
  private readonly remote = new Uint32Array(this.remoteBytes.buffer);
  private n = 0;
  private total = 0;

  get count(): number {
    return this.n;
  }
  get bytes(): number {
    return this.total;
  }
  get full(): boolean {
    return this.n >= IOV_MAX;
  }

  clear(): void {
    this.n = 0;
    this.total = 0;
  }

  /** Host addresses are below 2^47, so they are exact as numbers and split into two u32 halves. */
  add(localAddr: number, remoteAddr: number, len: number): void {
    if (this.n >= IOV_MAX) throw new RangeError('iovec batch is full');
    const i = this.n * 4;
    this.local[i] = localAddr >>> 0;
    this.local[i + 1] = Math.floor(localAddr / 0x1_0000_0000);
    this.local[i + 2] = len >>> 0;
    this.local[i + 3] = Math.floor(len / 0x1_0000_0000);
    this.remote[i] = remoteAddr >>> 0;
    this.remote[i + 1] = Math.floor(remoteAddr / 0x1_0000_0000);
    this.remote[i + 2] = len >>> 0;
    this.remote[i + 3] = Math.floor(len / 0x1_0000_0000);
    this.n++;
    this.total += len;
  }

  /**
   * Reads the batch from process `pid`. Returns the bytes transferred (less
   * than `bytes` when a remote range faulted: the kernel stops there, 0 when
   * the first one did); throws
   * NativeError for failures of the whole call (ESRCH, EPERM, …).
   */
  read(pid: number): number {
    const c = libc();
    const got = Number(c.processVmReadv(pid, this.localBytes, this.n, this.remoteBytes, this.n, 0));
    if (got >= 0) return got;
    const errno = c.koffi.errno();
    // Our local buffers are always valid, so EFAULT means the first remote range faulted: nothing read.
    if (errno === Errno.EFAULT) return 0;
    throw new NativeError('process_vm_readv', errno);
  }
}
