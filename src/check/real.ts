// Checks on imported real traces (a guest ftrace log and a QEMU log of one run, merged by
// src/import/merge.ts). They run in fold like every checker, but only on imported traces (no
// trace.config event: a simulated trace is judged by the other checkers).
//
// What the traces give, and what they do not:
// - The guest's iommu:map/unmap lines do not name the device, and Linux allocates IOVAs per domain
//   top-down from the same limit, so two devices often map the same IOVA to different GPAs at once.
//   The guest mappings are therefore kept per IOVA page across devices; an unmap that could have
//   removed either of two different live mappings leaves both as candidates (never a guess that could
//   make a later translation look wrong).
// - The two clocks are only synchronised at the shared phase markers. Inside a phase the cross-side
//   order is an estimate, so a host event of phase k is judged against every guest mapping that may
//   have been live at some instant of guest phases k and k+1 (host phase k happens after the guest's
//   marker k, and before the guest's marker k+2). The judgment waits until phase k+1 is complete (at
//   the marker pair k+2, or the end-of-logs marker the importer adds), so the merge order never
//   decides a finding.
// - The host log is one file written in order; a check that only compares host events with each
//   other (reuse-without-invalidation) uses that order exactly.
//
// Classes:
// - translate-after-unmap: the vIOMMU translated (or served from its IOTLB) an IOVA the guest had
//   unmapped, and not mapped again, before that phase;
// - translate-gpa-mismatch: it translated an IOVA to a GPA the guest did not map there at any time the
//   translation could have happened (the GPA changed under a constant IOVA);
// - reuse-without-invalidation: the same device's translation of an IOVA page changed GPA with no IOTLB
//   invalidation of that page, its domain or everything in between (host order): the guest re-used the
//   IOVA without invalidating the old translation (strict: the unmap's invalidation was never issued;
//   lazy: the IOVA was handed out before the flush queue was flushed);
// - missing-invalidation: strict mode: a guest unmap with no IOTLB invalidation covering it on the host
//   (page-selective, domain or global) within its phase window; lazy mode: unmapped IOVAs that no
//   flush followed before the logs end;
// - dmar-fault (shared with the simulation): the vIOMMU reported a remapping fault; for imported traces
//   repeated faults of one device at one page, with one reason, in one phase are reported once.
import { bdf } from '../events/format.js';
import type { EventOf, NewEvent } from '../events/schema.js';
import { usesIommu } from '../model/types.js';
import type { World } from '../model/world.js';
import { finding, hex, NONE } from './finding.js';

// Kept in step with src/import/to-events.ts (the importer's synthetic markers).
const DEV_UNKNOWN = 0xffff;
const MARKER_GUEST_END = 0xfffe;
const MARKER_END = 0xffff;
const MARKER_HOST_END = 0xfffd;
const MARKER_GUEST_CUT = 0xfffc;

const SHIFT = 12n;
/** A map of more pages than this is kept as one range, not per page. */
const BIG_PAGES = 4096n;
/** Distinct unmapped GPAs remembered per IOVA page; beyond that the page is no longer judged. */
const MAX_CLOSED = 64;
/** A page-selective invalidation of more pages than this is treated like a domain invalidation. */
const MAX_INV_PAGES = 4096n;
/**
 * Unmatched page invalidations kept one by one (strictInvs). A window that never closes (a log with
 * no shared markers: a host log alone, whose caching-mode vIOMMU gets one page invalidation per map
 * and per unmap, none of which a guest unmap will ever claim) would otherwise keep every one of them
 * and serialise them into every checkpoint. Beyond this many the list is compacted: identical
 * invalidations (same range, same phase) become one entry with a count, at the place of the first.
 * An unmap needs one invalidation covering it, and of identical ones it does not matter which; what
 * is kept is how many are left, so the list is bounded by the distinct ranges the vIOMMU invalidated
 * (a few hundred in a real run: the guest's IOVA allocator re-uses its ranges).
 */
const STRICT_INVS_KEPT = 8192;

/** VT-d fault reasons (Linux drivers/iommu/intel/dmar.c dma_remap_fault_reasons). */
const VTD_FAULT_REASONS: Record<number, string> = {
  1: 'Present bit in root entry is clear',
  2: 'Present bit in context entry is clear',
  3: 'Invalid context entry',
  4: 'Access beyond MGAW',
  5: 'PTE Write access is not set',
  6: 'PTE Read access is not set',
  7: 'Next page table ptr is invalid',
  8: 'Root table address invalid',
  9: 'Context table ptr is invalid',
  10: 'non-zero reserved fields in RTP',
  11: 'non-zero reserved fields in CTP',
  12: 'non-zero reserved fields in PTE',
  13: 'PCE for translation request specifies blocking',
};

interface Interval {
  gpa: bigint;
  /** the invalidation clock when the guest unmapped it (0 while open) */
  unmapClock?: number;
  mapSeq: number;
  mapPhase: number;
  unmapSeq: number;
  unmapPhase: number;
  /** seen only through a host translation before any guest map of the page (mapped before the log) */
  pre: boolean;
}

interface PageHist {
  open: Interval[];
  /** guest maps minus unmaps of this page (all devices) */
  live: number;
  /** unmapped mappings by GPA page (the latest of each) */
  closed: Map<bigint, Interval>;
  /** phase from which the page is no longer judged (too many GPAs), or -1 */
  saturated: number;
}

