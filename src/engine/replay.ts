// Replay, two ways. Re-executing a simulated trace (src/sim/replay.ts) runs the simulation again
// and verifies every event it produces against the recording with the Verifier below; folding (any
// trace: imported, exported, hand-written, the catalog) steps each recorded event through the
// pipeline, judged by the checkers the caller gives.
import { CodecError, decodeAt, EventWriter, sizeAt } from '../events/binary.js';
import type { DmaEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import { type Finding, type Judge, Pipeline } from './pipeline.js';

export interface RecordedChunk {
  seq0: number;
  n: number;
  data: Uint8Array;
}

export type ReplayOutcome =
  | { ok: true; events: number; checkpoints: number; prefixOnly: boolean }
  | { ok: false; seq: number; reason: string; expected: DmaEvent | null; actual: DmaEvent | null; checkpoints: number };

export class Mismatch extends Error {
  constructor(
    readonly seq: number,
    readonly reason: string,
    readonly expected: DmaEvent | null,
    readonly actual: DmaEvent | null,
  ) {
    super(reason);
  }
}
export class EndOfRecording extends Error {}

/**
 * Verifies the re-executed run against the recording, a recorded chunk at a time: produced events
 * are encoded into a scratch buffer, and once a chunk's worth is there (or before a checkpoint hash
 * is checked, or at the end) the bytes are compared with the recorded chunk in one Buffer.compare.
 * Equal byte ranges mean every event in them is equal, framing included. Only when a range differs
 * (or a chunk is malformed) does it walk event by event, to name the first differing event exactly
 * as a per-event comparison would.
 */
export class Verifier {
  private readonly it: Iterator<RecordedChunk>;
  private chunk: RecordedChunk | null = null;
  /** events in the current chunk (0 before the first) */
  private n = 0;
  /** produced events matched against this chunk so far (verified or pending) */
  private used = 0;
  /** byte offset in the chunk where the pending (not yet compared) events start */
  private off = 0;
  /** pending produced events, encoded back to back */
  private readonly scratch = new EventWriter(1 << 16);
  private pending = 0;
  /** seq of the first pending event; with none pending, the seq the next produced event should have */
  private firstPending: number;
  /** seq of the last verified event */
  last = 0;

  constructor(
    chunks: Iterator<RecordedChunk>,
    private readonly complete: boolean,
    /** the first seq to verify (a run resumed from a checkpoint): earlier recorded events are stepped over */
    private readonly startAt = 1,
  ) {
    this.it = chunks;
    this.last = startAt - 1;
    this.firstPending = startAt;
  }

  // called for every event the run produces: only counting here, the comparison is per chunk (flush)
  event(ev: DmaEvent): void {
    if (this.used === this.n) this.advance(ev);
    // the sim's seqs are consecutive; keep the check anyway
    if (ev.seq !== this.firstPending + this.pending) this.restartAt(ev.seq);
    this.scratch.write(ev);
    this.pending++;
    if (++this.used === this.n) this.flush();
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
      this.firstPending += this.pending;
      this.last = this.firstPending - 1;
      this.pending = 0;
      this.scratch.reset();
      return;
    }
    this.walk();
  }

  /** The current chunk is used up (or there is none yet): the next one, or the end of the recording. */
  private advance(ev: DmaEvent): void {
    while (this.used === this.n) {
      this.flush();
      if (!this.nextChunk()) {
        if (!this.complete) throw new EndOfRecording();
        throw new Mismatch(ev.seq, `the run produced more events than the ${this.last} recorded`, null, { ...ev });
      }
    }
  }

  /** A produced event that does not follow the pending ones: compare those first. */
  private restartAt(seq: number): void {
    this.flush();
    this.firstPending = seq;
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
    const c = (this.chunk = r.value);
    this.n = c.n;
    this.used = 0;
    this.off = 0;
    // a run resumed mid-chunk: the recorded events before it were verified by whoever ran them
    for (; this.used < c.n && c.seq0 + this.used < this.startAt; this.used++) this.off += boundsOf(c, this.off, c.seq0 + this.used);
    return true;
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
    this.firstPending += this.pending;
    this.pending = 0;
    this.scratch.reset();
  }
}

/** Size of the recorded event at off, checked against its chunk (a short chunk is corrupt). */
export function boundsOf(c: RecordedChunk, off: number, seq: number): number {
  if (off + 4 > c.data.length) throw new CodecError(`event ${seq}: chunk ends early`);
  const len = sizeAt(c.data, off);
  if (off + len > c.data.length) throw new CodecError(`event ${seq}: truncated`);
  return len;
}

export interface FoldResult {
  world: World;
  events: number;
  /** the judged findings, each with its number as seq (none when FoldOptions.onFinding took them) */
  findings: Finding[];
}

export interface FoldOptions {
  /** stop after this event (liveness is then not judged at the end) */
  to?: number;
  noLiveness?: boolean;
  /** each event, after it was applied */
  onEvent?: (ev: DmaEvent, w: World) => void;
  /** each judged finding; when given, the result's `findings` stays empty (a trace can hold millions) */
  onFinding?: (f: Finding) => void;
}

/**
 * Steps recorded events through the pipeline, judged by `judge` (null: only apply them). The
 * trace's own finding events are applied, not judged; the judged findings come back numbered as
 * record numbers them (see pipeline.ts).
 */
export function fold(chunks: Iterable<RecordedChunk>, judge: Judge | null, opts: FoldOptions = {}): FoldResult {
  const to = opts.to ?? Infinity;
  const findings: Finding[] = [];
  const onFinding = opts.onFinding;
  const pipe = new Pipeline({ judge, mode: 'fold', event: opts.onEvent, finding: onFinding ? (f) => onFinding({ ...f }) : (f) => findings.push({ ...f }), liveness: !opts.noLiveness });
  // no one but the rules and the checkers sees the events (the rules copy what they keep, the
  // checkers keep no bytes): their bytes fields can be views of the chunk instead of copies
  const shared = !opts.onEvent;
  let events = 0;
  for (const c of chunks) {
    if (c.seq0 > to) break;
    if (c.n > 0) events = pipe.putChunk(c.data, c.seq0, c.n, to, shared);
  }
  pipe.end(opts.to === undefined && !opts.noLiveness);
  return { world: pipe.world, events, findings };
}
