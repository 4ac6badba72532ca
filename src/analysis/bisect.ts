// Bisect: where do two DMA paths stop agreeing? Both traces must carry the same guest intents.
// Each guest operation gets a projection hash (what guest and device observed, see projection.ts),
// chained into a running hash; the first operation whose running hash differs is found by binary
// search. Then the operation is explained: which bytes differ (offset, expected, got), the device
// access that produced them, and its causal chain.
import { createHash } from 'node:crypto';
import { decodeAt, fieldOffset, sizeAt } from '../events/binary.js';
import { type DmaEvent, type EventOf, type Kind, KINDS, type Seg } from '../events/schema.js';
import type { RecordedChunk } from '../engine/replay.js';
import type { World } from '../model/world.js';
import type { OpRow } from './op-table.js';
import { emptyProjection, type OpProjection, project, projectWindow } from './projection.js';

export interface OpHash {
  op: number;
  hash: string;
  /** running hash of ops 0..op */
  cum: string;
}

export function opHashes(ops: Map<number, OpProjection>): OpHash[] {
  const out: OpHash[] = [];
  let cum = '';
  for (const o of [...ops.values()].sort((a, b) => a.op - b.op)) {
    const hash = createHash('sha256')
      .update(JSON.stringify([o.what, o.deviceRead, o.deviceReadBytes, o.deviceWrote, o.usedLen, o.guestRead, o.completion, o.completed]))
      .digest('hex')
      .slice(0, 32);
    cum = createHash('sha256').update(cum).update(hash).digest('hex').slice(0, 32);
    out.push({ op: o.op, hash, cum });
  }
  return out;
}

const INTENT = KINDS.intent.code;

/** The guest intents of a trace (op, device, what, sector, segments), for the comparability check. */
export function intentsOf(chunks: Iterable<RecordedChunk>): string[] {
  const out: string[] = [];
  for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      if (c.data[off + 4] === INTENT) {
        const ev = decodeAt(c.data, off, c.seq0 + i) as EventOf<'intent'>;
        out.push(`${ev.op}:${ev.dev}:${ev.what}:${ev.sector}:${ev.segs.map((s: Seg) => `${s.gpa}+${s.len}${s.write ? 'w' : ''}`).join(',')}`);
      }
      off += sizeAt(c.data, off);
    }
  }
  return out;
}

/** First index whose running hash differs, by binary search; probes counted. */
export function firstDivergence(a: OpHash[], b: OpHash[]): { index: number | null; probes: number } {
  const n = Math.min(a.length, b.length);
  let probes = 0;
  const differs = (i: number) => {
    probes++;
    return a[i]!.cum !== b[i]!.cum;
  };
  if (n === 0 || !differs(n - 1)) return { index: a.length === b.length ? null : n, probes };
  let lo = 0;
  let hi = n - 1; // differs(hi) is true
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (differs(mid)) hi = mid;
    else lo = mid + 1;
  }
  return { index: lo, probes };
}

export interface ByteDiff {
  offset: number;
  expected: string;
  got: string;
}

export interface Divergence {
  op: number;
  /** which observation differs first */
  part: 'deviceRead' | 'deviceWrote' | 'usedLen' | 'guestRead' | 'completion';
  bytes: ByteDiff[];
  a: { seq: number };
  b: { seq: number };
  /** the device access in B that produced the wrong bytes */
  access: number | null;
  chain: DmaEvent[];
}

/** An operation one run never issued (it stopped early): nothing observed. */
const missing = (op: number): OpProjection => ({ ...emptyProjection(op), bytes: { deviceRead: [], deviceWrote: [], guestRead: [] } });

const hexByte = (b: number | undefined) => (b === undefined ? '--' : b.toString(16).padStart(2, '0'));

function diffBytes(x: Uint8Array[], y: Uint8Array[], max = 16): ByteDiff[] {
  const a = Buffer.concat(x);
  const b = Buffer.concat(y);
  const out: ByteDiff[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < max; i++) if (a[i] !== b[i]) out.push({ offset: i, expected: hexByte(a[i]), got: hexByte(b[i]) });
  return out;
}

/** The first differing bytes of the observation `part` (none for the used length and the completion order). */
function differingBytes(pa: OpProjection, pb: OpProjection, part: Divergence['part']): ByteDiff[] {
  if (part !== 'deviceRead' && part !== 'deviceWrote' && part !== 'guestRead') return [];
  return diffBytes(pa.bytes?.[part] ?? [], pb.bytes?.[part] ?? []);
}