interface BigRange extends Interval {
  iova: bigint;
  size: bigint;
}

interface Translation {
  seq: number;
  dev: number;
  iova: bigint;
  gpa: bigint;
  cache: string;
  phase: number;
}

interface Reuse {
  t: Translation;
  prevSeq: number;
  prevGpa: bigint;
}

interface Unmap {
  seq: number;
  iova: bigint;
  size: bigint;
  phase: number;
}

interface PageInv {
  seq: number;
  iova: bigint;
  size: bigint;
  phase: number;
  /** identical invalidations (same range and phase) counted in this one, once the list was compacted; absent: 1 */
  n?: number;
}

interface RealState {
  /** phase index: number of shared marker pairs seen */
  phase: number;
  /** the marker that began each phase */
  phaseMarkers: string[];
  lastGuestMarker: { n: number; seq: number } | null;
  guestEnded: boolean;
  hostAfterGuestEnd: boolean;
  /** the guest lost events (ftrace ring overrun): its mapping history is incomplete */
  guestIncomplete: boolean;
  guestMaps: number;
  /** any guest-side event seen (a host log alone has none) */
  guestSeen: boolean;
  pages: Map<bigint, PageHist>;
  big: BigRange[];
  /** unexplained translations waiting for their window to close, by IOVA page */
  pending: Map<bigint, Translation[]>;
  /** translations judged translate-gpa-mismatch: seq → phase */
  bad: Map<number, number>;
  /** host: last translation of (dev, page) and the invalidation clock then */
  hostLast: Map<string, { gpa: bigint; clock: number; seq: number }>;
  clock: number;
  globalEpoch: number;
  devEpoch: Map<number, number>;
  pageEpoch: Map<bigint, number>;
  reuse: Reuse[];
  invSeen: boolean;
  strictPending: Unmap[];
  strictInvs: PageInv[];
  /** once strictInvs was compacted: the length at which it is compacted again (absent until then) */
  strictInvsLimit?: number;
  /** host phases with a domain or global invalidation */
  flushPhases: Set<number>;
  lazyPending: Unmap[];
  faults: Set<string>;
  /** host: the invalidation clock at the device's last IOTLB fill (a miss) of a page, by `dev:page` */
  lastFill: Map<string, number>;
  /** invalidations that certainly covered a device: global ones, a device's domain, a device's page */
  certainGlobal: number;
  devPageEpoch: Map<string, number>;
  /** the guest log starts at boot (trace_event=iommu:* on its command line): a page it never mapped was never mapped */
  guestFromBoot: boolean;
  /** translations of pages the guest had never mapped (yet), by page: a later map of them is a use before the map */
  early: Map<bigint, Translation[]>;
  /** the host log ended before the guest's: guest unmaps after it are not judged */
  hostEnded: boolean;
  /** page invalidations of a device whose IOTLB vhost serves and holds an entry of: the INVALIDATE owed */
  devTlbOwed: { dev: number; iova: bigint; size: bigint; seq: number; phase: number }[];
}

function newState(): RealState {
  return {
    phase: 0, phaseMarkers: ['before the first marker'], lastGuestMarker: null, guestEnded: false, hostAfterGuestEnd: false, guestIncomplete: false, guestMaps: 0, guestSeen: false,
    pages: new Map(), big: [], pending: new Map(), bad: new Map(), hostLast: new Map(),
    clock: 0, globalEpoch: 0, devEpoch: new Map(), pageEpoch: new Map(), reuse: [], invSeen: false,
    strictPending: [], strictInvs: [], flushPhases: new Set(), lazyPending: [], faults: new Set(),
    lastFill: new Map(), certainGlobal: 0, devPageEpoch: new Map(), guestFromBoot: false, early: new Map(), hostEnded: false, devTlbOwed: [],
  };
}

/** Only imported traces: a simulated one starts with trace.config, which sets the workload. */
function stateOf(w: World): RealState | null {
  if (w.workload !== '') return null;
  return (w.real ??= newState()) as RealState; // kept in the world: cloned, checkpointed and hashed with it
}

function devName(w: World, dev: number): string {
  if (dev === DEV_UNKNOWN) return 'an unnamed device';
  const name = w.devices.get(dev)?.name;
  return `device ${bdf(dev)} (sid ${hex(BigInt(dev))}${name ? `, ${name}` : ''})`;
}

/** strict | lazy | null (no IOMMU DMA domain): what the importer recorded as the guest's DMA path. */
function modeOf(w: World): 'strict' | 'lazy' | null {
  const d = w.devices.get(DEV_UNKNOWN) ?? [...w.devices.values()].find((x) => usesIommu(x.path));
  if (!d) return null;
  return d.path === 'iommu' ? 'strict' : d.path === 'iommu-lazy' ? 'lazy' : null;
}

// ---------------------------------------------------------------------------------------------
// guest mappings

function hist(s: RealState, page: bigint): PageHist {
  let h = s.pages.get(page);
  if (!h) s.pages.set(page, (h = { open: [], live: 0, closed: new Map(), saturated: -1 }));
  return h;
}

