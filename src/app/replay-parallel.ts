// Re-execution in segments on threads. The recording is cut at recorded checkpoints into
// segments of about equal length; segment k resumes from the checkpoint where segment k-1 stops
// (the first starts from the seed), re-executes and verifies every event and checkpoint hash up to
// the next cut, and reports the simulation state it reached there (src/sim/replay.ts). The segments
// run at once, the first on this thread and the others on worker threads (segmentRunner); their
// results are joined in order, as a single run would meet them:
//
// - a segment counts only if it resumed from exactly the state the segment before it reached: the
//   state hash there was verified by the run before, the checkpoint it resumed from decodes to that
//   hash, and its simulation state (RNG, fault counters, which the hash leaves out) is the same. If
//   not (a checkpoint that cannot be read, a damaged simulation state, or a run that never stops at
//   that seq), the segment before is run again, from its own start, on through the next cut, and the
//   join goes on from there;
// - the first segment that counts and does not stop cleanly (a mismatch, a thrown error, or the end
//   of the run or of the recording) gives the result, with the checkpoint hashes verified before it.
//
// So the first mismatch (seq, reason, expected, actual), the number of verified checkpoints and any
// error are those of a single run from the seed, whatever the number of workers or segments.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ReplayOutcome } from '../engine/replay.js';
import type { SimState } from '../engine/snapshot.js';
import type { TraceRow } from '../store/db.js';
import type { ProgressFn } from './progress.js';
import runSegment, { checkStore, checkStoreInSlices, rethrow, type SegmentReply, type SegmentTask, type StoreCheckReply, type StoreCheckTask, streamRead } from './replay-worker.js';

/** A segment: from the checkpoint at `from` (0: the seed) to the one at `stopAt` (null: the end). */
export interface Segment {
  from: number;
  stopAt: number | null;
}

/**
 * Cuts [1, events] into at most `count` segments at recorded checkpoints (ascending seqs), each cut
 * at the checkpoint nearest to an even split, none shorter than `minEvents`. With `firstWeight`
 * below 1 the first segment is that much shorter than the others (its thread has other work too).
 */
export function planSegments(checkpoints: readonly number[], events: number, count: number, minEvents = 1, firstWeight = 1): Segment[] {
  const cuts: number[] = [];
  let j = 0;
  for (let k = 1; k < count; k++) {
    const target = Math.round((events * (firstWeight + k - 1)) / (firstWeight + count - 1));
    while (j + 1 < checkpoints.length && Math.abs(checkpoints[j + 1]! - target) <= Math.abs(checkpoints[j]! - target)) j++;
    const c = checkpoints[j];
    if (c === undefined || c >= events) break;
    const prev = cuts[cuts.length - 1] ?? 0;
    if (c - prev >= minEvents && events - c >= minEvents) cuts.push(c);
  }
  const starts = [0, ...cuts];
  return starts.map((from, i) => ({ from, stopAt: cuts[i] ?? null }));
}

/**
 * The first segment's share against each other one's, when it runs on the joining thread
 * (segmentRunner): that thread also checks the store once its segment is done.
 */
export const FIRST_SEGMENT_WEIGHT = 0.75;

/** A started task: its reply when awaited, and a way to give it up. */
export interface Started<R> {
  reply(): Promise<R>;
  cancel(): void;
}

export interface SegmentRunner {
  threads: number;
  segment(task: SegmentTask): Started<SegmentReply>;
  storeCheck(task: StoreCheckTask): Started<StoreCheckReply>;
  close(): Promise<void>;
}

const WORKER_URL = new URL('./replay-thread.js', import.meta.url);

/** The compiled worker is there (not when the test runner works on sources). */
export function replayWorkersAvailable(): boolean {
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

/**
 * `jobs` threads re-executing at once: this one and `jobs - 1` worker threads. The first segment
 * (the one from the seed) runs here, when the joiner asks for its reply, which it does first; each
 * of the next `jobs - 1` segments gets a worker thread of its own, started at once with its task;
 * any segment after those (and any re-run) runs here too, when asked for, once this thread is free.
 * On 2 cores that is two busy threads, not three: the joining thread used to wait on two workers and
 * check the store meanwhile, so a third isolate started, compiled the simulation and competed for a
 * core. The store's checks now run here after this thread's own segment (see planSegments' firstWeight).
 * On this thread alone when the compiled worker is not there.
 */
export function segmentRunner(jobs: number): SegmentRunner {
  if (!replayWorkersAvailable()) return inlineSegmentRunner();
  const inline = inlineSegmentRunner();
  let started = 0;
  return {
    threads: jobs,
    segment: (task) => (started++ === 0 || started > jobs ? inline.segment(task) : onThread(task)),
    // on this thread, a slice at a time, while it waits for the workers
    storeCheck: (task) => {
      let cancelled = false;
      const p = checkStoreInSlices(task, () => cancelled);
      p.catch(() => {});
      return {
        reply: async () => {
          const r = await p;
          if (!r) throw new Error('replay: the store check was cancelled');
          return r;
        },
        cancel: () => void (cancelled = true),
      };
    },
    close: async () => {},
  };
}

/** A segment on a worker thread of its own, which ends with it. */
function onThread(task: SegmentTask): Started<SegmentReply> {
  // a function and a Hash do not cross threads (the shared progress array does)
  const { tick: _tick, stream: _stream, ...data } = task;
  const w = new Worker(WORKER_URL, {
    workerData: data,
    // a young generation of the default size made the process's peak RSS grow by ~60 MB per worker
    // (10M events: 310 MB) for no measurable CPU gain (also measured with 32 MB: none)
    resourceLimits: { maxYoungGenerationSizeMb: 8 },
  });
  const p = new Promise<SegmentReply>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`replay: a worker thread exited (${code}) without a reply`)));
  });
  p.catch(() => {}); // a cancelled segment's rejection is expected; the joiner awaits only the ones it needs
  return { reply: () => p, cancel: () => void w.terminate() };
}

