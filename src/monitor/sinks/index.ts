/** The monitor's sinks: where MonitorEvents go (JSON Lines, the terminal, the SQLite store), and a fan-out. */
export { JsonlSink } from './jsonl.js';
export { TerminalSink, terminalLine, localClock, wantsColour, printable } from './terminal.js';
export { EventStore, STORE_SCHEMA_VERSION, type EventStoreOptions, type EventQuery, type TimeBound, type StoreInfo } from './store.js';
export { SinkSet, type SinkDrops, type SinkFailure } from './sink-set.js';
export { StreamSink, type StreamSinkOptions } from './stream-sink.js';
export { eventSummary, processText, changeText, valueText } from './summary.js';
export { SinkUnavailableError, StoreFormatError } from './errors.js';