function close(s: RealState, h: PageHist, iv: Interval, seq: number): void {
  iv.unmapSeq = seq;
  iv.unmapPhase = s.phase;
  iv.unmapClock = s.clock;
  h.closed.delete(iv.gpa); // re-insert: the map keeps the latest last
  h.closed.set(iv.gpa, iv);
  if (h.closed.size > MAX_CLOSED) {
    // forget the oldest; translations to it could no longer be explained, so stop judging the page
    const oldest = h.closed.keys().next().value as bigint;
    h.closed.delete(oldest);
    h.saturated = s.phase;
  }
}

export function checkRealMap(w: World, ev: EventOf<'iommu.map'>): NewEvent[] {
  const s = stateOf(w);
  if (!s) return NONE;
  const out: NewEvent[] = [];
  s.guestMaps++;
  if (ev.actor === 'cpu0') s.guestSeen = true;
  const pages = (ev.size + 0xfffn) >> SHIFT;
  if (pages > BIG_PAGES) {
    s.big.push({ iova: ev.iova, size: ev.size, gpa: ev.gpa, mapSeq: ev.seq, mapPhase: s.phase, unmapSeq: 0, unmapPhase: Infinity, pre: false });
    return NONE;
  }
  for (let i = 0n; i < pages; i++) {
    const page = (ev.iova >> SHIFT) + i;
    const gpa = ((ev.gpa >> SHIFT) + i) << SHIFT;
    const h = hist(s, page);
    h.live++;
    h.open.push({ gpa, mapSeq: ev.seq, mapPhase: s.phase, unmapSeq: 0, unmapPhase: Infinity, pre: false });
    // a translation of this page from an earlier phase, before the guest had ever mapped it
    const early = s.early.get(page);
    if (early) {
      s.early.delete(page);
      for (const t of early)
        if (samePage(t.gpa, gpa) && t.phase < s.phase && !s.guestEnded) {
          s.bad.set(t.seq, t.phase);
          out.push(
            finding(
              ev.seq,
              'translate-before-map',
              `${devName(w, t.dev)} ${t.cache === 'hit' ? 'got an IOTLB hit for' : 'translated'} IOVA ${hex(t.iova)} → GPA ${hex(t.gpa)} at #${t.seq} in ${phaseName(s, t.phase)}, but the guest, whose log covers the run from boot, mapped that IOVA only later, at #${ev.seq} in ${phaseName(s, s.phase)}: the device used an address before the driver handed it out`,
              [t.seq, ev.seq],
              t.iova,
              t.gpa,
            ),
          );
        }
    }
    // a translation that came before this map in the merged order (same window) is explained now
    const waiting = s.pending.get(page);
    if (waiting) {
      const rest = waiting.filter((t) => !((t.gpa >> SHIFT) << SHIFT === gpa && s.phase <= t.phase + 1));
      if (rest.length) s.pending.set(page, rest);
      else s.pending.delete(page);
    }
  }
  return out;
}

export function checkRealUnmap(w: World, ev: EventOf<'iommu.unmap'>): NewEvent[] {
  const s = stateOf(w);
  if (!s) return NONE;
  const pages = (ev.size + 0xfffn) >> SHIFT;
  const out: NewEvent[] = [];
  // iommu_unmap of a range the guest had already unmapped and not mapped again (every page of it):
  // the same IOVA freed twice (a double dma_unmap, or a use-after-free of the IOVA in the driver)
  if (ev.actor === 'cpu0' && pages <= BIG_PAGES && !s.guestIncomplete && !s.guestEnded) {
    let prev: Interval | null = null;
    for (let i = 0n; i < pages; i++) {
      const h = s.pages.get((ev.iova >> SHIFT) + i);
      const last = h && h.live === 0 && h.open.length === 0 ? [...h.closed.values()].reduce<Interval | null>((a, b) => (!a || b.unmapSeq > a.unmapSeq ? b : a), null) : null;
      if (!last || last.pre) {
        prev = null;
        break;
      }
      if (!prev || last.unmapSeq > prev.unmapSeq) prev = last;
    }
    if (prev && !s.big.some((b) => ev.iova >= b.iova && ev.iova < b.iova + b.size))
      out.push(
        finding(
          ev.seq,
          'double-unmap',
          `the guest unmapped IOVA [${hex(ev.iova)}, ${hex(ev.iova + ev.size)}) at #${ev.seq} in ${phaseName(s, s.phase)}, but it had already unmapped it at #${prev.unmapSeq} (mapped to GPA ${hex(prev.gpa)} since #${prev.mapSeq}) and not mapped it again: the IOVA is freed twice`,
          [prev.mapSeq, prev.unmapSeq, ev.seq],
          ev.iova,
        ),
      );
  }
  for (const b of s.big)
    if (b.unmapSeq === 0 && ev.iova <= b.iova && ev.iova + ev.size >= b.iova + b.size) {
      b.unmapSeq = ev.seq;
      b.unmapPhase = s.phase;
    }
  if (pages <= 1n << 20n)
    for (let i = 0n; i < pages; i++) {
      const h = s.pages.get((ev.iova >> SHIFT) + i);
      if (!h) continue;
      h.live = Math.max(0, h.live - 1);
      if (!h.open.length) continue;
      if (h.live === 0) {
        for (const iv of h.open) close(s, h, iv, ev.seq);
        h.open = [];
      } else if (h.open.length > h.live && h.open.every((iv) => iv.gpa === h.open[0]!.gpa)) {
        close(s, h, h.open.shift()!, ev.seq);
      }
      // else: several live mappings with different GPAs (different devices' domains) and the guest
      // does not say whose was unmapped: all stay candidates
    }
  // the invalidation this unmap needs: a flush (domain/global) of host phase k-1 or k, whatever its
  // place in the merged order, or a page invalidation covering it, one per unmap
  const mode = modeOf(w);
  if (mode === null || s.hostEnded || s.flushPhases.has(s.phase) || s.flushPhases.has(s.phase - 1)) return out;
  const u: Unmap = { seq: ev.seq, iova: ev.iova, size: ev.size, phase: s.phase };
  const at = s.strictInvs.findIndex((i) => i.phase >= s.phase - 1 && covers(i, u));
  if (at >= 0) {
    const inv = s.strictInvs[at]!;
    if (inv.n !== undefined && inv.n > 1) inv.n--;
    else s.strictInvs.splice(at, 1);
  }
  else if (mode === 'strict') s.strictPending.push(u);
  else s.lazyPending.push(u);
  return out;
}

