// Re-executing a simulated trace: run the simulation again from the trace's seed and config and
// compare every event it produces, byte for byte in the stored encoding, with the recorded one
// (src/engine/replay.ts Verifier); compare the state hash at every recorded checkpoint too. The
// first difference is the result.
//
// A run can also be re-executed in segments (src/app/replay-parallel.ts runs them on worker
// threads): a segment resumes from a recorded checkpoint instead of the seed and stops once the
// state hash of a later checkpoint is verified, reporting the simulation state (RNG, fault
// counters) it reached there. Whoever joins segments checks that each one resumed from exactly the
// state the one before it reached: then, by induction, every segment ran from the state a single
// run from the seed has there, and verified what that run would have verified.
import { EndOfRecording, Mismatch, type RecordedChunk, type ReplayOutcome, Verifier } from '../engine/replay.js';
import { type SimState, stateHash } from '../engine/snapshot.js';
import type { DmaEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import type { SimConfig } from './config.js';
import { type Resume, Sim } from './sim.js';

export interface ReexecuteOptions {
  checkpointEvery: number;
  checkpointHashes: Map<number, string>;
  complete: boolean;
}

export function reexecute(config: SimConfig, seed: string, chunks: Iterable<RecordedChunk>, opts: ReexecuteOptions): ReplayOutcome {
  return reexecuteSegment(config, seed, chunks, opts).outcome;
}

export interface SegmentOptions extends ReexecuteOptions {
  /** start from this recorded checkpoint instead of the seed (chunks must reach back to resume.seq + 1) */
  resume?: Resume | null;
  /** stop once the state hash of the checkpoint at this seq is verified (null: run to the end) */
  stopAt?: number | null;
}

export interface SegmentResult {
  outcome: ReplayOutcome;
  /**
   * The run stopped at `stopAt` with its state hash verified: the simulation state it had there. Null
   * if it did not (a mismatch, or no checkpoint at exactly `stopAt`: then it ran on to the end, and
   * its outcome is the outcome of the rest of the run).
   */
  stopped: SimState | null;
}

class StopSegment extends Error {
  constructor(readonly state: SimState) {
    super('segment end');
  }
}

/** Re-executes from the seed (or a checkpoint) and verifies every event and checkpoint hash on the way. */
export function reexecuteSegment(config: SimConfig, seed: string, chunks: Iterable<RecordedChunk>, opts: SegmentOptions): SegmentResult {
  const resume = opts.resume ?? null;
  const stopAt = opts.stopAt ?? null;
  const v = new Verifier(chunks[Symbol.iterator](), opts.complete, resume ? resume.seq + 1 : 1);
  let verifiedCks = 0;
  const sink = {
    event: (ev: DmaEvent) => v.event(ev),
    // the state is hashed, and only the SimState of the segment's last checkpoint is kept
    checkpointReadsOnly: true,
    checkpoint(seq: number, world: World, state: SimState) {
      const want = opts.checkpointHashes.get(seq);
      if (want === undefined) return;
      v.flush(); // every event up to the checkpoint is verified before its state is
      if (stateHash(world) !== want) throw new Mismatch(seq, `state hash at checkpoint ${seq} differs from the recording`, null, null);
      verifiedCks++;
      if (seq === stopAt) throw new StopSegment(state);
    },
  };
  const failed = (e: Mismatch): SegmentResult => ({
    outcome: { ok: false, seq: e.seq, reason: e.reason, expected: e.expected, actual: e.actual, checkpoints: verifiedCks },
    stopped: null,
  });
  const ended = (outcome: ReplayOutcome): SegmentResult => ({ outcome, stopped: null });
  let extra: ReturnType<Verifier['extra']>;
  try {
    new Sim(config, seed, sink, opts.checkpointEvery, resume ?? undefined).run();
    v.flush();
    // read the recording to its end before the reader is closed: the store checks what it streamed
    // (row count, the stream's hash) when the stream ends, so a complete replay reads it only once
    extra = v.extra();
  } catch (e) {
    if (e instanceof StopSegment) return { outcome: { ok: true, events: v.last, checkpoints: verifiedCks, prefixOnly: false }, stopped: e.state };
    if (e instanceof EndOfRecording) return ended({ ok: true, events: v.last, checkpoints: verifiedCks, prefixOnly: true });
    if (e instanceof Mismatch) return failed(e);
    // the run itself failed: an event before the failure that differs from the recording is the
    // better answer (per-event verification would have stopped there)
    try {
      v.flush();
    } catch (m) {
      if (m instanceof Mismatch) return failed(m);
    }
    throw e;
  } finally {
    v.close();
  }
  if (extra) return ended({ ok: false, seq: extra.seq, reason: `the recording has events past the end of the run (from ${extra.seq})`, expected: extra.expected, actual: null, checkpoints: verifiedCks });
  return ended({ ok: true, events: v.last, checkpoints: verifiedCks, prefixOnly: !opts.complete });
}
