// One segment of a parallel re-execution (src/app/replay-parallel.ts), on a worker thread
// (replay-thread.ts) or on the joining thread: open the database read-only, load the recorded
// checkpoint the segment starts from, read the segment's slice of the recording, re-execute and
// verify it (src/sim/replay.ts reexecuteSegment).
// Whatever fails comes back as data (the error's class and message), so the joining thread can
// report it as a single run would have, or discard it when the segment turns out not to count.
import { createHash, type Hash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { CodecError } from '../events/binary.js';
import { InputError, IntegrityError, UsageError } from '../errors.js';
import { type SimState, stateHash } from '../engine/snapshot.js';
import type { ReplayOutcome } from '../engine/replay.js';
import { reexecuteSegment } from '../sim/replay.js';
import { type Chunk, checkpointAt, checkpointHashes, openDb, readChunks, type TraceRow } from '../store/db.js';
import { collectYoung } from './young-gc.js';
import { storedCheckpoints } from '../store/checkpoints.js';
import { traceConfig } from './load.js';

export interface SegmentTask {
  dbPath: string;
  /** the trace row as the joining thread read it (its event count bounds every segment alike) */
  trace: TraceRow;
  /** 0: from the seed; else the seq of the recorded checkpoint to resume from */
  from: number;
  /** stop at the checkpoint with this seq (null: run to the end) */
  stopAt: number | null;
  /** per segment, the last seq reached (progress, read by the joining thread); index `slot` */
  progress?: Int32Array;
  slot?: number;
  /** called every few chunks, when the segment runs on the joining thread (its event loop is blocked meanwhile) */
  tick?: () => void;
  /**
   * The first segment, run on the joining thread: the stream's hash over the rows it reads, for the
   * store check to go on from (StreamRead). Not across threads (a Hash stays where it was made).
   */
  stream?: StreamRead;
}

/** How far a segment read the stored stream from its start, and the hash of those rows (null: the trace has no stream hash to check). */
export interface StreamRead {
  hash: Hash | null;
  /** the first seq of the next row not read */
  next: number;
}

/** A StreamRead at the start, for a trace whose stream is checked against its hash when it is complete. */
export function streamRead(trace: TraceRow): StreamRead {
  return { hash: trace.complete && typeof trace.hash === 'string' ? createHash('sha256') : null, next: 1 };
}

export interface ThrownError {
  cls: 'InputError' | 'IntegrityError' | 'UsageError' | 'CodecError' | 'Error';
  message: string;
  stack?: string;
}

export type SegmentReply =
  /** the checkpoint to resume from cannot be used (missing, corrupt, no simulation state): the segment did not run */
  | { kind: 'unusable'; reason: string }
  | { kind: 'ran'; outcome: ReplayOutcome; started: SimState | null; stopped: SimState | null }
  | { kind: 'threw'; error: ThrownError; started: SimState | null };

export default function runSegment(task: SegmentTask): SegmentReply {
  let db;
  try {
    db = openDb(task.dbPath);
  } catch (e) {
    return { kind: 'threw', error: thrown(e), started: null };
  }
  try {
    const trace = task.trace;
    const hashes = checkpointHashes(db, trace);
    let resume = null;
    if (task.from > 0) {
      try {
        // the store reads and checks it against its stored state hash, and decodes it
        const c = checkpointAt(db, trace.id, task.from, trace.events);
        if (!c || c.seq !== task.from) return { kind: 'unusable', reason: `no checkpoint at ${task.from}` };
        if (!c.sim) return { kind: 'unusable', reason: `checkpoint ${task.from} has no simulation state` };
        // the state the segment starts from is the recorded state: the same hash the run before it checks
        if (stateHash(c.world) !== hashes.get(task.from)) return { kind: 'unusable', reason: `checkpoint ${task.from} does not decode to its state hash` };
        resume = { seq: c.seq, world: c.world, state: c.sim };
      } catch (e) {
        return { kind: 'unusable', reason: (e as Error).message };
      }
    }
    const started = resume?.state ?? null;
    try {
      const chunks = task.stream && task.from === 0 && task.stopAt !== null ? hashing(db, trace, task.stopAt, task.stream) : readChunks(db, trace, task.from + 1);
      const r = reexecuteSegment(traceConfig(trace), trace.seed!, task.progress ? reporting(chunks, task.progress, task.slot ?? 0, task.tick) : chunks, {
        checkpointEvery: trace.checkpoint_every,
        checkpointHashes: hashes,
        complete: !!trace.complete,
        resume,
        stopAt: task.stopAt,
      });
      return { kind: 'ran', outcome: r.outcome, started, stopped: r.stopped };
    } catch (e) {
      return { kind: 'threw', error: thrown(e), started };
    }
  } finally {
    db.close();
  }
}

export interface StoreCheckTask {
  dbPath: string;
  trace: TraceRow;
  /** the rows the first segment read, hashed: the stream check reads only the rest */
  stream?: StreamRead;
}

/** What the store's own checks found: the stream's rows and hash, then every checkpoint blob against its state hash. */
export interface StoreCheckReply {
  stream: ThrownError | null;
  checkpoints: ThrownError | null;
}

/**
 * The checks a single re-execution makes besides the re-execution itself: the whole stream read once
 * (row count, and for a complete trace the stream's hash) and every stored checkpoint blob against
 * its state hash. A segment reads only its slice, so these run on their own: on the joining thread,
 * a slice at a time between its messages (checkStoreInSlices), once its own segment is done and
 * while the workers re-execute; the stream from where that segment stopped reading (StreamRead).
 */
export function checkStore(task: StoreCheckTask): StoreCheckReply {
  const it = storeChecks(task);
  let r = it.next();
  while (!r.done) r = it.next();
  return r.value;
}

/** checkStore, giving the event loop a turn every few chunks (the pool's messages go on meanwhile). */
export async function checkStoreInSlices(task: StoreCheckTask, cancelled: () => boolean): Promise<StoreCheckReply | null> {
  const it = storeChecks(task);
  try {
    for (let r = it.next(); ; r = it.next()) {
      if (r.done) return r.value;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (cancelled()) return null;
    }
  } finally {
    it.return(null as never); // closes the database if we stop early
  }
}

/** Stops between slices of the store's checks (yields every SLICE rows read). */
const SLICE = 16;

function* storeChecks(task: StoreCheckTask): Generator<void, StoreCheckReply> {
  let db;
  try {
    db = openDb(task.dbPath);
  } catch (e) {
    return { stream: thrown(e), checkpoints: null };
  }
  try {
    const reply: StoreCheckReply = { stream: null, checkpoints: null };
    let n = 0;
    try {
      // the stream: its rows against traces.events, its hash against traces.hash (store/db.ts verifyStream)
      // (a scavenge every 256 rows frees the rows read so far: see young-gc.ts)
      const s = task.stream;
      const rows = s && s.next > 1 ? readChunks(db, task.trace, s.next) : readChunks(db, task.trace);
      for (const c of rows) {
        if (s && s.next > 1) s.hash?.update(c.data);
        if (++n % SLICE === 0) {
          if (n % 256 === 0) collectYoung();
          yield;
        }
      }
      if (s && s.next > 1 && s.hash) {
        // readChunks' own check, for a stream read in two parts (store/db.ts readChunks)
        const got = s.hash.digest('hex');
        const t = task.trace;
        if (got !== t.hash) throw new IntegrityError(`trace ${t.id} is corrupt: its stored events hash to ${got.slice(0, 16)}…, not to the hash stored when it was written (${String(t.hash).slice(0, 16)}…)`);
      }
    } catch (e) {
      reply.stream = thrown(e);
    }
    try {
      // every checkpoint blob against its state hash (store/db.ts verifyCheckpoints)
      for (const _ of storedCheckpoints(db, task.trace.id, task.trace.events))
        if (++n % 4 === 0) {
          collectYoung(); // each blob is a read row too, about 0.6 MB at 10M events
          yield;
        }
    } catch (e) {
      reply.checkpoints = thrown(e);
    }
    return reply;
  } finally {
    db.close();
  }
}

/**
 * The first segment's rows, from the start, each hashed into `s` as it is read: up to the row that
 * holds `stopAt` first (where the segment stops when all is well), then on to the end if the run
 * goes on past it. Read as readChunks reads them (the same checks), in two ranges so neither hashes
 * the whole stream itself (readChunks does for a whole complete trace, and a stopped segment would
 * waste it).
 */
function* hashing(db: Database.Database, trace: TraceRow, stopAt: number, s: StreamRead): Generator<Chunk> {
  for (const c of readChunks(db, trace, 1, stopAt)) {
    s.hash?.update(c.data);
    s.next = c.seq0 + c.n;
    yield c;
  }
  for (const c of readChunks(db, trace, s.next)) {
    s.hash?.update(c.data);
    s.next = c.seq0 + c.n;
    yield c;
  }
}

function* reporting(chunks: Iterable<Chunk>, progress: Int32Array, slot: number, tick?: () => void): Generator<Chunk> {
  let n = 0;
  for (const c of chunks) {
    yield c;
    Atomics.store(progress, slot, c.seq0 + c.n - 1);
    if (tick && ++n % 16 === 0) tick();
  }
}

function thrown(e: unknown): ThrownError {
  const err = e instanceof Error ? e : new Error(String(e));
  const cls =
    e instanceof IntegrityError ? 'IntegrityError' : e instanceof UsageError ? 'UsageError' : e instanceof InputError ? 'InputError' : e instanceof CodecError ? 'CodecError' : 'Error';
  return { cls, message: err.message, stack: err.stack };
}

/** The error a segment threw, as the class it was (exit codes and messages follow from it). */
export function rethrow(t: ThrownError): never {
  const e: Error =
    t.cls === 'IntegrityError'
      ? new IntegrityError(t.message)
      : t.cls === 'UsageError'
        ? new UsageError(t.message)
        : t.cls === 'InputError'
          ? new InputError(t.message)
          : t.cls === 'CodecError'
            ? new CodecError(t.message)
            : new Error(t.message);
  if (t.stack) e.stack = t.stack;
  throw e;
}