const covers = (inv: { iova: bigint; size: bigint }, u: { iova: bigint; size: bigint }): boolean =>
  inv.iova <= (u.iova & ~0xfffn) && u.iova + u.size <= inv.iova + inv.size;

// ---------------------------------------------------------------------------------------------
// host invalidations and translations

export function checkRealInv(w: World, ev: EventOf<'iommu.inv'>): NewEvent[] {
  const s = stateOf(w);
  if (!s) return NONE;
  // QEMU sends vhost the INVALIDATE while it processes the descriptor: by the next one it is late
  const out = s.devTlbOwed.length ? devTlbNotInvalidated(w, s, ev.seq, Infinity) : [];
  s.invSeen = true;
  if (s.guestEnded) s.hostAfterGuestEnd = true;
  const clock = ++s.clock;
  const pages = (ev.size + 0xfffn) >> SHIFT;
  const whole = ev.gran === 'global' || ev.gran === 'domain' || ev.gran === 'device' || pages > MAX_INV_PAGES;
  if (whole) {
    if (ev.gran === 'global' || ev.dev === DEV_UNKNOWN) s.globalEpoch = clock;
    else s.devEpoch.set(ev.dev, clock);
    if (ev.gran === 'global') s.certainGlobal = clock;
    s.flushPhases.add(s.phase);
    // satisfies every unmap it can follow: guest phases >= phase-1 (all of them so far)
    s.strictPending = s.strictPending.filter((u) => u.phase < s.phase - 1);
    s.lazyPending = s.lazyPending.filter((u) => u.phase > s.phase + 1);
  } else {
    for (let i = 0n; i < pages; i++) {
      s.pageEpoch.set((ev.iova >> SHIFT) + i, clock);
      if (ev.dev !== DEV_UNKNOWN) s.devPageEpoch.set(`${ev.dev}:${(ev.iova >> SHIFT) + i}`, clock);
    }
    const inv: PageInv = { seq: ev.seq, iova: ev.iova, size: ev.size, phase: s.phase };
    const at = s.strictPending.findIndex((u) => u.phase >= s.phase - 1 && covers(inv, u));
    if (at >= 0) s.strictPending.splice(at, 1);
    else {
      s.strictInvs.push(inv);
      if (s.strictInvs.length > (s.strictInvsLimit ?? STRICT_INVS_KEPT)) {
        s.strictInvs = compactInvs(s.strictInvs);
        // compacted once: again when the list has doubled (amortised O(1) per invalidation)
        s.strictInvsLimit = Math.min(STRICT_INVS_KEPT, Math.max(256, 2 * s.strictInvs.length));
      }
    }
    s.lazyPending = s.lazyPending.filter((u) => !covers(inv, u));
    // hw/virtio/vhost.c vhost_iommu_unmap_notify: the vIOMMU's UNMAP notification of this range makes
    // QEMU send vhost an INVALIDATE; while it has not come, the back-end may use its cached entry
    const d = ev.dev === DEV_UNKNOWN ? undefined : w.devices.get(ev.dev);
    const last = ev.iova + ev.size - 1n;
    if (d && d.iotlb.entries.some((e) => e.start <= last && ev.iova <= e.last)) s.devTlbOwed.push({ dev: ev.dev, iova: ev.iova, size: ev.size, seq: ev.seq, phase: s.phase });
  }
  return out;
}

/**
 * Identical unmatched page invalidations (range and phase) counted in the first of them. If even the
 * distinct ones are more than half the bound (a log without markers invalidating ever new ranges),
 * the oldest are dropped: they stay unclaimed only in a window that never closes.
 */
function compactInvs(list: PageInv[]): PageInv[] {
  const first = new Map<string, PageInv>();
  const out: PageInv[] = [];
  for (const inv of list) {
    const key = `${inv.iova}:${inv.size}:${inv.phase}`;
    const at = first.get(key);
    if (at) at.n = (at.n ?? 1) + (inv.n ?? 1);
    else {
      first.set(key, inv);
      out.push(inv);
    }
  }
  return out.length > STRICT_INVS_KEPT / 2 ? out.slice(out.length - STRICT_INVS_KEPT / 2) : out;
}

