// The canonical export: one JSON object per line. Line 1 is the trace header (format, schema
// version, how the trace was made); every following line is one event in seq order, exactly as
// eventToJson writes it (64-bit values as hex strings). Exporting the same trace twice gives the same
// bytes, and export → import → export is byte-identical.
import { eventFromJson, eventToJson, JsonEventError } from './json.js';
import { type DmaEvent, SCHEMA_VERSION } from './schema.js';

export const JSONL_FORMAT = 'dmareplay-trace';

export interface TraceHeader {
  format: typeof JSONL_FORMAT;
  schema: number;
  engine: string;
  name: string;
  source: 'sim' | 'import';
  /** present for simulated traces: with config, re-executes the run */
  seed: string | null;
  config: unknown;
  events: number;
  complete: boolean;
}

export class JsonlError extends Error {
  constructor(
    readonly line: number,
    readonly field: string,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export function headerLine(h: TraceHeader): string {
  return JSON.stringify({
    format: h.format,
    schema: h.schema,
    engine: h.engine,
    name: h.name,
    source: h.source,
    seed: h.seed,
    config: h.config,
    events: h.events,
    complete: h.complete,
  });
}

export function eventLine(ev: DmaEvent): string {
  return JSON.stringify(eventToJson(ev));
}

function parseJson(text: string, line: number): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new JsonlError(line, 'json', `not valid JSON (${(e as Error).message})`);
  }
}

export function parseHeader(text: string, line = 1): TraceHeader {
  const o = parseJson(text, line) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new JsonlError(line, 'header', 'the first line must be the trace header object');
  if (o.format !== JSONL_FORMAT) throw new JsonlError(line, 'format', `format must be "${JSONL_FORMAT}" (is this a dmareplay export?)`);
  if (typeof o.schema !== 'number' || !Number.isInteger(o.schema)) throw new JsonlError(line, 'schema', 'schema must be an integer');
  if (o.schema > SCHEMA_VERSION) throw new JsonlError(line, 'schema', `schema version ${o.schema} is newer than this dmareplay supports (${SCHEMA_VERSION})`);
  if (typeof o.name !== 'string') throw new JsonlError(line, 'name', 'name must be a string');
  if (o.source !== 'sim' && o.source !== 'import') throw new JsonlError(line, 'source', 'source must be "sim" or "import"');
  if (o.seed !== null && typeof o.seed !== 'string') throw new JsonlError(line, 'seed', 'seed must be a string or null');
  if (typeof o.events !== 'number' || !Number.isInteger(o.events) || o.events < 0) throw new JsonlError(line, 'events', 'events must be a non-negative integer');
  return {
    format: JSONL_FORMAT,
    schema: o.schema,
    engine: typeof o.engine === 'string' ? o.engine : '',
    name: o.name,
    source: o.source,
    seed: o.seed as string | null,
    config: o.config ?? null,
    events: o.events,
    complete: o.complete !== false,
  };
}

/** Parses event line `line` (1-based in the file), which must carry seq `seq`. */
export function parseEventLine(text: string, line: number, seq: number): DmaEvent {
  const o = parseJson(text, line);
  try {
    return eventFromJson(o, seq);
  } catch (e) {
    if (e instanceof JsonEventError) throw new JsonlError(line, e.field, `field ${e.field}: ${e.message}`);
    throw e;
  }
}

/** A whole export in memory (catalog traces, tests): header and events, validated. */
export function parseJsonl(text: string): { header: TraceHeader; events: DmaEvent[] } {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) throw new JsonlError(1, 'header', 'empty file');
  const header = parseHeader(lines[0]!);
  const events = lines.slice(1).map((l, i) => parseEventLine(l, i + 2, i + 1));
  if (events.length !== header.events) throw new JsonlError(lines.length, 'events', `the header says ${header.events} events, the file has ${events.length}`);
  return { header, events };
}

export function toJsonl(header: Omit<TraceHeader, 'format' | 'schema' | 'events'>, events: DmaEvent[]): string {
  const h: TraceHeader = { format: JSONL_FORMAT, schema: SCHEMA_VERSION, events: events.length, ...header };
  return [headerLine(h), ...events.map(eventLine)].join('\n') + '\n';
}