/** Runs each segment on this thread, when (and only if) its reply is asked for. */
export function inlineSegmentRunner(): SegmentRunner {
  const lazy = <R>(f: () => R): Started<R> => {
    let r: Promise<R> | null = null;
    return { reply: () => (r ??= Promise.resolve().then(f)), cancel() {} };
  };
  return {
    threads: 1,
    segment: (task) => lazy(() => runSegment(task)),
    storeCheck: (task) => lazy(() => checkStore(task)),
    close: async () => {},
  };
}

function sameSimState(a: SimState | null, b: SimState | null): boolean {
  return a !== null && b !== null && canonicalJson(a) === canonicalJson(b);
}

/** JSON with object keys sorted: equal values give equal text, whatever order their keys were added in. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

export interface ParallelOptions {
  dbPath: string;
  trace: TraceRow;
  segments: Segment[];
  runner: SegmentRunner;
  progress?: ProgressFn;
}

export interface ParallelResult {
  outcome: ReplayOutcome;
  /** what the store's own checks found (only looked at when the outcome is ok) */
  store: StoreCheckReply | null;
}

/** Re-executes the segments on the runner and joins their results as described at the top. */
export async function reexecuteSegments(o: ParallelOptions): Promise<ParallelResult> {
  const total = o.trace.events;
  // per task (segments, then any re-runs), the last seq it verified: progress without messages
  const slots = o.segments.length * 2 + 1;
  const progress = new Int32Array(new SharedArrayBuffer(4 * slots));
  const froms: number[] = [];
  // the rows the first segment reads, hashed as it reads them: the store's stream check reads only the rest
  const stream = streamRead(o.trace);
  const start = (s: Segment): Started<SegmentReply> => {
    const slot = froms.length;
    froms.push(s.from);
    return o.runner.segment({ dbPath: o.dbPath, trace: o.trace, from: s.from, stopAt: s.stopAt, progress, slot: slot < slots ? slot : slots - 1, tick, ...(slot === 0 ? { stream } : {}) });
  };
  const done = (): number => {
    let n = 0;
    for (let i = 0; i < froms.length && i < slots; i++) n += Math.max(0, Atomics.load(progress, i) - froms[i]!);
    return Math.min(n, total);
  };
  const timer = o.progress ? setInterval(() => o.progress!(done(), total), 200) : null;
  // a segment on this thread blocks the timer: it reports itself
  const tick = o.progress ? () => o.progress!(done(), total) : undefined;
  // the segments first (the first runs on this thread when asked for, the next ones go to workers
  // at once), then the store's checks, once the first segment has read its part of the stream
  const runs = o.segments.map(start);
  let store: Started<StoreCheckReply> | null = null;
  const storeCheck = () => (store ??= o.runner.storeCheck({ dbPath: o.dbPath, trace: o.trace, stream }));
  try {
    let checkpoints = 0;
    let prev: { stopped: SimState; checkpoints: number; from: number } | null = null;
    for (let i = 0; i < o.segments.length; i++) {
      const seg = o.segments[i]!;
      let r = await runs[i]!.reply();
      if (i === 0) storeCheck();
      let from = seg.from;
      if (prev && !(r.kind !== 'unusable' && sameSimState(prev.stopped, r.started))) {
        // segment i did not resume from the state segment i-1 reached: run that one on through segment i
        from = prev.from;
        checkpoints -= prev.checkpoints;
        const again = start({ from, stopAt: seg.stopAt });
        r = await again.reply();
        if (r.kind === 'unusable') throw new Error(`replay: the checkpoint at ${from} could not be read again (${r.reason})`);
      }
      if (r.kind === 'threw') rethrow(r.error);
      if (r.kind !== 'ran') throw new Error('replay: unexpected segment reply');
      checkpoints += r.outcome.checkpoints;
      if (r.outcome.ok && r.stopped) {
        prev = { stopped: r.stopped, checkpoints: r.outcome.checkpoints, from };
        o.progress?.(done(), total);
        continue;
      }
      const outcome = { ...r.outcome, checkpoints };
      return { outcome, store: outcome.ok ? await storeCheck().reply() : null };
    }
    throw new Error('replay: the last segment stopped before the end of the run');
  } finally {
    if (timer) clearInterval(timer);
    for (const r of runs) r.cancel();
    (store as Started<StoreCheckReply> | null)?.cancel();
  }
}
