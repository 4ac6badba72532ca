// export: a trace as canonical JSONL (src/events/jsonl.ts): the header line, then one line per event.
// A trace that was itself imported from JSONL gets its original header back (source, seed, config,
// engine, complete are kept in its stored config), so export → import → export is byte-identical.
import { decodeAt, sizeAt } from '../events/binary.js';
import { eventLine, headerLine, JSONL_FORMAT, type TraceHeader } from '../events/jsonl.js';
import { InputError } from '../errors.js';
import { CodecError } from '../events/binary.js';
import { readChunks, type TraceRow } from '../store/db.js';
import { isJsonlImportConfig } from './import.js';
import { loadTrace, withTrace } from './load.js';
import type Database from 'better-sqlite3';

export function exportHeader(trace: TraceRow): TraceHeader {
  let config: unknown;
  try {
    config = JSON.parse(trace.config);
  } catch {
    throw new InputError(`trace ${trace.id} is corrupt: its config is not valid JSON`);
  }
  if (isJsonlImportConfig(config))
    return {
      format: JSONL_FORMAT,
      schema: trace.schema_version,
      engine: config.jsonl.engine,
      name: trace.name,
      source: config.jsonl.source,
      seed: config.jsonl.seed,
      config: config.config,
      events: trace.events,
      complete: config.jsonl.complete && !!trace.complete,
    };
  return {
    format: JSONL_FORMAT,
    schema: trace.schema_version,
    engine: trace.engine_version,
    name: trace.name,
    source: trace.source,
    seed: trace.seed,
    config,
    events: trace.events,
    complete: !!trace.complete,
  };
}

/** The export of an open trace in pieces of about 32 KiB: the header line, then the event lines. */
function* exportPieces(db: Database.Database, trace: TraceRow, progress?: (done: number, total: number) => void): Generator<string, number> {
  let buf = headerLine(exportHeader(trace)) + '\n';
  let n = 0;
  for (const c of readChunks(db, trace)) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      const ev = decodeAt(c.data, off, c.seq0 + i);
      off += sizeAt(c.data, off);
      buf += eventLine(ev) + '\n';
      n++;
      // pieces of ~32 KiB: a longer string is a V8 large object, allocated in the old generation
      // and freed only by a full GC
      if (buf.length >= 1 << 15) {
        yield buf;
        buf = '';
      }
    }
    progress?.(c.seq0 + c.n - 1, trace.events);
  }
  if (buf) yield buf;
  return n;
}

/**
 * Writes the export of trace `id` through `write`, in pieces of about 32 KiB; `write` may return a
 * promise (back-pressure). The database stays open only while this runs.
 */
export async function exportTrace(dbPath: string, id: string, write: (chunk: string) => void | Promise<void>, opts: { progress?: (done: number, total: number) => void } = {}): Promise<{ trace: number; events: number }> {
  const { db, trace } = loadTrace(dbPath, id);
  try {
    const pieces = exportPieces(db, trace, opts.progress);
    try {
      for (let r = pieces.next(); ; r = pieces.next()) {
        if (r.done) return { trace: trace.id, events: r.value };
        await write(r.value);
      }
    } finally {
      pieces.return(0); // a write that failed (the reader has gone) ends the read before the database closes
    }
  } catch (e) {
    if (e instanceof CodecError) throw new InputError(`trace ${trace.id} is corrupt: ${e.message}`);
    throw e;
  } finally {
    db.close();
  }
}

/** exportTrace with a synchronous `write` (a file being written), for callers that are synchronous themselves. */
export function exportTraceSync(dbPath: string, id: string, write: (chunk: string) => void): { trace: number; events: number } {
  return withTrace(dbPath, id, ({ db, trace }) => {
    const pieces = exportPieces(db, trace);
    try {
      for (let r = pieces.next(); ; r = pieces.next()) {
        if (r.done) return { trace: trace.id, events: r.value };
        write(r.value);
      }
    } finally {
      pieces.return(0);
    }
  });
}
