// replay: re-execute a simulated trace and verify it event by event, or fold an imported one.
// A long re-execution runs in segments on worker threads (replay-parallel.ts); a short one, or
// --jobs 1, runs on this thread. Both give the same report.
import { availableParallelism } from 'node:os';
import { eventToJson } from '../events/json.js';
import { CodecError } from '../events/binary.js';
import { InputError } from '../errors.js';
import { JUDGE } from '../check/index.js';
import { fold, type ReplayOutcome } from '../engine/replay.js';
import { reexecute } from '../sim/replay.js';
import { checkpointHashes, readChunks, type TraceRow, verifyCheckpoints, verifyStream } from '../store/db.js';
import { countFindings, firstFindings } from '../store/findings.js';
import type Database from 'better-sqlite3';
import { MAX_FINDINGS_LISTED } from './findings.js';
import { loadTrace, traceConfig, withTrace } from './load.js';
import { counted, type ProgressFn } from './progress.js';
import { FIRST_SEGMENT_WEIGHT, planSegments, reexecuteSegments, replayWorkersAvailable, segmentRunner, type SegmentRunner } from './replay-parallel.js';
import { rethrow } from './replay-worker.js';

export interface ReplayReport {
  trace: number;
  mode: 're-execute' | 'fold';
  ok: boolean;
  events: number;
  recorded: number;
  incomplete: boolean;
  checkpoints: number;
  findings: { class: string; seq: number; message: string }[];
  /** all the findings, however many `findings` lists */
  findingCount: number;
  mismatch?: { seq: number; reason: string; expected: unknown; actual: unknown };
}

export interface FindingsOption {
  /**
   * re-execute: list only the first N findings of the store (default all; the CLI streams them with
   * eachFinding instead of holding hundreds of thousands); a fold judges them itself and lists the
   * first MAX_FINDINGS_LISTED (findingCount counts them all)
   */
  findings?: number;
}

/** Replays on this thread. */
export function replayTrace(dbPath: string, id: string, progress?: ProgressFn, opts: FindingsOption = {}): ReplayReport {
  return withTrace(dbPath, id, ({ db, trace }) => {
    if (trace.source !== 'sim' || trace.seed === null) return foldReport(db, trace, progress);
    const out = reexecute(traceConfig(trace), trace.seed, counted(readChunks(db, trace), trace.events, progress), {
      checkpointEvery: trace.checkpoint_every,
      checkpointHashes: checkpointHashes(db, trace),
      complete: !!trace.complete,
    });
    // before saying ok: the checkpoints `state` starts from, each blob against its stored state hash
    // (the re-execution compared the hashes; the blobs themselves are only read here)
    // and the stored rows: the run may stop reading before the end (traces.events raised above what
    // is stored, or a changed stream, must not pass as ok)
    if (out.ok) {
      if (out.prefixOnly) verifyStream(db, trace); // the run stopped reading before the end
      verifyCheckpoints(db, trace);
    }
    return reexecuteReport(db, trace, out, opts);
  });
}

export interface ReplayOptions extends FindingsOption {
  /** worker threads (default: the cores); 1 replays on this thread */
  jobs?: number;
  progress?: ProgressFn;
  /**
   * segments per worker thread (default 1): more balance the load better under contention, but each
   * costs a checkpoint load and a resumed run's deoptimisation and recompilation (measured at 2M
   * events on 2 workers: 8 segments cost about 1 s more CPU than 2)
   */
  segmentsPerJob?: number;
  /** no segment shorter than this (default PARALLEL_MIN_SEGMENT) */
  minSegmentEvents?: number;
  /** traces shorter than this run on this thread (default PARALLEL_MIN_EVENTS) */
  minEvents?: number;
  /** run the segments here instead of on a pool of `jobs` threads (tests) */
  runner?: SegmentRunner;
}

/** Below this many events per segment, loading a checkpoint and stopping a run costs more than it saves. */
export const PARALLEL_MIN_SEGMENT = 100_000;
/**
 * Below this many events a trace replays on this thread. Going parallel costs about 1 s of CPU
 * whatever the length (2 workers): each worker thread pays for its own start, JIT warm-up and
 * compilation (the V8 helper threads' CPU about doubles), the resumed segment meets a world decoded
 * from a checkpoint, and the store's checks read the stream a second time. Measured on 2 shared
 * cores (load 12-14), CPU of the whole command: 2M events 2.3-2.4 s on this thread, 3.3 s on 2
 * workers; 10M 8.9 s and 9.6-10.1 s. Under such load the wall time gains nothing below a few million.
 */