/** An imported vhost INVALIDATE (iotlb.invalidate) pays what the page invalidations it overlaps owed. */
export function checkRealIotlbInvalidate(w: World, ev: EventOf<'iotlb.invalidate'>): NewEvent[] {
  const s = stateOf(w);
  if (!s || !s.devTlbOwed.length) return NONE;
  const last = ev.iova + ev.size - 1n;
  s.devTlbOwed = s.devTlbOwed.filter((o) => !(o.dev === ev.dev && o.iova <= last && ev.iova <= o.iova + o.size - 1n));
  return NONE;
}

/**
 * Invalidations owed to vhost from phases before `beforePhase` (QEMU sends the INVALIDATE in the same
 * breath as it processes the descriptor: at the next descriptor or the next phase it is missing),
 * where the device IOTLB still holds an entry of the range.
 */
function devTlbNotInvalidated(w: World, s: RealState, at: number, beforePhase: number): NewEvent[] {
  const out: NewEvent[] = [];
  s.devTlbOwed = s.devTlbOwed.filter((o) => {
    if (o.phase >= beforePhase) return true;
    const last = o.iova + o.size - 1n;
    const e = w.devices.get(o.dev)?.iotlb.entries.find((x) => x.start <= last && o.iova <= x.last);
    if (e)
      out.push(
        finding(
          at,
          'device-iotlb-not-invalidated',
          `the vIOMMU invalidated IOVA [${hex(o.iova)}, ${hex(last)}] of ${devName(w, o.dev)} at #${o.seq}, but vhost, whose device IOTLB holds [${hex(e.start)}, ${hex(e.last)}] from UPDATE #${e.seq}, got no INVALIDATE for it: the back-end can keep using the old translation after the guest unmapped it`,
          [e.seq, o.seq],
          o.iova,
        ),
      );
    return false;
  });
  return out;
}

/** An invalidation since `clock` that certainly dropped the device's IOTLB entries for the page. */
function certainlyFlushedSince(s: RealState, dev: number, page: bigint, clock: number): boolean {
  return s.certainGlobal > clock || (dev !== DEV_UNKNOWN && ((s.devEpoch.get(dev) ?? 0) > clock || (s.devPageEpoch.get(`${dev}:${page}`) ?? 0) > clock));
}

function flushedSince(s: RealState, dev: number, page: bigint, clock: number): boolean {
  return s.globalEpoch > clock || (s.devEpoch.get(dev) ?? 0) > clock || (s.pageEpoch.get(page) ?? 0) > clock;
}

/** Guest mappings of the page that may have been live at some instant of guest phases [k, k+1]. */
function candidates(s: RealState, iova: bigint, k: number): Interval[] {
  const page = iova >> SHIFT;
  const out: Interval[] = [];
  const h = s.pages.get(page);
  if (h) {
    for (const iv of h.open) if (iv.mapPhase <= k + 1) out.push(iv);
    for (const iv of h.closed.values()) if (iv.mapPhase <= k + 1 && iv.unmapPhase >= k) out.push(iv);
  }
  for (const b of s.big)
    if (iova >= b.iova && iova < b.iova + b.size && b.mapPhase <= k + 1 && b.unmapPhase >= k)
      out.push({ ...b, gpa: b.gpa + (((iova - b.iova) >> SHIFT) << SHIFT) });
  return out;
}

const samePage = (a: bigint, b: bigint): boolean => a >> SHIFT === b >> SHIFT;

/**
 * amd_iommu.c amdvi_page_walk prints `translated_addr = pte & page_mask`: for a large-page PTE (Linux
 * maps an aligned 8 KiB+ chunk as one) that is the base of the large page, not the 4 KiB page holding
 * the IOVA. True when `gpa` is the base of an aligned 2^k-page block that one guest map (the same
 * chunk, so the same map seq) mapped contiguously around the IOVA.
 */
function largePageBase(s: RealState, iv: Interval, iova: bigint, gpa: bigint): boolean {
  const page = iova >> SHIFT;
  for (let k = 1n; k <= 9n; k++) {
    const base = page & ~((1n << k) - 1n);
    if (iv.gpa >> SHIFT !== (gpa >> SHIFT) + (page - base)) continue;
    const hb = s.pages.get(base);
    const at = hb && [...hb.open, ...hb.closed.values()].find((x) => x.mapSeq === iv.mapSeq);
    if (at && samePage(at.gpa, gpa)) return true;
  }
  return false;
}

/** "phase 3 (after marker 3 blk-read-direct)" */
function phaseName(s: RealState, k: number): string {
  return `phase ${k} (${s.phaseMarkers[k] ?? '?'})`;
}

