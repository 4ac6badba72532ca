// The per-operation table bisect compares: one fixed-size row per guest operation, holding what
// projection.ts defines as the operation's projection, reduced to fingerprints (the bytes the device
// read and wrote, the used length, the bytes the guest read back, the completion order) plus the seqs
// an explanation needs (where the operation's events lie, so it can be re-folded alone from the
// checkpoint before it) and a fingerprint of its intent (so two traces can be checked comparable
// without reading their events).
//
// The table is built by OpHasher from the events as they are stepped, each with the world after it:
// the recording does it while it records (app/record.ts hands it every event), a trace recorded
// before the table existed or imported is folded once and its table cached (store/projections.ts).
// Both see the same events and the same world, so they build the same table.
//
// Fingerprints are two 32-bit multiplicative lanes (FNV-1a and a second multiplier) over the bytes
// in order: cheap enough for the record path, and a difference in a single byte always changes both
// lanes (each step is a bijection of the state), which is the common case of a stale or lost write.
import type { DmaEvent, EventOf, Kind } from '../events/schema.js';
import { PAGE, PAGE_MASK, type Pages, pfnOf } from '../model/memory.js';
import type { World } from '../model/world.js';

/** u32 words per row */
export const ROW = 24;
/** The stored layout (store/projections.ts): bump when a row's meaning changes. */
export const TABLE_LAYOUT = { format: 1, words: ROW } as const;
export const F = {
  op: 0,
  intent: 1,
  /** the first event the operation's projection depends on (its intent, or the pass boundary its accesses counted from) */
  from: 2,
  /** the last event that changed its projection */
  to: 3,
  used: 4,
  lastAccess: 5,
  guestRead: 6,
  intentH1: 7,
  intentH2: 8,
  // the observation: words OBS..ROW-1 are what bisect compares. A byte stream is its fingerprint
  // state: two lanes, the last partial word and the byte count.
  rd: 9,
  wr: 13,
  usedLen: 17,
  gr: 18,
  completion: 22,
  completed: 23,
} as const;
export const OBS = F.rd;

/** Rows in the order the intents appear in the trace (a trace's table, as stored). */
export interface OpTable {
  rows: Uint32Array;
  n: number;
}

const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const B1 = 0x811c9dc5;
const B2 = 0x9e3779b9;
const M1 = 0x01000193;
const M2 = 0x2127599b;

/**
 * A fingerprint of a byte stream, fed in pieces: the stream is taken four bytes at a time whatever
 * the pieces (a buffer read in one access on one path and in two on another fingerprints the same).
 */
