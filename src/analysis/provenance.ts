// Provenance: for each byte of a guest-physical range at some event, which event last changed it
// and through which translation (a CPU store, a device access through an IOTLB entry or the memory
// table, a swiotlb bounce, the ring bookkeeping). The fold runs without page ownership, so every
// write replaces its page (copy-on-write); comparing the page before and after an event shows
// exactly which bytes that event changed. (A byte rewritten with the value it already had keeps its
// earlier writer.)
import { decodeAt, sizeAt } from '../events/binary.js';
import type { DmaEvent, EventOf } from '../events/schema.js';
import { mutate } from '../engine/apply.js';
import type { RecordedChunk } from '../engine/replay.js';
import { PAGE, PAGE_SHIFT } from '../model/memory.js';
import { emptyWorld } from '../model/world.js';

export interface ByteRun {
  /** offsets within the queried range, [from, to) */
  from: number;
  to: number;
  gpa: bigint;
  writer: DmaEvent | null;
  /** for a device write: how the dma address was translated */
  translation?: { via: string; dma: bigint; entry: number; entryEvent: DmaEvent | null };
  /** a finding a checker made about the writer */
  finding?: EventOf<'finding'>;
}

/** the kinds a device access's `entry` names: the translation it went through */
const ENTRY_KINDS: ReadonlySet<string> = new Set(['iotlb.update', 'iommu.map', 'iommu.notify']);

/**
 * Memory stays bounded by the range, not the trace: only the events that are (or just were) the
 * last writer of some byte are kept, with the findings about them; the translation entry of each
 * final writer is read back at the end through `eventAt` (at most one per byte run).
 */
export function provenance(
  chunks: Iterable<RecordedChunk>,
  at: number,
  gpa: bigint,
  len: number,
  eventAt: (seq: number) => DmaEvent | null,
  /** kept events allowed past twice the current writers before a prune (tests force 1) */
  gap = Math.max(64, len >> 4),
): ByteRun[] {
  const world = emptyWorld();
  const writer = new Int32Array(len); // seq of the last event that changed each byte, 0 = never written
  const firstPfn = gpa >> PAGE_SHIFT;
  const lastPfn = (gpa + BigInt(len) - 1n) >> PAGE_SHIFT;
  const pfns: bigint[] = [];
  for (let p = firstPfn; p <= lastPfn; p++) pfns.push(p);
  // the events that became a writer, and the findings about them (at most len distinct seqs are
  // current writers at any time)
  const keep = new Map<number, DmaEvent>();
  const findings = new Map<number, EventOf<'finding'>>();
  // pruned when it outgrows twice the writers left by the last prune plus a gap: a prune costs about
  // len, so the default gap (len/16, at least 64) keeps it to ~16 steps per kept event, and the kept
  // set to twice the current writers plus the gap (a buffer write is one writer of many bytes)
  let limit = gap;
  const prune = () => {
    const live = new Set(writer);
    for (const seq of keep.keys()) if (!live.has(seq)) (keep.delete(seq), findings.delete(seq));
  };
  outer: for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      if (seq > at) break outer;
      const ev = decodeAt(c.data, off, seq);
      off += sizeAt(c.data, off);
      if (ev.kind === 'finding' && keep.has(ev.cause)) findings.set(ev.cause, ev);
      const before = pfns.map((p) => world.mem.get(Number(p)));
      mutate(world, ev);
      pfns.forEach((p, k) => {
        const now = world.mem.get(Number(p));
        if (now === before[k] || !now) return;
        const old = before[k];
        const pageBase = p << PAGE_SHIFT;
        const lo = pageBase > gpa ? Number(pageBase - gpa) : 0;
        const hi = Math.min(len, Number(pageBase + BigInt(PAGE) - gpa));
        for (let j = lo; j < hi; j++) {
          const o = Number(gpa + BigInt(j) - pageBase);
          if ((old ? old[o] : 0) !== now[o]) writer[j] = seq;
        }
        keep.set(seq, ev);
      });
      if (keep.size > limit) {
        prune();
        limit = 2 * keep.size + gap;
      }
    }
  }
  const runs: ByteRun[] = [];
  for (let j = 0; j < len; ) {
    let k = j + 1;
    while (k < len && writer[k] === writer[j]) k++;
    const ev = writer[j] ? (keep.get(writer[j]!) ?? null) : null;
    const run: ByteRun = { from: j, to: k, gpa: gpa + BigInt(j), writer: ev };
    if (ev?.kind === 'dev.access') {
      const entry = ev.entry > 0 ? eventAt(ev.entry) : null;
      run.translation = { via: ev.via, dma: ev.dma, entry: ev.entry, entryEvent: entry && ENTRY_KINDS.has(entry.kind) ? entry : null };
    }
    const f = ev && findings.get(ev.seq);
    if (f) run.finding = f;
    runs.push(run);
    j = k;
  }
  return runs;
}
