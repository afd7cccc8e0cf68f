/**
 * One error hierarchy for the whole tool. Every error carries its coordinates
 * (the address, symbol, field, file or technique that failed) and a one-line,
 * actionable message; the CLI maps each class to a distinct exit code.
 */

/** Process exit codes. Scripts depend on these: never renumber. */
export const ExitCode = {
  ok: 0,
  /** A bug in vmsight (an error that is not a VmsightError). */
  internal: 1,
  /** The command line was wrong. */
  usage: 2,
  /** The target could not be reached: missing file or socket, refused, no permission, QEMU gone. */
  unavailable: 3,
  /** The target was reached but could not be analysed: corrupt image, unmapped address, no profile. */
  analysis: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorOrigin =
  | 'usage'
  | 'source'
  | 'qemu'
  | 'format'
  | 'translate'
  | 'profile'
  | 'linux'
  | 'plugin'
  | 'lab'
  | 'monitor';

export interface ErrorOptions {
  /** What the user can do about it; appended to the one-line message. */
  hint?: string;
  cause?: unknown;
}

export class VmsightError extends Error {
  readonly origin: ErrorOrigin;
  readonly exitCode: ExitCode;
  readonly hint?: string;

  constructor(origin: ErrorOrigin, exitCode: ExitCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.origin = origin;
    this.exitCode = exitCode;
    if (options.hint !== undefined) this.hint = options.hint;
  }

  /** The single line shown to a person (no stack trace). */
  oneLine(): string {
    return this.hint ? `${this.message}: ${this.hint}` : this.message;
  }
}

/** The command line was wrong (unknown option, bad number, missing argument). */
export class UsageError extends VmsightError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('usage', ExitCode.usage, message, options);
  }
}

/** A memory source could not be opened or stopped answering (file, socket, process, permission). */
export class SourceError extends VmsightError {
  readonly technique: string;
  readonly target: string;
  constructor(technique: string, target: string, message: string, options: ErrorOptions = {}) {
    super('source', ExitCode.unavailable, `${technique} ${target}: ${message}`, options);
    this.technique = technique;
    this.target = target;
  }
}

/** QEMU's QMP or gdbstub answered with an error or something that is not the protocol. */
export class QemuError extends VmsightError {
  readonly endpoint: string;
  readonly errorClass?: string;
  constructor(endpoint: string, message: string, options: ErrorOptions & { errorClass?: string } = {}) {
    super('qemu', ExitCode.unavailable, `${endpoint}: ${message}`, options);
    this.endpoint = endpoint;
    if (options.errorClass !== undefined) this.errorClass = options.errorClass;
  }
}

/** A file is not what it claims to be (truncated dump, corrupt header, not a memory image). */
export class FormatError extends VmsightError {
  readonly file: string;
  readonly offset?: number;
  constructor(file: string, message: string, options: ErrorOptions & { offset?: number } = {}) {
    const where = options.offset === undefined ? file : `${file} at offset 0x${options.offset.toString(16)}`;
    super('format', ExitCode.analysis, `${where}: ${message}`, options);
    this.file = file;
    if (options.offset !== undefined) this.offset = options.offset;
  }
}

export type AddressSpaceName = 'physical' | 'virtual';

/** A read hit an address that has no backing (outside RAM, not present in the page tables). */
export class FaultError extends VmsightError {
  readonly space: AddressSpaceName;
  readonly address: bigint;
  /** Page-table level where translation stopped (5..1), when the fault came from a walk. */
  readonly level?: number;
  /** The page-table entry that was not present, when known. */
  readonly entry?: bigint;
  /** What went wrong, without the address prefix (for messages that name the address themselves). */
  readonly detail: string;
  constructor(
    space: AddressSpaceName,
    address: bigint | number,
    message: string,
    options: ErrorOptions & { level?: number; entry?: bigint } = {},
  ) {
    const a = BigInt(address);
    super('translate', ExitCode.analysis, `${space} address 0x${a.toString(16)}: ${message}`, options);
    this.space = space;
    this.address = a;
    this.detail = message;
    if (options.level !== undefined) this.level = options.level;
    if (options.entry !== undefined) this.entry = options.entry;
  }
}

/**
 * A read returned fewer bytes than asked (the object runs past the end of
 * what a source can give): a fault of the memory layer, so every caller that
 * treats unreadable memory as data (an anomaly) catches it as a FaultError.
 * `address` is where the read started; `firstMissing` the first byte it did not give.
 */
export class ShortReadError extends FaultError {
  /** Bytes asked for and bytes the read gave. */
  readonly wanted: number;
  readonly got: number;
  constructor(space: AddressSpaceName, start: bigint | number, wanted: number, got: number, what: string, options: ErrorOptions = {}) {
    super(space, start, `short read of ${what}: ${got} of ${wanted} bytes`, options);
    this.wanted = wanted;
    this.got = got;
  }

  get firstMissing(): bigint {
    return this.address + BigInt(this.got);
  }
}

/** A symbol, type or field the analysis needs is not in the profile. */
export class ProfileError extends VmsightError {
  readonly symbol?: string;
  readonly type?: string;
  readonly field?: string;
  /** Profile sources consulted, e.g. ['btf:memory', 'kallsyms:memory']. */
  readonly tried: readonly string[];
  constructor(
    message: string,
    options: ErrorOptions & { symbol?: string; type?: string; field?: string; tried?: readonly string[] } = {},
  ) {
    const tried = options.tried ?? [];
    super('profile', ExitCode.analysis, tried.length ? `${message} (looked in ${tried.join(', ')})` : message, options);
    if (options.symbol !== undefined) this.symbol = options.symbol;
    if (options.type !== undefined) this.type = options.type;
    if (options.field !== undefined) this.field = options.field;
    this.tried = tried;
  }
}

/** A file the command was told to read (an image, a --profile file) does not exist or cannot be opened. */
export class MissingFileError extends VmsightError {
  readonly file: string;
  constructor(what: string, file: string, options: ErrorOptions = {}) {
    super('source', ExitCode.unavailable, `${what} ${file} does not exist`, options);
    this.file = file;
  }
}

/** A kernel structure read from the guest does not hold together (hostile or torn). */
export class ValidationError extends VmsightError {
  readonly structure: string;
  readonly address: bigint;
  constructor(structure: string, address: bigint | number, reason: string, options: ErrorOptions = {}) {
    const a = BigInt(address);
    super('linux', ExitCode.analysis, `${structure} at 0x${a.toString(16)}: ${reason}`, options);
    this.structure = structure;
    this.address = a;
  }
}

/** The built-in guest lab could not do what was asked (no kernel, QEMU missing, boot failed). */
export class LabError extends VmsightError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('lab', ExitCode.unavailable, message, options);
  }
}

/** Renders any thrown value as the one line a person sees, and picks the exit code. */
export function describeError(err: unknown, debug = false): { line: string; exitCode: ExitCode } {
  if (err instanceof VmsightError) {
    const line = debug && err.stack ? `${err.oneLine()}\n${err.stack}` : err.oneLine();
    return { line, exitCode: err.exitCode };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const line = debug && e.stack ? e.stack : `internal error: ${e.message} (run with --debug for the stack trace and report it)`;
  return { line, exitCode: ExitCode.internal };
}

/** Formats a number or bigint as 0x-prefixed hex. */
export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}
