// The vhost device IOTLB as drivers/vhost/iotlb.c and vhost.c implement it:
// - entries are [start, last] → uaddr ranges kept in insertion order (the RETIRE FIFO);
// - add_range never merges or replaces: overlapping entries coexist and lookup
//   (vhost_iotlb_itree_first) returns the overlapping entry with the lowest start;
// - del_range removes every entry that overlaps the range, whole (entries are never split);
// - at max_iotlb_entries (2048) the oldest inserted entry is evicted before an insert;
// - a MISS parks the vq on the pending list; an UPDATE wakes each pending miss whose iova it covers
//   (vhost_iotlb_notify_vq: iova <= miss && iova + size - 1 >= miss).
import { arr, big, derived, exactNum, type Infer, nullable, num, obj, objectList, str } from './codec.js';
import { toNum } from './memory.js';
import type { PermName } from './types.js';
import { PERM_BITS } from './types.js';

export const MAX_IOTLB_ENTRIES = 2048;

/**
 * The vq of a miss read from a real trace: QEMU's vhost_iotlb_miss names the vhost_dev, not the queue
 * (the back-end's VHOST_IOTLB_MISS carries no vq either), so an imported miss parks and wakes no ring.
 */
export const QUEUE_UNKNOWN = 0xff;

export const IOTLB_ENTRY = obj({ __proto__: null,
  start: big,
  last: big,
  uaddr: big,
  perm: str<PermName>(),
  /** seq of the UPDATE that inserted it */
  seq: num,
  // start, last and uaddr as doubles (exactNum: exact in [0, 2^53), else ±Infinity), derived, never in
  // the plain form: every device access looks its address up here twice (translate_desc in the
  // simulation, the check of the recorded access), and comparing doubles is one instruction where a
  // bigint comparison is a builtin call
  startNum: derived('start', exactNum),
  lastNum: derived('last', exactNum),
  uaddrNum: derived('uaddr', exactNum),
});
export type IotlbEntry = Infer<typeof IOTLB_ENTRY>;

/** A new entry (what vhost_iotlb_add_range_ctx allocates), with its derived fields. */
export function iotlbEntry(start: bigint, last: bigint, uaddr: bigint, perm: PermName, seq: number): IotlbEntry {
  return { start, last, uaddr, perm, seq, startNum: exactNum(start), lastNum: exactNum(last), uaddrNum: exactNum(uaddr) };
}

export const PENDING_MISS = obj({ __proto__: null, q: num, iova: big, perm: str<PermName>(), seq: num });
export type PendingMiss = Infer<typeof PENDING_MISS>;

/** An entry that left the IOTLB, and who removed it, so a finding can name it ("deleted by INVALIDATE #152"). */
export const RETIRED_ENTRY = obj({ __proto__: null,
  start: big,
  last: big,
  uaddr: big,
  perm: str<PermName>(),
  /** seq of the UPDATE that inserted it */
  seq: num,
  /** seq of the event that removed it: the INVALIDATE, the UPDATE whose insert evicted it, or the evict fault */
  by: num,
  how: str<'invalidate' | 'evict' | 'fault'>(),
});
export type RetiredEntry = Infer<typeof RETIRED_ENTRY>;

/** Retired entries remembered per device (the most recent); older ones are only "not in the IOTLB". */
export const RETIRED_KEPT = 64;

export const DEVICE_IOTLB = obj({ __proto__: null,
  entries: arr(IOTLB_ENTRY),
  pending: arr(PENDING_MISS),
  /**
   * the last RETIRED_KEPT entries removed, oldest first: model memory for findings, not vhost state
   * (null until one is: the plain form, and so the state hash, of a world without any is unchanged)
   */
  retired: nullable(arr(RETIRED_ENTRY), true),
});
export type DeviceIotlb = Infer<typeof DEVICE_IOTLB>;

/**
 * vhost_iotlb_itree_first(addr, addr): the entry covering addr with the lowest start. Below 2^53 in
 * doubles: an entry's startNum and lastNum compare with such an address exactly as its start and
 * last do (±Infinity, for a value outside [0, 2^53), orders as the value does); two covering
 * entries both start at or below the address, so their startNums order them exactly.
 */
export function lookup(tlb: DeviceIotlb, addr: bigint): IotlbEntry | null {
  return lookupAt(tlb, addr, toNum(addr));
}

/** lookup, given a = toNum(addr) (a caller that has converted addr already) */
export function lookupAt(tlb: DeviceIotlb, addr: bigint, a: number): IotlbEntry | null {
  // a is exact below 2^53; at or above it, rounded to a double that is too
  if (!(a < EXACT)) return lookupBig(tlb, addr);
  const es = tlb.entries;
  let best: IotlbEntry | null = null;
  for (let i = 0; i < es.length; i++) {
    const e = es[i]!;
    const s = e.startNum;
    // an entry built without its derived fields, or (never for a u64) a negative start, whose
    // -Infinity would not order two of them
    if (s === undefined || s === -Infinity) return lookupBig(tlb, addr);
    if (s <= a && a <= e.lastNum && (best === null || s < best.startNum)) best = e;
  }
  return best;
}

