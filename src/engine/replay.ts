// Replay, two ways.
// - Re-execute (simulated traces): run the simulation again from the trace's seed and config and
//   compare every event it produces, byte for byte in the stored encoding, with the recorded one;
//   compare the state hash at every recorded checkpoint too. The first difference is the result.
//   A long trace from the store may be verified in parts on several threads (see reexecuteSplit).
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

/**
 * Verifies the re-executed run against the recording, a recorded chunk at a time: produced events
 * are encoded into a scratch buffer, and once a chunk's worth is there (or before a checkpoint hash
 * is checked, or at the end) the bytes are compared with the recorded chunk in one Buffer.compare.
 * Equal byte ranges mean every event in them is equal, framing included. Only when a range differs
 * (or a chunk is malformed) does it walk event by event, to name the first differing event exactly
 * as a per-event comparison would.
 */
class Verifier {
  private readonly it: Iterator<RecordedChunk>;
  private chunk: RecordedChunk | null = null;
  /** produced events matched against this chunk so far (verified or pending) */
  private used = 0;
  /** byte offset in the chunk where the pending (not yet compared) events start */
  private off = 0;
  /** pending produced events, encoded back to back */
  private readonly scratch = new EventWriter(1 << 16);
  private pending = 0;
  private firstPending = 0;
  /** seq of the last verified event */
  last = 0;

  constructor(
    chunks: Iterator<RecordedChunk>,
    private readonly complete: boolean,
  ) {
    this.it = chunks;
  }

  event(ev: DmaEvent): void {
    if (!this.chunk || this.used >= this.chunk.n) {
      this.flush();
      if (!this.nextChunk()) {
        if (!this.complete) throw new EndOfRecording();
        throw new Mismatch(ev.seq, `the run produced more events than the ${this.last} recorded`, null, { ...ev });
      }
    }
    if (this.pending === 0) this.firstPending = ev.seq;
    else if (ev.seq !== this.firstPending + this.pending) this.flushBefore(ev); // the sim's seqs are consecutive; keep the check anyway
    this.scratch.write(ev);
    this.pending++;
    this.used++;
    if (this.used === this.chunk!.n) this.flush();
  }

  /** Compares everything pending with the recording; throws the first difference. */
  flush(): void {
    if (this.pending === 0) return;
    const c = this.chunk!;
    const mine = this.scratch.buf;
    const n = this.scratch.pos;
    const seqOk = c.seq0 + this.used - this.pending === this.firstPending;
    if (seqOk && this.off + n <= c.data.length && mine.compare(c.data, this.off, this.off + n, 0, n) === 0) {
      this.off += n;
      this.last = this.firstPending + this.pending - 1;
      this.pending = 0;
      this.scratch.reset();
      return;
    }
    this.walk();
  }

  /** The recording's next event past the run's end, if any: [seq, decoded or null if undecodable]. */
  extra(): { seq: number; expected: DmaEvent | null } | null {
    this.flush();
    while (!this.chunk || this.used >= this.chunk.n) if (!this.nextChunk()) return null;
    const c = this.chunk;
    const seq = c.seq0 + this.used;
    boundsOf(c, this.off, seq);
    let expected: DmaEvent | null = null;
    try {
      expected = decodeAt(c.data, this.off, seq);
    } catch {
      /* reported as corrupt by the caller */
    }
    return { seq, expected };
  }

  close(): void {
    this.it.return?.(); // release the store's read statement even when we stop early
  }

  private nextChunk(): boolean {
    const r = this.it.next();
    if (r.done) return false;
    this.chunk = r.value;
    this.used = 0;
    this.off = 0;
    return true;
  }

  private flushBefore(ev: DmaEvent): void {
    this.flush();
    this.firstPending = ev.seq;
  }

  // The slow path: event by event over the pending range, with the checks and messages of a
  // per-event comparison (a malformed recorded event throws CodecError as it always did).
  private walk(): never | void {
    const c = this.chunk!;
    const mine = this.scratch.buf;
    let myOff = 0;
    let off = this.off;
    const seq0 = c.seq0 + this.used - this.pending;
    for (let i = 0; i < this.pending; i++) {
      const seq = seq0 + i;
      const actualSeq = this.firstPending + i;
      const len = boundsOf(c, off, seq);
      const myLen = sizeAt(mine, myOff);
      if (seq !== actualSeq || myLen !== len || mine.compare(c.data, off, off + len, myOff, myOff + myLen) !== 0) {
        let expected: DmaEvent | null = null;
        try {
          expected = decodeAt(c.data, off, seq);
        } catch {
          /* an undecodable recorded event is itself the mismatch */
        }
        const actual = decodeAt(mine, myOff, actualSeq);
        throw new Mismatch(actualSeq, expected ? `event ${actualSeq} differs from the recording` : `recorded event ${seq} is corrupt`, expected, actual);
      }
      this.last = actualSeq;
      off += len;
      myOff += myLen;
    }
    this.off = off;
    this.pending = 0;
    this.scratch.reset();
  }
}

/** Size of the recorded event at off, checked against its chunk (a short chunk is corrupt). */
function boundsOf(c: RecordedChunk, off: number, seq: number): number {
  if (off + 4 > c.data.length) throw new CodecError(`event ${seq}: chunk ends early`);
  const len = sizeAt(c.data, off);
  if (off + len > c.data.length) throw new CodecError(`event ${seq}: truncated`);
  return len;
}

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
  try {
    new Sim(config, seed, sink, opts.checkpointEvery).run();
    v.flush();
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
  const extra = v.extra();
  if (extra) return { ok: false, seq: extra.seq, reason: `the recording has events past the end of the run (from ${extra.seq})`, expected: extra.expected, actual: null, checkpoints: verifiedCks };
  return { ok: true, events: v.last, checkpoints: verifiedCks, prefixOnly: !opts.complete };
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
