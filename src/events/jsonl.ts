// The canonical export: one JSON object per line. Line 1 is the trace header (format, schema
// version, how the trace was made); every following line is one event in seq order, exactly as
// eventToJson writes it (64-bit values as hex strings). Exporting the same trace twice gives the same
// bytes, and export → import → export is byte-identical.
import { TraceValidator, ValidationError } from './validate.js';
import { eventFromJson, eventToJson, JsonEventError } from './json.js';
import { type DmaEvent, SCHEMA_VERSION } from './schema.js';

/** the version of this program, recorded with every trace (traces.engine_version, the JSONL header) */
export const ENGINE_VERSION = '0.1.0';

/** a.b.c newer than b? Compared numerically part by part; anything unparseable counts as not newer. */
export function newerVersion(a: string, b: string): boolean {
  const pa = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})/.exec(a);
  const pb = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})/.exec(b);
  if (!pa || !pb) return false;
  for (let i = 1; i <= 3; i++) if (Number(pa[i]) !== Number(pb[i])) return Number(pa[i]) > Number(pb[i]);
  return false;
}

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

/** the longest line read: a 4 MiB mem.write or device write (as hex) with room to spare */
export const MAX_LINE = 16 << 20;
/** the deepest nesting of arrays/objects accepted (an event needs 3, a config a few more) */
export const MAX_DEPTH = 32;
const BOM = '\ufeff';

/** true if v nests deeper than max; stops descending there, so any input costs at most its size */
function tooDeep(v: unknown, max: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (max === 0) return true;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (tooDeep(x, max - 1)) return true;
  return false;
}

function parseJson(text: string, line: number): unknown {
  if (text.length > MAX_LINE) throw new JsonlError(line, 'line', `line is ${text.length} characters long, more than ${MAX_LINE}`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    // V8 quotes the input in its message; the position is what helps, the quote may be binary
    const at = /position (\d+)/.exec(msg);
    throw new JsonlError(line, 'json', `not valid JSON${at ? ` (at column ${Number(at[1]) + 1})` : e instanceof RangeError ? ' (nested too deeply)' : ''}`);
  }
  if (tooDeep(v, MAX_DEPTH)) throw new JsonlError(line, 'json', `nested more than ${MAX_DEPTH} levels deep`);
  return v;
}

/** A UTF-8 byte order mark at the start of a file (editors on Windows add one) is not content. */
export const stripBom = (text: string): string => (text.startsWith(BOM) ? text.slice(1) : text);

export function parseHeader(text: string, line = 1): TraceHeader {
  const o = parseJson(line === 1 ? stripBom(text) : text, line) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new JsonlError(line, 'header', 'the first line must be the trace header object');
  if (o.format !== JSONL_FORMAT) throw new JsonlError(line, 'format', `format must be "${JSONL_FORMAT}" (is this a dmareplay export?)`);
  if (typeof o.schema !== 'number' || !Number.isInteger(o.schema)) throw new JsonlError(line, 'schema', 'schema must be an integer');
  if (o.schema > SCHEMA_VERSION) throw new JsonlError(line, 'schema', `schema version ${o.schema} is newer than this dmareplay supports (${SCHEMA_VERSION}); upgrade dmareplay`);
  if (o.schema < 1) throw new JsonlError(line, 'schema', `schema version ${o.schema} does not exist (the first is 1)`);
  if (o.engine !== undefined && typeof o.engine !== 'string') throw new JsonlError(line, 'engine', 'engine must be a version string');
  if (typeof o.engine === 'string' && newerVersion(o.engine, ENGINE_VERSION))
    throw new JsonlError(line, 'engine', `the trace was made by dmareplay ${o.engine}, newer than this one (${ENGINE_VERSION}); upgrade dmareplay`);
  if (o.complete !== undefined && typeof o.complete !== 'boolean') throw new JsonlError(line, 'complete', 'complete must be true or false');
  if (typeof o.name !== 'string') throw new JsonlError(line, 'name', 'name must be a string');
  if (o.source !== 'sim' && o.source !== 'import') throw new JsonlError(line, 'source', 'source must be "sim" or "import"');
  if (o.seed !== null && typeof o.seed !== 'string') throw new JsonlError(line, 'seed', 'seed must be a string or null');
  if (typeof o.events !== 'number' || !Number.isInteger(o.events) || o.events < 0 || o.events > 0xffffffff) throw new JsonlError(line, 'events', 'events must be a non-negative integer');
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

/** Runs one parsed event line through the trace's validator (validate.ts), naming the line. */
export function validateLine(v: TraceValidator, ev: DmaEvent, line: number): void {
  try {
    v.check(ev);
  } catch (e) {
    if (e instanceof ValidationError) throw new JsonlError(line, e.field, `field ${e.field}: ${e.message}`);
    throw e;
  }
}

/** A whole export in memory (catalog traces, tests): header and events, validated. */
export function parseJsonl(text: string): { header: TraceHeader; events: DmaEvent[] } {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) throw new JsonlError(1, 'header', 'empty file');
  const header = parseHeader(lines[0]!);
  const v = new TraceValidator();
  const events = lines.slice(1).map((l, i) => {
    const ev = parseEventLine(l, i + 2, i + 1);
    validateLine(v, ev, i + 2);
    return ev;
  });
  if (events.length !== header.events) throw new JsonlError(lines.length, 'events', `the header says ${header.events} events, the file has ${events.length}`);
  return { header, events };
}

export function toJsonl(header: Omit<TraceHeader, 'format' | 'schema' | 'events'>, events: DmaEvent[]): string {
  const h: TraceHeader = { format: JSONL_FORMAT, schema: SCHEMA_VERSION, events: events.length, ...header };
  return [headerLine(h), ...events.map(eventLine)].join('\n') + '\n';
}