/** lookup in bigints: for any address and entry */
export function lookupBig(tlb: DeviceIotlb, addr: bigint): IotlbEntry | null {
  let best: IotlbEntry | null = null;
  for (const e of tlb.entries) if (e.start <= addr && addr <= e.last && (!best || e.start < best.start)) best = e;
  return best;
}

const EXACT = 2 ** 53;

function retire(tlb: DeviceIotlb, e: IotlbEntry, by: number, how: RetiredEntry['how']): void {
  const gone: RetiredEntry = { start: e.start, last: e.last, uaddr: e.uaddr, perm: e.perm, seq: e.seq, by, how };
  // null until the first retirement (and in checkpoints written before this field)
  const r = tlb.retired;
  if (!r) tlb.retired = objectList(gone);
  else if (r.length < RETIRED_KEPT) r.push(gone);
  // full: the same list without its oldest, as a new array. shift() or moving the entries in place
  // costs ~250-300 ns on a list that lives in the old generation (each store of a young entry into
  // it is a write-barrier slow path); a copy is young, so its stores are not. The copy has the
  // list's length (slice(1) then push would outgrow a 63-element copy: a second, 110-element
  // backing store, ~1.4 KB of garbage per INVALIDATE with the first). The contents, and so the plain
  // form, are the same.
  else {
    const next = r.slice();
    const n = next.length - 1;
    for (let i = 0; i < n; i++) next[i] = next[i + 1]!;
    next[n] = gone;
    tlb.retired = next;
  }
}

/** Inserts; returns the entry evicted to make room, if any (vhost_iotlb_add_range_ctx with VHOST_IOTLB_FLAG_RETIRE). */
export function addRange(tlb: DeviceIotlb, e: IotlbEntry, max = MAX_IOTLB_ENTRIES): IotlbEntry | null {
  const evicted = tlb.entries.length >= max ? tlb.entries.shift()! : null;
  if (evicted) retire(tlb, evicted, e.seq, 'evict');
  tlb.entries.push(e);
  return evicted;
}

/** vhost_iotlb_del_range: every overlapping entry, whole; `by` is the seq of the INVALIDATE. */
export function delRange(tlb: DeviceIotlb, start: bigint, last: bigint, by = 0): IotlbEntry[] {
  // most invalidations of a strict unmap hit one entry or none: look before building the new list
  let any = false;
  for (const e of tlb.entries) if (e.start <= last && start <= e.last) (any = true);
  if (!any) return [];
  // in place (the working world owns its lists: clones copy them), in order
  const gone: IotlbEntry[] = [];
  const es = tlb.entries;
  let keep = 0;
  for (let i = 0; i < es.length; i++) {
    const e = es[i]!;
    if (e.start <= last && start <= e.last) gone.push(e);
    else es[keep++] = e;
  }
  while (es.length > keep) es.pop();
  for (const e of gone) retire(tlb, e, by, 'invalidate');
  return gone;
}

/** The evict-iotlb fault: the oldest entry goes, as at the 2048 cap (B6). */
export function evictOldest(tlb: DeviceIotlb, by: number): IotlbEntry | null {
  const e = tlb.entries.shift() ?? null;
  if (e) retire(tlb, e, by, 'fault');
  return e;
}

/** The most recent retirement of the entry an UPDATE (seq) filled, if remembered. */
export function retiredEntry(tlb: DeviceIotlb, seq: number): RetiredEntry | null {
  const r = tlb.retired ?? [];
  for (let i = r.length - 1; i >= 0; i--) if (r[i]!.seq === seq) return r[i]!;
  return null;
}

/** Pending misses covered by an UPDATE of [iova, iova+size-1] are removed and returned (their vqs wake). */
export function wakeCovered(tlb: DeviceIotlb, iova: bigint, size: bigint): PendingMiss[] {
  if (tlb.pending.length === 0) return [];
  const last = iova + size - 1n;
  const woken: PendingMiss[] = [];
  const ps = tlb.pending;
  let keep = 0;
  for (let i = 0; i < ps.length; i++) {
    const m = ps[i]!;
    if (iova <= m.iova && last >= m.iova) woken.push(m);
    else ps[keep++] = m;
  }
  while (ps.length > keep) ps.pop();
  return woken;
}

export type TranslateResult =
  | { ok: true; entry: IotlbEntry; hva: bigint; len: number }
  | { ok: false; err: 'EAGAIN' | 'EPERM'; addr: bigint };

/**
 * translate_desc for one contiguous piece: the entry covering addr, and how many of len bytes it
 * covers. A hole is EAGAIN (→ MISS for addr); a permission mismatch is EPERM (no MISS).
 */
export function translate(tlb: DeviceIotlb, addr: bigint, len: number, access: 'RO' | 'WO'): TranslateResult {
  const e = lookup(tlb, addr);
  if (!e) return { ok: false, err: 'EAGAIN', addr };
  if (!(PERM_BITS[e.perm] & PERM_BITS[access])) return { ok: false, err: 'EPERM', addr };
  const avail = e.last - addr + 1n;
  const n = avail < BigInt(len) ? Number(avail) : len;
  return { ok: true, entry: e, hva: e.uaddr + (addr - e.start), len: n };
}
