/** The typed errors of the sinks: one actionable line each, with the exit code of the CLI's classes. */
import { ExitCode, VmsightError, type ErrorOptions } from '../../core/errors.js';

/** An output file or store could not be opened or written (missing folder, no permission, disk full). */
export class SinkUnavailableError extends VmsightError {
  readonly file: string;
  constructor(file: string, message: string, options: ErrorOptions = {}) {
    super('monitor', ExitCode.unavailable, `${file}: ${message}`, options);
    this.file = file;
  }
}

/** A file is there but is not something vmsight may write or read as an event store. */
export class StoreFormatError extends VmsightError {
  readonly file: string;
  constructor(file: string, message: string, options: ErrorOptions = {}) {
    super('monitor', ExitCode.analysis, `${file}: ${message}`, options);
    this.file = file;
  }
}
