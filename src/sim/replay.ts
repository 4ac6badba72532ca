// Re-executing a simulated trace: run the simulation again from the trace's seed and config and
// compare every event it produces, byte for byte in the stored encoding, with the recorded one
// (src/engine/replay.ts Verifier); compare the state hash at every recorded checkpoint too. The
// first difference is the result.
import { EndOfRecording, Mismatch, type RecordedChunk, type ReplayOutcome, Verifier } from '../engine/replay.js';
import { stateHash } from '../engine/snapshot.js';
import type { DmaEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import type { SimConfig } from './config.js';
import { Sim } from './sim.js';

export interface ReexecuteOptions {
  checkpointEvery: number;
  checkpointHashes: Map<number, string>;
  complete: boolean;
}

export function reexecute(config: SimConfig, seed: string, chunks: Iterable<RecordedChunk>, opts: ReexecuteOptions): ReplayOutcome {
  const v = new Verifier(chunks[Symbol.iterator](), opts.complete);
  let verifiedCks = 0;
  const sink = {
    event: (ev: DmaEvent) => v.event(ev),
    checkpoint(seq: number, world: World) {
      const want = opts.checkpointHashes.get(seq);
      if (want === undefined) return;
      v.flush(); // every event up to the checkpoint is verified before its state is
      if (stateHash(world) !== want) throw new Mismatch(seq, `state hash at checkpoint ${seq} differs from the recording`, null, null);
      verifiedCks++;
    },
  };
  const failed = (e: Mismatch): ReplayOutcome => ({ ok: false, seq: e.seq, reason: e.reason, expected: e.expected, actual: e.actual, checkpoints: verifiedCks });
  let extra: ReturnType<Verifier['extra']>;
  try {
    new Sim(config, seed, sink, opts.checkpointEvery).run();
    v.flush();
    // read the recording to its end before the reader is closed: the store checks what it streamed
    // (row count, the stream's hash) when the stream ends, so a complete replay reads it only once
    extra = v.extra();
  } catch (e) {
    if (e instanceof EndOfRecording) return { ok: true, events: v.last, checkpoints: verifiedCks, prefixOnly: true };
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
  if (extra) return { ok: false, seq: extra.seq, reason: `the recording has events past the end of the run (from ${extra.seq})`, expected: extra.expected, actual: null, checkpoints: verifiedCks };
  return { ok: true, events: v.last, checkpoints: verifiedCks, prefixOnly: !opts.complete };
}