/**
 * The device access in B to blame for a divergence: one a checker judged, else the read covering the
 * first differing byte of what the device read, else the first access in the differing direction.
 */
function blamedAccess(pb: OpProjection, part: Divergence['part'], bytes: ByteDiff[], judged: (seq: number) => boolean): number | null {
  const hit = pb.accesses.find((x) => judged(x.seq));
  if (hit) return hit.seq;
  if (bytes.length && part === 'deviceRead') {
    let at = 0;
    for (const x of pb.accesses) {
      if (x.dir !== 'read') continue;
      if (bytes[0]!.offset < at + x.len) return x.seq;
      at += x.len;
    }
  }
  return pb.accesses.find((x) => x.dir === (part === 'deviceRead' ? 'read' : 'write'))?.seq ?? pb.accesses[0]?.seq ?? null;
}

/** Explains operation `op`: the differing bytes, the access behind them and its causal chain. */
export function explain(aChunks: () => Iterable<RecordedChunk>, bChunks: () => Iterable<RecordedChunk>, op: number): Divergence {
  const pa = project(aChunks(), op).get(op) ?? missing(op);
  const pb = project(bChunks(), op).get(op) ?? missing(op);
  const parts = ['deviceRead', 'deviceWrote', 'usedLen', 'guestRead', 'completion'] as const;
  const part = parts.find((p) => (p === 'usedLen' || p === 'completion' ? pa[p] !== pb[p] : pa[p] !== pb[p])) ?? 'completion';
  const bytes = differingBytes(pa, pb, part);
  // only what a chain can name: translations and mapping changes, findings, and this op's accesses
  const wanted = new Set(pb.accesses.map((x) => x.seq));
  const kinds = new Set<number>(['iotlb.update', 'iotlb.invalidate', 'iommu.map', 'iommu.unmap', 'iommu.inv', 'iommu.notify', 'finding'].map((k) => KINDS[k as Kind].code));
  const bEvents = eventsOf(bChunks(), (code, seq) => kinds.has(code) || wanted.has(seq));
  const bySeq = new Map(bEvents.map((e) => [e.seq, e]));
  // the access to blame: one a checker judged, else the one covering the first differing byte
  const findingOf = (seq: number) => bEvents.find((e) => e.kind === 'finding' && e.cause === seq) as EventOf<'finding'> | undefined;
  const access = blamedAccess(pb, part, bytes, (seq) => findingOf(seq) !== undefined);
  const chain = access === null ? [] : chainOf(bEvents, bySeq, access, findingOf(access));
  const seqOf = (p: OpProjection) => (part === 'guestRead' ? p.seqs.guestRead : part === 'usedLen' || part === 'completion' ? p.seqs.used : p.seqs.lastAccess) || p.seqs.intent;
  return { op, part, bytes, a: { seq: seqOf(pa) }, b: { seq: seqOf(pb) }, access, chain };
}

/** What the windowed explanation reads of one trace (app/bisect.ts gives it from the store). */
export interface TraceWindow {
  /** the operation's row in this trace's table, or null: this trace never issued it */
  row: OpRow | null;
  /** the world after the last checkpoint at or before seq (null: before the first event) */
  checkpointAtOrBefore(seq: number): { world: World; seq: number } | null;
  /** the recorded chunks holding seqs [from, to] */
  chunks(from: number, to: number): Iterable<RecordedChunk>;
}

const CHAIN_KINDS = new Set<string>(['iotlb.update', 'iotlb.invalidate', 'iommu.map', 'iommu.unmap', 'iommu.inv', 'iommu.notify', 'finding']);
const CODE = (k: Kind) => KINDS[k].code;
/** per kind code: byte offsets of iova and size in the mapping changes a chain can name */
const MAPPING_FIELDS: ([number, number] | undefined)[] = [];
for (const k of ['iommu.map', 'iommu.unmap', 'iommu.inv'] as const) MAPPING_FIELDS[CODE(k)] = [fieldOffset(k, 'iova')!, fieldOffset(k, 'size')!];

