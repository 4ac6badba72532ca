// Replay, two ways.
// - Re-execute (simulated traces): run the simulation again from the trace's seed and config and
//   compare every event it produces, byte for byte in the stored encoding, with the recorded one;
//   compare the state hash at every recorded checkpoint too. The first difference is the result.
// - Fold (imported traces, no seed): apply each recorded event to the world and run the checkers.
import { CodecError, decodeAt, EventWriter, sizeAt } from '../events/binary.js';
import type { DmaEvent } from '../events/schema.js';
import { runPostCheckers, runPreCheckers } from '../check/index.js';
import { liveness, QUIESCENT } from '../check/liveness.js';
import { emptyWorld, type World } from '../model/world.js';
import type { SimConfig } from '../sim/config.js';
import { Sim } from '../sim/sim.js';
import { mutate } from './apply.js';
import { stateHash } from './snapshot.js';

export interface RecordedChunk {
  seq0: number;
  n: number;
  data: Uint8Array;
}

export type ReplayOutcome =
  | { ok: true; events: number; checkpoints: number; prefixOnly: boolean }
  | { ok: false; seq: number; reason: string; expected: DmaEvent | null; actual: DmaEvent | null; checkpoints: number };

class Mismatch extends Error {
  constructor(
    readonly seq: number,
    readonly reason: string,
    readonly expected: DmaEvent | null,
    readonly actual: DmaEvent | null,
  ) {
    super(reason);
  }
}
class EndOfRecording extends Error {}

/** Walks recorded events in order without decoding them. */
class Cursor {
  private chunk: RecordedChunk | null = null;
  private off = 0;
  private idx = 0;
  constructor(private readonly it: Iterator<RecordedChunk>) {}
  /** Returns [buffer, offset, length] of the next recorded event, or null at the end. */
  next(): [Uint8Array, number, number, number] | null {
    while (!this.chunk || this.idx >= this.chunk.n) {
      const r = this.it.next();
      if (r.done) return null;
      this.chunk = r.value;
      this.off = 0;
      this.idx = 0;
    }
    const seq = this.chunk.seq0 + this.idx;
    if (this.off + 4 > this.chunk.data.length) throw new CodecError(`event ${seq}: chunk ends early`);
    const len = sizeAt(this.chunk.data, this.off);
    if (this.off + len > this.chunk.data.length) throw new CodecError(`event ${seq}: truncated`);
    const at = this.off;
    this.off += len;
    this.idx++;
    return [this.chunk.data, at, len, seq];
  }
}

export function reexecute(
  config: SimConfig,
  seed: string,
  chunks: Iterable<RecordedChunk>,
  opts: { checkpointEvery: number; checkpointHashes: Map<number, string>; complete: boolean },
): ReplayOutcome {
  const it = chunks[Symbol.iterator]();
  try {
    return reexecuteFrom(config, seed, new Cursor(it), opts);
  } finally {
    it.return?.(); // release the store's read statement even when we stop early
  }
}

function reexecuteFrom(
  config: SimConfig,
  seed: string,
  cursor: Cursor,
  opts: { checkpointEvery: number; checkpointHashes: Map<number, string>; complete: boolean },
): ReplayOutcome {
  const scratch = new EventWriter(1 << 12);
  let verifiedCks = 0;
  let last = 0;
  const sink = {
    event(ev: DmaEvent) {
      const rec = cursor.next();
      if (!rec) {
        if (!opts.complete) throw new EndOfRecording();
        throw new Mismatch(ev.seq, `the run produced more events than the ${last} recorded`, null, ev);
      }
      const [buf, off, len, seq] = rec;
      scratch.reset();
      scratch.write(ev);
      const mine = scratch.bytes();
      if (seq !== ev.seq || mine.length !== len || Buffer.compare(mine, Buffer.from(buf.buffer, buf.byteOffset + off, len)) !== 0) {
        let expected: DmaEvent | null = null;
        try {
          expected = decodeAt(buf, off, seq);
        } catch {
          /* an undecodable recorded event is itself the mismatch */
        }
        throw new Mismatch(ev.seq, expected ? `event ${ev.seq} differs from the recording` : `recorded event ${seq} is corrupt`, expected, { ...ev });
      }
      last = seq;
    },
    checkpoint(seq: number, world: World) {
      const want = opts.checkpointHashes.get(seq);
      if (want === undefined) return;
      if (stateHash(world) !== want) throw new Mismatch(seq, `state hash at checkpoint ${seq} differs from the recording`, null, null);
      verifiedCks++;
    },
  };
  try {
    new Sim(config, seed, sink, opts.checkpointEvery).run();
  } catch (e) {
    if (e instanceof EndOfRecording) return { ok: true, events: last, checkpoints: verifiedCks, prefixOnly: true };
    if (e instanceof Mismatch) return { ok: false, seq: e.seq, reason: e.reason, expected: e.expected, actual: e.actual, checkpoints: verifiedCks };
    throw e;
  }
  const extra = cursor.next();
  if (extra) {
    let expected: DmaEvent | null = null;
    try {
      expected = decodeAt(extra[0], extra[1], extra[3]);
    } catch {
      /* reported as corrupt below */
    }
    return { ok: false, seq: extra[3], reason: `the recording has events past the end of the run (from ${extra[3]})`, expected, actual: null, checkpoints: verifiedCks };
  }
  return { ok: true, events: last, checkpoints: verifiedCks, prefixOnly: !opts.complete };
}

export interface FoldResult {
  world: World;
  events: number;
  findings: DmaEvent[];
}

/** Applies recorded events in order, running the checkers on each; finding events in the input are skipped. */
export function fold(chunks: Iterable<RecordedChunk>, opts: { to?: number; noLiveness?: boolean; onEvent?: (ev: DmaEvent, w: World) => void } = {}): FoldResult {
  const to = opts.to ?? Infinity;
  const world = emptyWorld();
  const owned = new Set<Uint8Array>();
  const findings: DmaEvent[] = [];
  let events = 0;
  let livenessDone = false;
  outer: for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      if (c.seq0 + i > to) break outer;
      const ev = decodeAt(c.data, off, c.seq0 + i);
      off += sizeAt(c.data, off);
      events = ev.seq;
      // a simulated run marks the point where nothing could run any more (before the driver is
      // unbound and its teardown unmaps change the picture): liveness is judged there
      if (ev.kind === 'marker' && ev.name === QUIESCENT && !livenessDone) {
        livenessDone = true;
        if (!opts.noLiveness) for (const f of liveness(world)) findings.push({ ...f, seq: ev.seq } as DmaEvent);
      }
      const pre = ev.kind === 'finding' ? null : runPreCheckers(world, ev);
      mutate(world, ev, owned);
      opts.onEvent?.(ev, world);
      if (ev.kind === 'finding') continue;
      for (const f of [...(pre ?? []), ...runPostCheckers(world, ev)]) findings.push({ ...f, seq: ev.seq } as DmaEvent);
    }
  }
  if (opts.to === undefined && !opts.noLiveness && !livenessDone) for (const f of liveness(world)) findings.push({ ...f, seq: events } as DmaEvent);
  return { world, events, findings };
}
