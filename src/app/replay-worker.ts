// One segment of a parallel re-execution (src/app/replay-parallel.ts), as a piscina task function:
// open the database read-only, load the recorded checkpoint the segment starts from, read the
// segment's slice of the recording, re-execute and verify it (src/sim/replay.ts reexecuteSegment).
// Whatever fails comes back as data (the error's class and message), so the joining thread can
// report it as a single run would have, or discard it when the segment turns out not to count.
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
      const chunks = readChunks(db, trace, task.from + 1);
      const r = reexecuteSegment(traceConfig(trace), trace.seed!, task.progress ? reporting(chunks, task.progress, task.slot ?? 0) : chunks, {
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
 * a slice at a time between its messages (checkStoreInSlices), while the workers re-execute.
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
      for (const _ of readChunks(db, task.trace))
        if (++n % SLICE === 0) {
          if (n % 256 === 0) collectYoung();
          yield;
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

function* reporting(chunks: Iterable<Chunk>, progress: Int32Array, slot: number): Generator<Chunk> {
  for (const c of chunks) {
    yield c;
    Atomics.store(progress, slot, c.seq0 + c.n - 1);
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