export function checkRealTranslate(w: World, ev: EventOf<'iommu.translate'>): NewEvent[] {
  const s = stateOf(w);
  if (!s) return NONE;
  // amd_iommu.c amdvi_page_walk: a zero PTE returns with translated_addr 0 and IOMMU_NONE and raises
  // no fault (no amdvi_page_fault, no event-log entry): the access was blocked, but nothing reported a
  // fault, so it is not a dmar-fault; stats counts these translations (cache 'fault')
  if (ev.cache === 'fault' || ev.cache === 'pt') return NONE;
  const t: Translation = { seq: ev.seq, dev: ev.dev, iova: ev.iova, gpa: ev.gpa, cache: ev.cache, phase: s.phase };
  const page = ev.iova >> SHIFT;
  // host order: the device's previous translation of this page, and invalidations since
  const key = `${ev.dev}:${page}`;
  const out: NewEvent[] = [];
  // vtd_do_iommu_translate / amdvi_do_translate: an invalidation drops the cached entry, so the next
  // lookup of that page must miss (vtd_iotlb_page_update / amdvi_cache_update) before it can hit again
  if (ev.cache === 'miss') s.lastFill.set(key, s.clock);
  else if (ev.cache === 'hit') {
    const fill = s.lastFill.get(key);
    if (fill !== undefined && certainlyFlushedSince(s, ev.dev, page, fill)) {
      s.bad.set(ev.seq, s.phase);
      out.push(
        finding(
          ev.seq,
          'iotlb-hit-after-invalidation',
          `${devName(w, ev.dev)} got an IOTLB hit for IOVA ${hex(ev.iova)} → GPA ${hex(ev.gpa)} at #${ev.seq}, but an invalidation covering that page has been processed since the entry was filled, and no fill came in between: the vIOMMU served a translation it had been told to drop (a broken invalidation path)`,
          [ev.seq],
          ev.iova,
          ev.gpa,
        ),
      );
    }
  }
  // the stale-translation race inside one phase: the guest unmapped this IOVA → GPA, no invalidation
  // of the page reached the vIOMMU since, the guest mapped the IOVA to another GPA, and the vIOMMU
  // still returns the old GPA. The merge (src/import/merge.ts) keeps a translation inside the mapping
  // it needs whenever the clocks allow that within REPAIR_US, so an order this far off is the trace's.
  if (!s.guestEnded && !s.guestIncomplete && s.guestSeen && !out.length) {
    const h = s.pages.get(page);
    if (h && h.open.length && !h.open.some((iv) => samePage(iv.gpa, ev.gpa))) {
      let old: Interval | null = null;
      for (const iv of h.closed.values())
        if (samePage(iv.gpa, ev.gpa) && iv.unmapPhase === s.phase && iv.unmapClock !== undefined && (!old || iv.unmapSeq > old.unmapSeq)) old = iv;
      const remap = old ? h.open.find((iv) => iv.mapSeq > old!.unmapSeq) : undefined;
      if (old && remap && !certainlyFlushedSince(s, ev.dev, page, old.unmapClock!) && !flushedSince(s, ev.dev, page, old.unmapClock!)) {
        s.bad.set(ev.seq, s.phase);
        out.push(
          finding(
            ev.seq,
            'stale-translation',
            `${devName(w, ev.dev)} ${ev.cache === 'hit' ? 'got an IOTLB hit for' : 'translated'} IOVA ${hex(ev.iova)} → GPA ${hex(ev.gpa)} at #${ev.seq}, ${phaseName(s, s.phase)}, but the guest unmapped that mapping at #${old.unmapSeq} and mapped the IOVA to GPA ${hex(remap.gpa)} at #${remap.mapSeq}, and no IOTLB invalidation of the page, its domain or everything reached the vIOMMU in between: the device still used the old GPA after the guest remapped the IOVA`,
            [old.mapSeq, old.unmapSeq, remap.mapSeq, ev.seq],
            ev.iova,
            ev.gpa,
          ),
        );
      }
    }
  }
  const last = s.hostLast.get(key);
  if (last && !samePage(last.gpa, ev.gpa) && !flushedSince(s, ev.dev, page, last.clock)) s.reuse.push({ t, prevSeq: last.seq, prevGpa: last.gpa });
  s.hostLast.set(key, { gpa: ev.gpa, clock: s.clock, seq: ev.seq });
  if (out.length) return out;
  // against the guest's mappings: judged when the window closes, unless explained already
  // nothing to judge against: no guest log (a host log alone, or it has not begun yet), or it has ended
  if (!s.guestSeen || s.guestEnded) return NONE;
  if (s.guestFromBoot && !s.pages.has(page) && !s.big.some((b) => ev.iova >= b.iova && ev.iova < b.iova + b.size)) {
    const l = s.early.get(page);
    if (!l) s.early.set(page, [t]);
    else if (l.length < 8) l.push(t);
  }
  const cands = candidates(s, ev.iova, s.phase);
  if (cands.some((iv) => samePage(iv.gpa, ev.gpa) || largePageBase(s, iv, ev.iova, ev.gpa))) return NONE;
  // not explained (yet): the guest may still map it later in the window. One waiting translation per
  // page, GPA page and phase is enough (the judgment depends on nothing else).
  const list = s.pending.get(page);
  if (!list) s.pending.set(page, [t]);
  else if (!list.some((x) => x.phase === t.phase && samePage(x.gpa, t.gpa))) list.push(t);
  return NONE;
}

// ---------------------------------------------------------------------------------------------
// faults

