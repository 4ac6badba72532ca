// Bisect: where do two DMA paths stop agreeing? Both traces must carry the same guest intents.
// Each guest operation gets a projection hash (what guest and device observed, see projection.ts),
// chained into a running hash; the first operation whose running hash differs is found by binary
// search. Then the operation is explained: which bytes differ (offset, expected, got), the device
// access that produced them, and its causal chain.
import { createHash } from 'node:crypto';
import { decodeAt, sizeAt } from '../events/binary.js';
import { type DmaEvent, type EventOf, type Kind, KINDS, type Seg } from '../events/schema.js';
import type { RecordedChunk } from '../engine/replay.js';
import { emptyProjection, type OpProjection, project } from './projection.js';

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

/** Explains operation `op`: the differing bytes, the access behind them and its causal chain. */
export function explain(aChunks: () => Iterable<RecordedChunk>, bChunks: () => Iterable<RecordedChunk>, op: number): Divergence {
  const pa = project(aChunks(), op).get(op) ?? missing(op);
  const pb = project(bChunks(), op).get(op) ?? missing(op);
  const parts = ['deviceRead', 'deviceWrote', 'usedLen', 'guestRead', 'completion'] as const;
  const part = parts.find((p) => (p === 'usedLen' || p === 'completion' ? pa[p] !== pb[p] : pa[p] !== pb[p])) ?? 'completion';
  const bytes =
    part === 'deviceRead'
      ? diffBytes(pa.bytes?.deviceRead ?? [], pb.bytes?.deviceRead ?? [])
      : part === 'deviceWrote'
        ? diffBytes(pa.bytes?.deviceWrote ?? [], pb.bytes?.deviceWrote ?? [])
        : part === 'guestRead'
          ? diffBytes(pa.bytes?.guestRead ?? [], pb.bytes?.guestRead ?? [])
          : [];
  // only what a chain can name: translations and mapping changes, findings, and this op's accesses
  const wanted = new Set(pb.accesses.map((x) => x.seq));
  const kinds = new Set<number>(['iotlb.update', 'iotlb.invalidate', 'iommu.map', 'iommu.unmap', 'iommu.inv', 'iommu.notify', 'finding'].map((k) => KINDS[k as Kind].code));
  const bEvents = eventsOf(bChunks(), (code, seq) => kinds.has(code) || wanted.has(seq));
  const bySeq = new Map(bEvents.map((e) => [e.seq, e]));
  // the access to blame: one a checker judged, else the one covering the first differing byte
  const findingOf = (seq: number) => bEvents.find((e) => e.kind === 'finding' && e.cause === seq) as EventOf<'finding'> | undefined;
  let access = pb.accesses.find((x) => findingOf(x.seq))?.seq ?? null;
  if (access === null && bytes.length && part === 'deviceRead') {
    let at = 0;
    for (const x of pb.accesses.filter((y) => y.dir === 'read')) {
      if (bytes[0]!.offset < at + x.len) {
        access = x.seq;
        break;
      }
      at += x.len;
    }
  }
  if (access === null) access = pb.accesses.find((x) => x.dir === (part === 'deviceRead' ? 'read' : 'write'))?.seq ?? pb.accesses[0]?.seq ?? null;
  const chain = access === null ? [] : chainOf(bEvents, bySeq, access, findingOf(access));
  const seqOf = (p: OpProjection) => (part === 'guestRead' ? p.seqs.guestRead : part === 'usedLen' || part === 'completion' ? p.seqs.used : p.seqs.lastAccess) || p.seqs.intent;
  return { op, part, bytes, a: { seq: seqOf(pa) }, b: { seq: seqOf(pb) }, access, chain };
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