export class Lanes {
  h1 = B1;
  h2 = B2;
  /** the bytes of the word in progress (bytes & 3 of them) */
  w = 0;
  bytes = 0;
  reset(): void {
    this.h1 = B1;
    this.h2 = B2;
    this.w = 0;
    this.bytes = 0;
  }
  load(rows: Uint32Array, at: number): void {
    this.h1 = rows[at]!;
    this.h2 = rows[at + 1]!;
    this.w = rows[at + 2]!;
    this.bytes = rows[at + 3]!;
  }
  store(rows: Uint32Array, at: number): void {
    rows[at] = this.h1;
    rows[at + 1] = this.h2;
    rows[at + 2] = this.w;
    rows[at + 3] = this.bytes;
  }
  add(data: Uint8Array, off: number, len: number): void {
    let h1 = this.h1;
    let h2 = this.h2;
    let w = this.w;
    let k = this.bytes & 3;
    let i = off;
    const end = off + len;
    while (k !== 0 && i < end) {
      w |= data[i++]! << (8 * k);
      k = (k + 1) & 3;
      if (k === 0) {
        h1 = Math.imul(h1 ^ w, M1);
        h2 = Math.imul(h2 ^ w, M2);
        w = 0;
      }
    }
    const at = data.byteOffset + i;
    if (LITTLE && end - i >= 64 && (at & 3) === 0) {
      // aligned in memory: whole words in one load each (little-endian, so the same words)
      const words = new Int32Array(data.buffer, at, (end - i) >> 2);
      for (let j = 0; j < words.length; j++) {
        const x = words[j]!;
        h1 = Math.imul(h1 ^ x, M1);
        h2 = Math.imul(h2 ^ x, M2);
      }
      i += words.length << 2;
    }
    for (; i + 4 <= end; i += 4) {
      const x = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
      h1 = Math.imul(h1 ^ x, M1);
      h2 = Math.imul(h2 ^ x, M2);
    }
    for (; i < end; k++) w |= data[i++]! << (8 * k);
    this.h1 = h1 >>> 0;
    this.h2 = h2 >>> 0;
    this.w = w >>> 0;
    this.bytes = (this.bytes + len) >>> 0;
  }
  zeros(len: number): void {
    let h1 = this.h1;
    let h2 = this.h2;
    let w = this.w;
    let k = this.bytes & 3;
    let n = len;
    while (k !== 0 && n > 0) {
      n--;
      k = (k + 1) & 3;
      if (k === 0) {
        h1 = Math.imul(h1 ^ w, M1);
        h2 = Math.imul(h2 ^ w, M2);
        w = 0;
      }
    }
    for (; n >= 4; n -= 4) {
      h1 = Math.imul(h1, M1);
      h2 = Math.imul(h2, M2);
    }
    this.h1 = h1 >>> 0;
    this.h2 = h2 >>> 0;
    this.w = w >>> 0;
    this.bytes = (this.bytes + len) >>> 0;
  }
  word(v: number): void {
    this.h1 = Math.imul(this.h1 ^ v, M1) >>> 0;
    this.h2 = Math.imul(this.h2 ^ v, M2) >>> 0;
  }
  big(v: bigint): void {
    const n = Number(v);
    if (Number.isSafeInteger(n)) {
      // the common case, without BigInt arithmetic: the same two words
      this.word(n >>> 0);
      this.word(Math.floor(n / 0x1_0000_0000) >>> 0);
    } else {
      this.word(Number(v & 0xffffffffn));
      this.word(Number((v >> 32n) & 0xffffffffn));
    }
  }
  /** guest memory [gpa, gpa+len) in place (unwritten pages read as zeros) */
  mem(pages: Pages, gpa: bigint, len: number): void {
    const off0 = Number(gpa & PAGE_MASK);
    if (off0 + len <= PAGE) {
      const page = pages.get(pfnOf(gpa));
      if (page) this.add(page, off0, len);
      else this.zeros(len);
      return;
    }
    let done = 0;
    while (done < len) {
      const a = gpa + BigInt(done);
      const off = Number(a & PAGE_MASK);
      const n = Math.min(PAGE - off, len - done);
      const page = pages.get(pfnOf(a));
      if (page) this.add(page, off, n);
      else this.zeros(n);
      done += n;
    }
  }
}

const EMPTY = new Lanes();

/** One queue's device pass in progress (projection.ts `pending`). */
interface Pending {
  rd: Lanes;
  wr: Lanes;
  lastAccess: number;
  /** the event that started collecting (a pass begin or the previous used entry) */
  since: number;
}

/**
 * Builds the table from the events of a trace, in order, each with the world after it was applied
 * (a pipeline's `event` callback). Mirrors projection.ts `project`, field for field.
 */
export class OpHasher {
  private rows = new Uint32Array(ROW * 1024);
  private n = 0;
  /**
   * by op number: its row (the latest intent with that number, as project keeps it). An array, not a
   * Map: op numbers are dense from 0, and a Map of 148k entries cost 15 ms per million events in
   * rehashing as it grew (an out-of-range number is still a valid property: only slower).
   */
  private readonly rowOfOp: (number | undefined)[] = [];
  /**
   * by intent seq: its op number, found by binary search over the rows (appended in trace order, so
   * by increasing intent seq); only a stream whose intents go back in seq gets this Map instead.
   */
  private opOfIntentMap: Map<number, number> | null = null;
  private readonly pending: (Pending | undefined)[] = [];
  private readonly completions: number[] = [];
  private readonly guest = new Lanes();
  private readonly scratch = new Lanes();
  private reaped: number | undefined;

  private followed: World | null = null;

  /** For a producer that steps its own world (the recording): `observe` then reads it. */
  follow(world: World): void {
    this.followed = world;
  }

  /** An event the followed world has just stepped (`kind`: its kind, when the caller has read it already). */
  observe(ev: DmaEvent, kind: Kind = ev.kind): void {
    this.event(ev, this.followed!, kind);
  }