/**
 * Explains operation `op` as `explain` does, but folding only the operation: each trace from the
 * checkpoint before the operation's first relevant event to its last (op-table.ts `from`/`to`). The
 * causal chain then reads only what it names: the events it cites (point reads), the mapping changes
 * between the entry's fill and the access (a range), and the delivery of the invalidations it cites
 * (forward from the request until the world no longer owes them).
 *
 * Equal to `explain` for every trace whose findings follow the event they judge (the pipeline inserts
 * them so) and whose invalidation deliveries answer an owed invalidation (the model's rules).
 */
export function explainWindowed(ta: TraceWindow, tb: TraceWindow, op: number, rowA: OpRow | null, rowB: OpRow | null): Divergence {
  const wa = windowOf(ta, op);
  const wb = windowOf(tb, op);
  const pa = wa?.projection ?? missing(op);
  const pb = wb?.projection ?? missing(op);
  // which observation differs: from the rows (the window knows neither completion order nor what came before)
  const ra = rowA ?? { ...missing(op), completion: -1 };
  const rb = rowB ?? { ...missing(op), completion: -1 };
  const parts = ['deviceRead', 'deviceWrote', 'usedLen', 'guestRead', 'completion'] as const;
  const part = parts.find((p) => ra[p] !== rb[p]) ?? 'completion';
  const bytes = differingBytes(pa, pb, part);
  const wanted = new Set(pb.accesses.map((x) => x.seq));
  const seen = wb?.events ?? new Map<number, DmaEvent>();
  const keepOf = (e: DmaEvent) => CHAIN_KINDS.has(e.kind) || wanted.has(e.seq);
  const findingOf = (seq: number) => wb?.findings.find((e) => e.cause === seq);
  const access = blamedAccess(pb, part, bytes, (seq) => findingOf(seq) !== undefined);
  let chain: DmaEvent[] = [];
  if (access !== null && wb) {
    const get = (s: number): DmaEvent | undefined => {
      const e = seen.get(s) ?? pointRead(tb, s);
      if (e) seen.set(s, e);
      return e && keepOf(e) ? e : undefined;
    };
    chain = chainWindowed(tb, get, (e) => seen.set(e.seq, e), access, wb.to, wb.world, findingOf(access));
  }
  const seqOf = (p: OpProjection) => (part === 'guestRead' ? p.seqs.guestRead : part === 'usedLen' || part === 'completion' ? p.seqs.used : p.seqs.lastAccess) || p.seqs.intent;
  return { op, part, bytes, a: { seq: seqOf(pa) }, b: { seq: seqOf(pb) }, access, chain };
}

interface Window {
  projection: OpProjection | undefined;
  world: World;
  to: number;
  /** the window's events a chain can name (translations, mapping changes, findings) and its device accesses */
  events: Map<number, DmaEvent>;
  findings: EventOf<'finding'>[];
}

function windowOf(t: TraceWindow, op: number): Window | null {
  const row = t.row;
  if (!row) return null;
  // the checkpoint must precede `from` itself: the intent (or pass boundary) is stepped in the window
  const start = row.from > 1 ? t.checkpointAtOrBefore(row.from - 1) : null;
  const events = new Map<number, DmaEvent>();
  const findings: EventOf<'finding'>[] = [];
  const r = projectWindow(start, t.chunks((start?.seq ?? 0) + 1, row.to), op, row.to, (ev) => {
    if (ev.kind === 'finding') findings.push(ev);
    if (ev.kind === 'dev.access' || CHAIN_KINDS.has(ev.kind)) events.set(ev.seq, ev);
  });
  return { projection: r.projection, world: r.world, to: row.to, events, findings };
}

function pointRead(t: TraceWindow, seq: number): DmaEvent | undefined {
  if (!(seq > 0)) return undefined;
  for (const c of t.chunks(seq, seq)) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      if (c.seq0 + i === seq) return decodeAt(c.data, off, seq);
      off += sizeAt(c.data, off);
    }
  }
  return undefined;
}

