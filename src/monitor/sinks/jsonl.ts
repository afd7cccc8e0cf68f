/**
 * JSON Lines: one MonitorEvent as one JSON object per line, to stdout or to a file (appended). Back-pressure
 * is the stream's own (see StreamSink): `write` returns false over the high-water mark, `drain()` waits.
 */
import { closeSync, createWriteStream, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { MonitorEvent } from '../events.js';
import { SinkUnavailableError } from './errors.js';
import { checkWritablePath } from './output-path.js';
import { StreamSink, type StreamSinkOptions } from './stream-sink.js';

export class JsonlSink extends StreamSink {
  readonly name: string;

  constructor(stream: Writable, options: StreamSinkOptions & { name?: string } = {}) {
    super(stream, options);
    this.name = options.name ?? 'jsonl';
  }

  /** `-` is stdout; anything else a file, created or appended to, checked before the monitor starts. */
  static open(target: string): JsonlSink {
    if (target === '-') return new JsonlSink(process.stdout, { name: 'jsonl:stdout' });
    checkWritablePath(target, 'JSON Lines file', { devices: true });
    let fd: number;
    try {
      fd = openSync(target, 'a');
    } catch (e) {
      throw new SinkUnavailableError(target, `cannot open the JSON Lines file: ${(e as Error).message}`, { hint: 'choose another path' });
    }
    try {
      return new JsonlSink(createWriteStream('', { fd, highWaterMark: 64 * 1024 }), { end: true, name: `jsonl:${target}` });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  protected format(event: MonitorEvent): string {
    return JSON.stringify(event) + '\n';
  }
}