  // `kind` is passed in by the recording, which reads it once per event for the recorder and this
  // table: the events are of some thirty shapes, so each read of ev.kind is a megamorphic load.
  event(e: DmaEvent, w: World, kind: Kind = e.kind): void {
    switch (kind) {
      case 'intent':
        return this.intent(e as EventOf<'intent'>);
      case 'dev.pass': {
        const ev = e as EventOf<'dev.pass'>;
        if (ev.begin) this.startPass(ev.q, ev.seq);
        return;
      }
      case 'dev.access': {
        const ev = e as EventOf<'dev.access'>;
        if (ev.area !== 'buf') return;
        const p = this.pending[ev.q];
        if (!p) return;
        if (ev.dir === 'read') p.rd.mem(w.mem, ev.gpa, ev.len);
        else p.wr.add(ev.data, 0, ev.data.length);
        p.lastAccess = ev.seq;
        return;
      }
      case 'vring.used':
        return this.used(e as EventOf<'vring.used'>, w);
      case 'cpu.read': {
        const ev = e as EventOf<'cpu.read'>;
        const op = this.reaped;
        if (op === undefined) return;
        const r = this.rowOfOp[op];
        if (r === undefined) return;
        const o = r * ROW;
        // the guest's reads of one op are one byte stream: resume its fingerprint
        const g = this.guest;
        if (this.rows[o + F.guestRead]) g.load(this.rows, o + F.gr);
        else g.reset();
        g.mem(w.mem, ev.gpa, ev.len);
        g.store(this.rows, o + F.gr);
        this.rows[o + F.guestRead] = ev.seq;
        if (ev.seq > this.rows[o + F.to]!) this.rows[o + F.to] = ev.seq;
        return;
      }
      case 'vring.getbuf':
        this.reaped = this.opOfIntent(e.cause);
        return;
      default:
        return;
    }
  }

  private startPass(q: number, seq: number): void {
    const p = this.pending[q];
    if (p) {
      p.rd.reset();
      p.wr.reset();
      p.lastAccess = 0;
      p.since = seq;
    } else this.pending[q] = { rd: new Lanes(), wr: new Lanes(), lastAccess: 0, since: seq };
  }

  private intent(ev: EventOf<'intent'>): void {
    if (this.n * ROW >= this.rows.length) {
      const grown = new Uint32Array(this.rows.length * 2);
      grown.set(this.rows);
      this.rows = grown;
    }
    if (this.n > 0 && !this.opOfIntentMap && ev.seq <= this.rows[(this.n - 1) * ROW + F.intent]!) {
      this.opOfIntentMap = new Map();
      for (let i = 0; i < this.n; i++) this.opOfIntentMap.set(this.rows[i * ROW + F.intent]!, this.rows[i * ROW + F.op]!);
    }
    const r = this.n++;
    const o = r * ROW; // a fresh row: zero (rows are only appended, and a grown array starts zeroed)
    this.rows[o + F.op] = ev.op;
    this.rows[o + F.intent] = ev.seq;
    this.rows[o + F.from] = ev.seq;
    this.rows[o + F.to] = ev.seq;
    this.rows[o + F.completion] = 0xffffffff; // -1: not completed
    const h = this.scratch;
    h.reset();
    h.word(ev.dev);
    for (let i = 0; i < ev.what.length; i++) h.word(ev.what.charCodeAt(i));
    h.big(ev.sector);
    h.word(ev.segs.length);
    for (const s of ev.segs) {
      h.big(s.gpa);
      h.word(s.len);
      h.word(s.write ? 1 : 0);
    }
    this.rows[o + F.intentH1] = h.h1;
    this.rows[o + F.intentH2] = h.h2;
    this.opOfIntentMap?.set(ev.seq, ev.op);
    this.rowOfOp[ev.op] = r;
  }