export function checkFault(w: World, ev: EventOf<'iommu.fault'>): NewEvent[] {
  const s = stateOf(w);
  const d = w.devices.get(ev.dev);
  const why = d && !d.useDmaApi ? ': the device is translated but its driver bypasses the DMA API (no ACCESS_PLATFORM), so desc.addr holds raw GPAs' : '';
  const reason = ev.reason ? `fault reason ${ev.reason}${VTD_FAULT_REASONS[ev.reason] ? ` (${VTD_FAULT_REASONS[ev.reason]})` : ''}` : 'fault reason not reported';
  const msg = `DMAR fault: ${ev.write ? 'write' : 'read'} by ${devName(w, ev.dev)} at IOVA ${hex(ev.iova)}, ${reason}${why}`;
  if (!s) return [finding(ev.seq, 'dmar-fault', msg, [ev.cause, ev.seq], ev.iova)];
  return fault(w, s, ev.seq, ev.dev, ev.iova, ev.write, ev.reason, null, msg);
}

function fault(w: World, s: RealState, seq: number, dev: number, iova: bigint, write: number, reason: number, what: string | null, msg?: string): NewEvent[] {
  const key = `${dev}:${iova >> SHIFT}:${reason}:${write}`;
  if (s.faults.has(key)) return NONE; // the same fault again (a device retrying, fault compression)
  s.faults.add(key);
  return [finding(seq, 'dmar-fault', msg ?? `DMAR fault: ${devName(w, dev)} at IOVA ${hex(iova)}: ${what}`, [seq], iova)];
}

// ---------------------------------------------------------------------------------------------
// markers: phase boundaries, and judging the windows that closed

export function checkRealMarker(w: World, ev: EventOf<'marker'>): NewEvent[] {
  const s = stateOf(w);
  if (!s) return NONE;
  if (ev.side === 'guest') {
    s.guestSeen = true;
    if (ev.n === MARKER_GUEST_END) s.guestEnded = true;
    else if (ev.n === MARKER_GUEST_CUT) {
      s.guestEnded = true;
      // nothing past the guest log's end is judged against it: translations whose window reaches
      // beyond it (this phase and the one before) and first uses still waiting for a map are dropped
      for (const [page, list] of s.pending) {
        const keep = list.filter((t) => t.phase < s.phase - 1);
        if (keep.length) s.pending.set(page, keep);
        else s.pending.delete(page);
      }
      s.early.clear();
    } else s.lastGuestMarker = { n: ev.n, seq: ev.seq };
    return NONE;
  }
  if (ev.n === MARKER_HOST_END) {
    // the host log ended first: unmaps of this phase and the one before cannot be matched any more
    s.hostEnded = true;
    s.strictPending = s.strictPending.filter((u) => u.phase < s.phase - 1);
    return NONE;
  }
  if (ev.n === MARKER_END) return [...devTlbNotInvalidated(w, s, ev.seq, Infinity), ...judge(w, s, ev.seq, Infinity, true)];
  const g = s.lastGuestMarker;
  if (!g || g.n !== ev.n || g.seq !== ev.seq - 1) return NONE;
  // a shared marker pair: phase k begins; phase k-2 events have seen their whole window
  s.phase++;
  s.phaseMarkers.push(`after marker ${ev.n}${ev.name ? ` ${ev.name}` : ''}`);
  s.faults.clear();
  return [...devTlbNotInvalidated(w, s, ev.seq, s.phase), ...judge(w, s, ev.seq, s.phase - 2, false)];
}

export function checkRealOpaque(w: World, ev: EventOf<'opaque'>): NewEvent[] {
  const s = stateOf(w);
  if (!s || ev.side !== 'guest') return NONE;
  s.guestSeen = true;
  if (ev.event === 'lost-events') s.guestIncomplete = true;
  // the trace workload's frame line carries the guest command line: iommu events traced from boot
  if (ev.event === 'RT-TRACE-BEGIN' && /\strace_event=\S*iommu/.test(ev.text)) s.guestFromBoot = true;
  return NONE;
}