export const PARALLEL_MIN_EVENTS = 4_000_000;

/** Replays on `jobs` worker threads when the trace is long enough to gain from it, else on this thread. */
export async function replayTraceParallel(dbPath: string, id: string, opts: ReplayOptions = {}): Promise<ReplayReport> {
  const jobs = opts.jobs ?? availableParallelism();
  const { db, trace } = loadTrace(dbPath, id);
  let closed = false;
  const close = () => {
    if (!closed) db.close();
    closed = true;
  };
  try {
    const segments =
      trace.source === 'sim' &&
      trace.seed !== null &&
      (opts.runner || (jobs > 1 && replayWorkersAvailable())) &&
      trace.events >= (opts.minEvents ?? (opts.runner ? 0 : PARALLEL_MIN_EVENTS))
        ? planSegments(
            [...checkpointHashes(db, trace).keys()].sort((a, b) => a - b),
            trace.events,
            (opts.runner?.threads ?? jobs) * (opts.segmentsPerJob ?? 1),
            opts.minSegmentEvents ?? PARALLEL_MIN_SEGMENT,
            opts.runner ? 1 : FIRST_SEGMENT_WEIGHT,
          )
        : [];
    if (segments.length < 2) {
      close();
      return replayTrace(dbPath, id, opts.progress, opts);
    }
    traceConfig(trace); // a config that does not parse is reported here, as on one thread
    const runner = opts.runner ?? segmentRunner(Math.min(jobs, segments.length));
    let r;
    try {
      r = await reexecuteSegments({ dbPath, trace, segments, runner, progress: opts.progress });
    } finally {
      if (!opts.runner) await runner.close();
    }
    // what one thread checks after an ok run (see replayTrace): the stream's rows and hash, then the checkpoint blobs
    if (r.outcome.ok && r.store) {
      if (r.store.stream) rethrow(r.store.stream);
      if (r.store.checkpoints) rethrow(r.store.checkpoints);
    }
    return reexecuteReport(db, trace, r.outcome, opts);
  } catch (e) {
    if (e instanceof CodecError) throw new InputError(`trace ${trace.id} is corrupt: ${e.message}`);
    throw e;
  } finally {
    close();
  }
}

function foldReport(db: Database.Database, trace: TraceRow, progress?: ProgressFn): ReplayReport {
  // the judged findings are counted, and only the first MAX_FINDINGS_LISTED kept
  const findings: ReplayReport['findings'] = [];
  let findingCount = 0;
  const r = fold(counted(readChunks(db, trace), trace.events, progress), JUDGE, {
    onFinding: (f) => void (findingCount++ < MAX_FINDINGS_LISTED && findings.push({ class: f.cls, seq: f.seq, message: f.message })),
  });
  verifyCheckpoints(db, trace);
  return {
    trace: trace.id,
    recorded: trace.events,
    incomplete: !trace.complete,
    mode: 'fold',
    ok: true,
    events: r.events,
    checkpoints: 0,
    findings,
    findingCount,
  };
}

function reexecuteReport(db: Database.Database, trace: TraceRow, out: ReplayOutcome, opts: FindingsOption): ReplayReport {
  if (!out.ok && out.expected === null && out.actual !== null && out.reason.includes('corrupt'))
    throw new InputError(`trace ${trace.id} is corrupt at event ${out.seq}`);
  return {
    trace: trace.id,
    recorded: trace.events,
    incomplete: !trace.complete,
    mode: 're-execute',
    ok: out.ok,
    events: out.ok ? out.events : out.seq - 1,
    checkpoints: out.checkpoints,
    findings: firstFindings(db, trace, opts.findings ?? -1).map((f) => ({ class: f.class, seq: f.seq, message: f.message })),
    findingCount: countFindings(db, trace),
    ...(out.ok
      ? {}
      : {
          mismatch: {
            seq: out.seq,
            reason: out.reason,
            expected: out.expected && eventToJson(out.expected),
            actual: out.actual && eventToJson(out.actual),
          },
        }),
  };
}