/** chainOf, reading only what the chain names (see explainWindowed). */
function chainWindowed(t: TraceWindow, get: (s: number) => DmaEvent | undefined, remember: (e: DmaEvent) => void, accessSeq: number, to: number, worldAtTo: World, finding?: EventOf<'finding'>): DmaEvent[] {
  const access = get(accessSeq) as EventOf<'dev.access'>;
  const seqs = new Set<number>(finding ? finding.chain : [access.entry, accessSeq].filter((s) => s > 0));
  if (!finding && access.entry) {
    const page = access.dma & ~0xfffn;
    // the range between the fill and the access can be long: each candidate's iova and size are read in place
    scan(t, access.entry + 1, accessSeq - 1, (code, _cause, seq, data, off) => {
      const at = MAPPING_FIELDS[code];
      if (!at) return true;
      const view = new DataView(data.buffer, data.byteOffset + off);
      const iova = view.getBigUint64(at[0], true);
      const size = view.getBigUint64(at[1], true);
      if (iova <= page && page < iova + (size || 1n)) {
        remember(decodeAt(data, off, seq));
        seqs.add(seq);
      }
      return true;
    });
  }
  const requests = [...seqs].filter((s) => get(s)?.kind === 'iommu.inv');
  if (requests.length) {
    // deliveries come after their request; past `to`, only while the world still owes one
    const owed = new Map<number, number>(requests.map((r) => [r, 0]));
    for (const i of worldAtTo.vmm.invals) if (owed.has(i.req)) owed.set(i.req, owed.get(i.req)! + 1);
    let left = [...owed.values()].reduce((x, y) => x + y, 0);
    const INV = CODE('iotlb.invalidate');
    const FAULT = CODE('fault');
    scan(t, Math.min(...requests) + 1, Infinity, (code, cause, seq, data, off) => {
      if (seq > to && left === 0) return false;
      if ((code !== INV && code !== FAULT) || !owed.has(cause)) return true;
      if (code === INV) seqs.add(seq);
      const settles = code === INV || (decodeAt(data, off, seq) as EventOf<'fault'>).what === 'drop-invalidate';
      if (settles && seq > to && owed.get(cause)! > 0) {
        owed.set(cause, owed.get(cause)! - 1);
        left--;
      }
      return true;
    });
  }
  if (finding) seqs.add(finding.seq);
  return [...seqs]
    .sort((x, y) => x - y)
    .map((s) => get(s))
    .filter((e): e is DmaEvent => !!e);
}

/** Walks events [from, to] by their length prefixes, reading only kind and cause; stops when `each` says false. */
function scan(t: TraceWindow, from: number, to: number, each: (code: number, cause: number, seq: number, data: Uint8Array, off: number) => boolean): void {
  if (from > to) return;
  for (const c of t.chunks(from, to)) {
    let off = 0;
    const data = c.data;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      if (seq > to) return;
      if (seq >= from) {
        const cause = (data[off + 6]! | (data[off + 7]! << 8) | (data[off + 8]! << 16) | (data[off + 9]! << 24)) >>> 0;
        if (!each(data[off + 4]!, cause, seq, data, off)) return;
      }
      off += sizeAt(data, off);
    }
  }
}

function eventsOf(chunks: Iterable<RecordedChunk>, keep: (code: number, seq: number) => boolean): DmaEvent[] {
  const out: DmaEvent[] = [];
  for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      if (keep(c.data[off + 4]!, c.seq0 + i)) out.push(decodeAt(c.data, off, c.seq0 + i));
      off += sizeAt(c.data, off);
    }
  }
  return out;
}

/**
 * Why an access resolved where it did: the UPDATE that filled the entry it used, the guest's unmap
 * and remap of that IOVA page since, the invalidation requested for it and when (if ever) it was
 * delivered. A checker's finding already names most of these; the delivery comes from later events.
 */
function chainOf(events: DmaEvent[], bySeq: Map<number, DmaEvent>, accessSeq: number, finding?: EventOf<'finding'>): DmaEvent[] {
  const access = bySeq.get(accessSeq) as EventOf<'dev.access'>;
  const seqs = new Set<number>(finding ? finding.chain : [access.entry, accessSeq].filter((s) => s > 0));
  if (!finding && access.entry) {
    const page = access.dma & ~0xfffn;
    for (const e of events) {
      if (e.seq <= access.entry || e.seq >= accessSeq) continue;
      if ((e.kind === 'iommu.map' || e.kind === 'iommu.unmap' || e.kind === 'iommu.inv') && e.iova <= page && page < e.iova + (e.size || 1n)) seqs.add(e.seq);
    }
  }
  const requests = [...seqs].map((s) => bySeq.get(s)).filter((e) => e?.kind === 'iommu.inv').map((e) => e!.seq);
  for (const e of events) if (e.kind === 'iotlb.invalidate' && requests.includes(e.cause)) seqs.add(e.seq);
  if (finding) seqs.add(finding.seq);
  return [...seqs].sort((x, y) => x - y).map((s) => bySeq.get(s)!).filter(Boolean);
}