  /** The op number of the intent at seq `intent` (undefined if no intent has that seq). */
  private opOfIntent(intent: number): number | undefined {
    if (this.opOfIntentMap) return this.opOfIntentMap.get(intent);
    const rows = this.rows;
    // the intent asked about is nearly always one of the few in flight, at the end of the table
    // (a binary search over a 14 MB table misses the cache on each of its last probes)
    let hi = this.n - 1;
    for (const stop = Math.max(0, hi - 32); hi >= stop; hi--) {
      const s = rows[hi * ROW + F.intent]!;
      if (s === intent) return rows[hi * ROW + F.op];
      if (s < intent) return undefined;
    }
    let lo = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = rows[mid * ROW + F.intent]!;
      if (s === intent) return rows[mid * ROW + F.op];
      if (s < intent) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  private used(ev: EventOf<'vring.used'>, w: World): void {
    const p = this.pending[ev.q];
    const intent = w.rings[ev.q]?.extra.get(ev.id)?.op;
    const op = intent === undefined ? undefined : this.opOfIntent(intent);
    const r = op === undefined ? undefined : this.rowOfOp[op];
    if (r !== undefined) {
      const o = r * ROW;
      const n = this.completions[ev.q] ?? 0;
      this.completions[ev.q] = n + 1;
      const rows = this.rows;
      (p ? p.rd : EMPTY).store(rows, o + F.rd);
      (p ? p.wr : EMPTY).store(rows, o + F.wr);
      rows[o + F.usedLen] = ev.len;
      rows[o + F.completion] = n;
      rows[o + F.completed] = 1;
      rows[o + F.used] = ev.seq;
      rows[o + F.lastAccess] = p ? p.lastAccess : 0;
      if (p && p.since < rows[o + F.from]!) rows[o + F.from] = p.since;
      if (ev.seq > rows[o + F.to]!) rows[o + F.to] = ev.seq;
    }
    // whatever the entry, the queue collects afresh from here
    if (p) {
      p.rd.reset();
      p.wr.reset();
      p.lastAccess = 0;
      p.since = ev.seq;
    } else this.pending[ev.q] = { rd: new Lanes(), wr: new Lanes(), lastAccess: 0, since: ev.seq };
  }

  table(): OpTable {
    return { rows: this.rows.slice(0, this.n * ROW), n: this.n };
  }
}

/** The rows bisect compares: one per op number (its latest intent), by op number. */
export function byOp(t: OpTable): Uint32Array {
  const { rows, n } = t;
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) if (rows[i * ROW + F.op]! <= rows[(i - 1) * ROW + F.op]!) sorted = false;
  if (sorted) return rows.subarray(0, n * ROW);
  const latest = new Map<number, number>();
  for (let i = 0; i < n; i++) latest.set(rows[i * ROW + F.op]!, i);
  const order = [...latest.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
  const out = new Uint32Array(order.length * ROW);
  order.forEach((r, i) => out.set(rows.subarray(r * ROW, r * ROW + ROW), i * ROW));
  return out;
}

/** The first intent (in trace order) where two tables ask for different things, or -1. */
export function firstIntentDifference(a: OpTable, b: OpTable): number {
  const n = Math.min(a.n, b.n);
  for (let i = 0; i < n; i++) {
    const x = i * ROW;
    if (a.rows[x + F.op] !== b.rows[x + F.op] || a.rows[x + F.intentH1] !== b.rows[x + F.intentH1] || a.rows[x + F.intentH2] !== b.rows[x + F.intentH2]) return i;
  }
  return -1;
}

const sameObservation = (a: Uint32Array, b: Uint32Array, i: number) => {
  const x = i * ROW;
  for (let k = OBS; k < ROW; k++) if (a[x + k] !== b[x + k]) return false;
  return true;
};

/**
 * The first operation (index into the by-op rows) whose observation differs, and the probes a binary
 * search over the running hashes of both traces (analysis/bisect.ts firstDivergence) makes to find
 * it: the running hash differs at i exactly when some operation up to i differs, so one pass over the
 * rows gives the answer and the search is replayed on that predicate.
 */
export function firstRowDivergence(a: Uint32Array, b: Uint32Array): { index: number | null; probes: number } {
  const la = a.length / ROW;
  const lb = b.length / ROW;
  const n = Math.min(la, lb);
  let first = n;
  for (let i = 0; i < n; i++)
    if (!sameObservation(a, b, i)) {
      first = i;
      break;
    }
  let probes = 0;
  const differs = (i: number) => {
    probes++;
    return i >= first;
  };
  if (n === 0 || !differs(n - 1)) return { index: la === lb ? null : n, probes };
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (differs(mid)) hi = mid;
    else lo = mid + 1;
  }
  return { index: lo, probes };
}

/** One row as an object (for the explanation and tests). */
export function rowAt(rows: Uint32Array, i: number) {
  const x = i * ROW;
  const g = (k: number) => rows[x + k]!;
  return {
    op: g(F.op),
    intent: g(F.intent),
    from: g(F.from),
    to: g(F.to),
    seqs: { intent: g(F.intent), used: g(F.used), lastAccess: g(F.lastAccess), guestRead: g(F.guestRead) },
    deviceRead: g(F.completed) ? stream(rows, x + F.rd) : '',
    deviceReadBytes: g(F.rd + 3),
    deviceWrote: g(F.completed) ? stream(rows, x + F.wr) : '',
    usedLen: g(F.usedLen),
    guestRead: g(F.guestRead) ? stream(rows, x + F.gr) : '',
    completion: g(F.completion) | 0,
    completed: g(F.completed) === 1,
  };
}
export type OpRow = ReturnType<typeof rowAt>;

const stream = (rows: Uint32Array, at: number) => `${rows[at]}:${rows[at + 1]}:${rows[at + 2]}:${rows[at + 3]}`;
