/**
 * The part JsonlSink and TerminalSink share: lines written to a Node Writable with the stream's own
 * back-pressure. `write` returns false once the stream is over its high-water mark (the line is still
 * taken: Writable buffers it); `drain()` resolves when the stream has drained. A stream that failed (EPIPE,
 * disk full) takes nothing more: later events are counted as dropped and the error is kept for close().
 */
import type { Writable } from 'node:stream';
import type { EventSink, MonitorEvent } from '../events.js';

export interface StreamSinkOptions {
  /** End the stream on close (true for files the sink opened; never for stdout/stderr). */
  readonly end?: boolean;
}

export abstract class StreamSink implements EventSink {
  abstract readonly name: string;
  private droppedCount = 0;
  private failure: Error | undefined;
  private closed = false;

  constructor(
    protected readonly stream: Writable,
    private readonly options: StreamSinkOptions = {},
  ) {
    stream.on('error', (err: Error) => {
      this.failure ??= err;
    });
  }

  /** The text written for one event, newline included. */
  protected abstract format(event: MonitorEvent): string;

  get dropped(): number {
    return this.droppedCount;
  }

  /** The stream's error, when it failed. */
  get error(): Error | undefined {
    return this.failure;
  }

  write(event: MonitorEvent): boolean {
    if (this.closed || this.failure || this.stream.destroyed || this.stream.writableEnded) {
      this.droppedCount++;
      return false;
    }
    return this.stream.write(this.format(event));
  }

  async drain(): Promise<void> {
    if (!this.stream.writableNeedDrain || this.failure || this.stream.destroyed) return;
    const stream = this.stream;
    await new Promise<void>((resolve) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('close', done);
        stream.off('error', done);
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
      stream.on('error', done);
    });
  }

  async flush(): Promise<void> {
    await this.drain();
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.options.end && !this.stream.writableEnded && !this.stream.destroyed && !this.failure) {
      await new Promise<void>((resolve) => {
        this.stream.once('error', () => resolve());
        this.stream.end(() => resolve());
      });
    } else {
      await this.drain();
    }
    if (this.failure) throw new Error(`${this.name}: ${this.failure.message}`, { cause: this.failure });
  }
}
