// Shared by the read-side commands: open the database read-only and find the trace.
import type Database from 'better-sqlite3';
import { InputError, UsageError } from '../errors.js';
import { CodecError } from '../events/binary.js';
import { SCHEMA_VERSION } from '../events/schema.js';
import { ENGINE_VERSION, newerVersion } from '../events/jsonl.js';
import { getTrace, openDb, type TraceRow } from '../store/db.js';
import type { SimConfig } from '../sim/config.js';

export interface Loaded {
  db: Database.Database;
  trace: TraceRow;
}

export function parseTraceId(s: string): number {
  if (!/^[0-9]+$/.test(s) || Number(s) < 1 || !Number.isSafeInteger(Number(s))) throw new UsageError(`trace id must be a positive integer, got ${JSON.stringify(s)}`);
  return Number(s);
}

export function loadTrace(dbPath: string, id: string): Loaded {
  const traceId = parseTraceId(id);
  const db = openDb(dbPath);
  try {
    const trace = getTrace(db, traceId);
    if (typeof trace.schema_version !== 'number' || trace.schema_version > SCHEMA_VERSION)
      throw new InputError(`trace ${traceId} uses event schema ${String(trace.schema_version)}, newer than this dmareplay supports (${SCHEMA_VERSION}); upgrade dmareplay`);
    if (typeof trace.engine_version === 'string' && newerVersion(trace.engine_version, ENGINE_VERSION))
      throw new InputError(`trace ${traceId} was written by dmareplay ${trace.engine_version}, newer than this one (${ENGINE_VERSION}); upgrade dmareplay`);
    if (!Number.isSafeInteger(trace.events) || trace.events < 0) throw new InputError(`trace ${traceId} is corrupt: traces.events is ${String(trace.events)}`);
    return { db, trace };
  } catch (e) {
    db.close();
    throw e;
  }
}

export function traceConfig(trace: TraceRow): SimConfig {
  try {
    return JSON.parse(trace.config) as SimConfig;
  } catch {
    throw new InputError(`trace ${trace.id} is corrupt: its config is not valid JSON`);
  }
}

/** Runs fn with the trace open and closes it; undecodable stored events become a one-line 'corrupt' error. */
export function withTrace<T>(dbPath: string, id: string, fn: (l: Loaded) => T): T {
  const l = loadTrace(dbPath, id);
  try {
    return corruptAsInput(l, () => fn(l));
  } finally {
    l.db.close();
  }
}

/** Runs fn on an open trace; undecodable stored events become a one-line 'corrupt' error. */
export function corruptAsInput<T>(l: Loaded, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CodecError) throw new InputError(`trace ${l.trace.id} is corrupt: ${e.message}`);
    throw e;
  }
}