/** Judges everything of phases <= upTo (at the end: everything, with the end rules). */
function judge(w: World, s: RealState, at: number, upTo: number, end: boolean): NewEvent[] {
  const out: NewEvent[] = [];
  const lastPhase = s.phase;
  // translations against the guest's mappings
  const judged: Translation[] = [];
  for (const [page, list] of s.pending) {
    const keep: Translation[] = [];
    for (const t of list) (t.phase <= upTo ? judged : keep).push(t);
    if (keep.length) s.pending.set(page, keep);
    else s.pending.delete(page);
  }
  judged.sort((a, b) => a.seq - b.seq);
  if (!s.guestIncomplete && s.guestMaps > 0)
    for (const t of judged) {
      const f = judgeTranslation(w, s, t);
      if (f) out.push(f);
    }
  // host-side reuse without invalidation (after the translations: a wrong GPA is reported as that)
  const keepReuse: Reuse[] = [];
  for (const r of s.reuse) {
    if (r.t.phase > upTo) {
      keepReuse.push(r);
      continue;
    }
    if (s.bad.has(r.t.seq) || s.bad.has(r.prevSeq)) continue;
    out.push(
      finding(
        r.t.seq,
        'reuse-without-invalidation',
        `${devName(w, r.t.dev)} translated IOVA ${hex(r.t.iova)} to GPA ${hex(r.t.gpa)} at #${r.t.seq}, but to GPA ${hex(r.prevGpa)} at #${r.prevSeq}, and no IOTLB invalidation of that page, its domain or everything came in between: the IOVA was re-used for another GPA while the old translation could still be cached`,
        [r.prevSeq, r.t.seq],
        r.t.iova,
        r.t.gpa,
      ),
    );
  }
  s.reuse = keepReuse;
  // invalidations owed for unmaps
  if (s.invSeen && !s.guestIncomplete) {
    const strict = s.strictPending.filter((u) => u.phase <= upTo && (!end || u.phase < lastPhase || s.hostAfterGuestEnd));
    for (const u of strict)
      out.push(
        finding(
          u.seq,
          'missing-invalidation',
          `strict mode: the guest unmapped IOVA [${hex(u.iova)}, ${hex(u.iova + u.size)}) at #${u.seq} in ${phaseName(s, u.phase)}, but the host shows no IOTLB invalidation covering it (page-selective, domain or global) in that phase or the one before or after: a strict unmap returns only after its invalidation, so the device could keep using the old translation`,
          [u.seq],
          u.iova,
        ),
      );
    if (end)
      for (const u of s.lazyPending.filter((x) => x.phase < lastPhase))
        out.push(
          finding(
            u.seq,
            'missing-invalidation',
            `lazy mode: the guest unmapped IOVA [${hex(u.iova)}, ${hex(u.iova + u.size)}) at #${u.seq} in ${phaseName(s, u.phase)} and no IOTLB flush (domain or global invalidation, or a page invalidation covering it) followed on the host before the logs end: the flush queue entry was never flushed (Linux flushes it within IOVA_FQ_TIMEOUT, 10 ms, or when 256 entries are queued)`,
            [u.seq],
            u.iova,
          ),
        );
  }
  s.strictPending = s.strictPending.filter((u) => u.phase > upTo);
  s.strictInvs = s.strictInvs.filter((i) => i.phase > upTo);
  for (const p of s.flushPhases) if (p < upTo) s.flushPhases.delete(p);
  if (end) s.lazyPending = [];
  // forget what no later window can need
  if (!end && upTo >= 0) {
    for (const [seq, ph] of s.bad) if (ph < upTo - 1) s.bad.delete(seq);
    for (const h of s.pages.values()) for (const [gpa, iv] of h.closed) if (iv.unmapPhase < upTo + 1 && h.closed.size > 1) h.closed.delete(gpa);
  }
  return out.map((f) => ({ ...f, cause: f.cause || at }));
}

function judgeTranslation(w: World, s: RealState, t: Translation): NewEvent | null {
  const page = t.iova >> SHIFT;
  const cands = candidates(s, t.iova, t.phase);
  if (cands.some((iv) => samePage(iv.gpa, t.gpa) || largePageBase(s, iv, t.iova, t.gpa))) return null;
  const h = s.pages.get(page);
  if (h && h.saturated >= 0 && h.saturated <= t.phase + 1) return null;
  const what = `${devName(w, t.dev)} ${t.cache === 'hit' ? 'got an IOTLB hit for' : 'translated'} IOVA ${hex(t.iova)} → GPA ${hex(t.gpa)} at #${t.seq}, ${phaseName(s, t.phase)}`;
  if (cands.length) {
    s.bad.set(t.seq, t.phase);
    const live = [...new Set(cands.map((c) => hex(c.gpa)))].join(', ');
    return finding(
      t.seq,
      'translate-gpa-mismatch',
      `${what}, but the guest mapped that IOVA page only to GPA ${live} while the translation could have happened (map${cands.length > 1 ? 's' : ''} ${cands.map((c) => (c.pre ? 'from before the guest log' : `#${c.mapSeq}`)).join(', ')}): the GPA changed under a constant IOVA`,
      [...cands.map((c) => c.mapSeq), t.seq],
      t.iova,
      t.gpa,
    );
  }
  // nothing live in the window: unmapped before it (and not mapped again)?
  let prev: Interval | null = null;
  if (h) for (const iv of h.closed.values()) if (iv.unmapPhase < t.phase && (!prev || iv.unmapSeq > prev.unmapSeq)) prev = iv;
  for (const b of s.big) if (t.iova >= b.iova && t.iova < b.iova + b.size && b.unmapSeq && b.unmapPhase < t.phase && (!prev || b.unmapSeq > prev.unmapSeq)) prev = b;
  if (!prev) {
    // the guest log never mapped this IOVA before or around the translation: mapped before the log
    // began, not judged. Remember the host's view so later translations of it are explained.
    hist(s, page).open.push({ gpa: (t.gpa >> SHIFT) << SHIFT, mapSeq: 0, mapPhase: -1, unmapSeq: 0, unmapPhase: Infinity, pre: true });
    return null;
  }
  s.bad.set(t.seq, t.phase);
  return finding(
    t.seq,
    'translate-after-unmap',
    `${what}, but the guest unmapped that IOVA at #${prev.unmapSeq} in ${phaseName(s, prev.unmapPhase)} (it mapped GPA ${hex(prev.gpa)}${prev.pre ? '' : ` since #${prev.mapSeq}`}) and did not map it again: the device used an IOVA it no longer owned${t.cache === 'hit' ? ', through an IOTLB entry that should have been invalidated' : ''}`,
    [prev.mapSeq, prev.unmapSeq, t.seq],
    t.iova,
    t.gpa,
  );
}
