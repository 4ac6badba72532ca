/**
 * Two logs of one run (guest ftrace + host QEMU log), one event stream.
 *
 * The two clocks differ (guest: ns since boot, running at emulated speed; host: wall clock), so only
 * the shared phase markers are trusted: the workload writes the same marker N to both sides (an ftrace
 * `RT-MARK N name` and a host-bridge config write `0x525400NN`). The markers present on both sides, in
 * the same order (longest common subsequence of their numbers), cut both logs into phases; phase k is
 * everything after the k-th shared marker (phase 0: before the first). At a phase boundary the guest
 * marker comes first, then the host marker (the guest writes the ftrace marker before the config write).
 *
 * Inside a phase each side keeps its own order, and the two are interleaved by their timestamps with
 * the guest clock mapped linearly onto the host clock between the phase's two markers. That
 * interleaving is an estimate: the guest writes its marker a few milliseconds (a fork and exec under
 * TCG) before QEMU sees the config write, so the cross-side order inside a phase is uncertain by at
 * least that much. The checks on real traces (src/check/real.ts) never rely on it: they judge a host
 * event against what the guest did over whole phases.
 *
 * Without shared markers the whole logs are one phase, aligned by mapping the guest's first..last
 * timestamps onto the host's.
 */
import type { NewEvent } from '../events/schema.js';
import { readFtraceBatches } from './ftrace.js';
import { readQemuLogBatches } from './qemu-log.js';
import {
  END_NAME,
  GUEST_END_NAME,
  HOST_END_NAME,
  MARKER_HOST_END,
  GUEST_CUT_NAME,
  MARKER_GUEST_CUT,
  type GuestScan,
  GuestConverter,
  type HostScan,
  HostConverter,
  MARKER_END,
  MARKER_GUEST_END,
  type MarkerInfo,
  type TimedEvent,
  type XlateSample,
} from './to-events.js';

export interface Boundary {
  n: number;
  name: string;
  /** index in the guest's / host's marker list */
  gi: number;
  hi: number;
  /** side-local times (guest ns, host µs) */
  g: number;
  h: number;
}

export interface PhaseStat {
  /** 0 = before the first shared marker */
  phase: number;
  n: number | null;
  name: string;
  guestEvents: number;
  hostEvents: number;
}

export interface Alignment {
  method: 'markers' | 'span';
  boundaries: Boundary[];
  /** marker numbers seen on one side only (not used for alignment) */
  guestOnly: number[];
  hostOnly: number[];
  phases: PhaseStat[];
  note: string;
  /** filled in by the merge */
  order?: OrderReport;
}

/** Shared markers: the longest common subsequence of the two sides' marker numbers. */
export function alignMarkers(g: MarkerInfo[], h: MarkerInfo[]): Boundary[] {
  const G = g.length;
  const H = h.length;
  if (G === 0 || H === 0) return [];
  if (G * H > 25_000_000) {
    // too many markers for the table: greedy in order, each guest marker taking the first host
    // marker of its number after the last one taken (positions per number with a moving cursor:
    // linear overall, where scanning forward for every guest marker was G*H on disjoint numbers)
    const out: Boundary[] = [];
    const at = new Map<number, { pos: number[]; next: number }>();
    for (let k = 0; k < H; k++) {
      const e = at.get(h[k]!.n);
      if (e) e.pos.push(k);
      else at.set(h[k]!.n, { pos: [k], next: 0 });
    }
    let j = 0;
    for (let i = 0; i < G && j < H; i++) {
      const e = at.get(g[i]!.n);
      if (!e) continue;
      while (e.next < e.pos.length && e.pos[e.next]! < j) e.next++;
      const k = e.next < e.pos.length ? e.pos[e.next]! : H;
      if (k < H) {
        out.push({ n: g[i]!.n, name: g[i]!.name, gi: i, hi: k, g: g[i]!.t, h: h[k]!.t });
        j = k + 1;
      }
    }
    return out;
  }
  const L: Uint32Array[] = Array.from({ length: G + 1 }, () => new Uint32Array(H + 1));
  for (let i = G - 1; i >= 0; i--)
    for (let j = H - 1; j >= 0; j--) L[i]![j] = g[i]!.n === h[j]!.n ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const out: Boundary[] = [];
  let i = 0;
  let j = 0;
  while (i < G && j < H) {
    if (g[i]!.n === h[j]!.n) {
      out.push({ n: g[i]!.n, name: g[i]!.name, gi: i, hi: j, g: g[i]!.t, h: h[j]!.t });
      i++;
      j++;
    } else if (L[i + 1]![j]! >= L[i]![j + 1]!) i++;
    else j++;
  }
  return out;
}

export const ALIGNMENT_NOTE =
  'Phases are cut at the shared markers, which both sides logged in the same order; only there is the cross-side order certain. ' +
  'Inside a phase each side keeps its own order and the two are interleaved by mapping the guest clock linearly onto the host clock between the phase markers, ' +
  'corrected by a shift tracked along the host translations (the guest writes its marker some milliseconds before QEMU logs the config write) and repaired where it contradicts causality (a translation before the map it needs, an unmap before the translation that still needs it). The phase-window checks judge a host event against the guest state over its phase and the next; the in-phase checks rely on the repaired order.';

async function* sideStream(
  batches: AsyncIterable<unknown[]>,
  convert: (it: never) => TimedEvent[],
  tail: () => TimedEvent[],
  progress?: (items: number) => void,
): AsyncGenerator<TimedEvent[]> {
  let items = 0;
  for await (const batch of batches) {
    const out: TimedEvent[] = [];
    for (const it of batch) {
      const evs = convert(it as never);
      for (let i = 0; i < evs.length; i++) out.push(evs[i]!);
    }
    items += batch.length;
    progress?.(items);
    if (out.length) yield out;
  }
  const t = tail();
  if (t.length) yield t;
}

export function guestEvents(scan: GuestScan, progress?: (items: number) => void): AsyncGenerator<TimedEvent[]> {
  const conv = new GuestConverter(scan);
  return sideStream(readFtraceBatches(scan.file, { text: true }), conv.convert.bind(conv) as (it: never) => TimedEvent[], () => [], progress);
}

export function hostEvents(scan: HostScan, guestMarkers: MarkerInfo[], progress?: (items: number) => void): AsyncGenerator<TimedEvent[]> {
  const conv = new HostConverter(scan, guestMarkers);
  return sideStream(readQemuLogBatches(scan.file, { text: true }), conv.convert.bind(conv) as (it: never) => TimedEvent[], () => conv.flush(), progress);
}

class Cursor {
  private buf: TimedEvent[] = [];
  private i = 0;
  done = false;
  constructor(private readonly it: AsyncIterator<TimedEvent[]>) {}
  /** The next event, or null at the end. */
  async peek(): Promise<TimedEvent | null> {
    while (this.i >= this.buf.length) {
      if (this.done) return null;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return null;
      }
      this.buf = r.value;
      this.i = 0;
    }
    return this.buf[this.i]!;
  }
  /** Only after peek() returned an event. */
  take(): TimedEvent {
    return this.buf[this.i++]!;
  }
  /** The events ahead up to host time `limit` (at most 65536), without taking them. */
  async lookahead(limit: number): Promise<TimedEvent[]> {
    for (;;) {
      const rest = this.buf.length - this.i;
      const lastT = rest ? this.buf[this.buf.length - 1]!.t : null;
      if (this.done || rest >= 65536 || (rest && lastT !== null && lastT > limit)) break;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      this.buf = this.buf.slice(this.i).concat(r.value);
      this.i = 0;
    }
    const out: TimedEvent[] = [];
    for (let j = this.i; j < this.buf.length; j++) {
      const e = this.buf[j]!;
      if (e.t !== null && e.t > limit) break;
      out.push(e);
    }
    return out;
  }
}

const endMarker = (): NewEvent => ({ kind: 'marker', actor: 'vmm', cause: 0, n: MARKER_END, name: END_NAME, side: 'host' });
const hostEndMarker = (): NewEvent => ({ kind: 'marker', actor: 'vmm', cause: 0, n: MARKER_HOST_END, name: HOST_END_NAME, side: 'host' });
const guestEndMarker = (): NewEvent => ({ kind: 'marker', actor: 'cpu0', cause: 0, n: MARKER_GUEST_END, name: GUEST_END_NAME, side: 'guest' });
const guestCutMarker = (): NewEvent => ({ kind: 'marker', actor: 'cpu0', cause: 0, n: MARKER_GUEST_CUT, name: GUEST_CUT_NAME, side: 'guest' });

const BATCH = 4096;

/**
 * One side alone: its events, then (host logs) the end-of-logs marker the checks close their windows
 * on. `stats` gets per-phase counts (all one phase).
 */
export async function* singleStream(side: 'guest' | 'host', src: AsyncGenerator<TimedEvent[]>, phases: PhaseStat[]): AsyncGenerator<NewEvent[]> {
  const stat: PhaseStat = { phase: 0, n: null, name: '', guestEvents: 0, hostEvents: 0 };
  phases.push(stat);
  for await (const batch of src) {
    if (side === 'guest') stat.guestEvents += batch.length;
    else stat.hostEvents += batch.length;
    yield batch.map((e) => e.ev);
  }
  if (side === 'host') yield [endMarker()];
}

/**
 * How far (host µs) the repair may move a translation against the guest's map/unmap around it. The
 * clock fit leaves an error of a few hundred µs under TCG, but where the tracked shift has not caught
 * up (it moves only on translations that fall outside every mapping) the guest's unmap of a page and
 * its remap can sit 2–3 ms of host time apart in a strict VT-d run (vtd-cm phase 3: 2.8 ms), and the
 * first translation to the new GPA must still land after the remap, or a stale translation that
 * follows it looks like one inside the old mapping. 4 ms keeps those orders reachable (vtd-cm: 6152 of
 * 6153 translations inside a live mapping, 2 ms gave 6016 of 6148) while a translation stale by more
 * than that stays visibly stale.
 */
export const REPAIR_US = 4000;


/** Guest mapping intervals of one IOVA page, guest clock (ns). */
interface GuestInterval {
  gpaPage: number;
  m: number;
  u: number;
}

/**
 * The guest's iommu.map/unmap as intervals per IOVA page (ns). An unmap closes the page's newest
 * open mapping (several live ones: different devices' domains, the guest does not say whose; a
 * long-lived ring mapping of one device and short-lived buffers of another cycling on the same IOVA
 * is the common case, and LIFO keeps the ring).
 */
function guestIntervals(events: TimedEvent[]): Map<number, GuestInterval[]> {
  const open = new Map<number, GuestInterval[]>();
  const all = new Map<number, GuestInterval[]>();
  for (const e of events) {
    const ev = e.ev;
    if (e.t === null || (ev.kind !== 'iommu.map' && ev.kind !== 'iommu.unmap')) continue;
    const pages = Number((ev.size + 0xfffn) >> 12n);
    if (pages > 4096) continue;
    const p0 = Number(ev.iova >> 12n);
    for (let i = 0; i < pages; i++) {
      const page = p0 + i;
      if (ev.kind === 'iommu.map') {
        const iv = { gpaPage: Number(ev.gpa >> 12n) + i, m: e.t, u: Infinity };
        let l = open.get(page);
        if (!l) open.set(page, (l = []));
        l.push(iv);
        let a = all.get(page);
        if (!a) all.set(page, (a = []));
        a.push(iv);
      } else {
        const l = open.get(page);
        const iv = l?.pop();
        if (iv) iv.u = e.t;
      }
    }
  }
  return all;
}

/** A piecewise-linear shift of the guest clock: (host µs, shift µs) knots in host time order. */
type Knots = [number, number][];

/** Where the tracker moves the shift inside a range it must enter (µs from the range's edge). */
const MARGIN_US = 300;
/** A translation that would need the shift to jump further than this is left alone (stale, or unrelated). */
const MAX_JUMP_US = 30_000;
/** ...unless the translation fits exactly one guest mapping (of its IOVA page to its GPA page) */
const MAX_UNIQUE_JUMP_US = 200_000;

/**
 * The shift of the guest clock over one phase, tracked along the host's translations in host order.
 * The marker anchors place every guest event too late by the time the guest needs between its ftrace
 * marker and the config write (a fork and exec of dd under TCG), and the two clocks drift apart over
 * a phase, so the shift starts at 0 and is moved, as little as possible, whenever a translation would
 * otherwise fall outside every guest mapping of its IOVA page and GPA (after the map, before the
 * unmap). Moving minimally from 0 keeps it from locking onto an alias: a workload re-mapping the same
 * IOVA → GPA pairs request after request would fit a shift of whole requests just as well.
 */
function trackShift(samples: XlateSample[], intervals: Map<number, GuestInterval[]>, naive: (t: number) => number): Knots {
  const knots: Knots = [];
  let d = 0;
  for (const x of samples) {
    const ivs = intervals.get(x.page);
    if (!ivs) continue;
    let best: [number, number] | null = null;
    let bestDist = Infinity;
    let candidates = 0;
    for (const iv of ivs) {
      if (iv.gpaPage !== x.gpaPage) continue;
      candidates++;
      const lo = iv.u === Infinity ? -Infinity : x.t - naive(iv.u);
      const hi = x.t - naive(iv.m);
      if (lo > hi) continue;
      const dist = d < lo ? lo - d : d > hi ? d - hi : 0;
      if (dist < bestDist) {
        bestDist = dist;
        best = [lo, hi];
      }
    }
    // the only mapping of this IOVA page to this GPA page in the whole guest log cannot be an alias:
    // follow it further (sparse translations, e.g. a vhost back-end's misses seconds apart, let the
    // clocks drift by tens of ms between two samples)
    if (!best || bestDist === 0 || bestDist > (candidates === 1 ? MAX_UNIQUE_JUMP_US : MAX_JUMP_US)) continue;
    const [lo, hi] = best;
    const m = Math.min(MARGIN_US, (hi - lo) / 2);
    d = d < lo ? lo + m : hi - m;
    knots.push([x.t, d]);
  }
  return knots;
}

/** The shift at host time h: the knot before it (a shift holds until the next translation moves it). */
function shiftAt(knots: Knots, h: number): number {
  let lo = 0;
  let hi = knots.length - 1;
  if (hi < 0 || h < knots[0]![0]) return knots.length ? knots[0]![1] : 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (knots[mid]![0] <= h) lo = mid;
    else hi = mid - 1;
  }
  return knots[lo]![1];
}

/** What the merge did to the order (reported by import, recomputed by stats from the stored order). */
export interface OrderReport {
  /** host translations whose IOVA page the guest log maps at some point */
  translations: number;
  /** of those, placed where the guest had a mapping of that page to that GPA page live */
  insideLiveMapping: number;
  /** times the causality repair overrode the clocks (a guest map moved before a translation, or an unmap held back) */
  repaired: number;
  /** per phase: the shift of the guest clock (µs) the tracker ended the phase with, null where nothing moved it */
  shiftsUs: (number | null)[];
}

/**
 * Merges the two sides phase by phase (see the file comment). The whole guest side is held in memory
 * (an ftrace buffer: megabytes at most); the host side streams, with a short look-ahead for the
 * repair. `alignment.phases` and `alignment.order` are filled in while streaming. Ends with the
 * end-of-guest-log marker (for a cut guest log placed {@link REPAIR_US} before its last event, so
 * that nothing the missing rest could explain is judged) and the end-of-logs marker; a host log that
 * runs out first gets an end-of-host-log marker there.
 */
export async function* mergeStreams(guest: AsyncGenerator<TimedEvent[]>, host: AsyncGenerator<TimedEvent[]>, gScan: GuestScan, hScan: HostScan, alignment: Alignment): AsyncGenerator<NewEvent[]> {
  const B = alignment.boundaries;
  const K = B.length;
  const gBound = new Map(B.map((b, k) => [b.gi, k + 1]));
  const hBound = new Map(B.map((b, k) => [b.hi, k + 1]));
  const phases: PhaseStat[] = [{ phase: 0, n: null, name: '', guestEvents: 0, hostEvents: 0 }];
  for (let k = 1; k <= K; k++) phases.push({ phase: k, n: B[k - 1]!.n, name: B[k - 1]!.name, guestEvents: 0, hostEvents: 0 });
  alignment.phases = phases;

  const G: TimedEvent[] = [];
  for await (const batch of guest) for (const e of batch) G.push(e);

  // guest ns → host µs: anchored at the phase's markers, rate between them, then the fitted shift
  const naive: ((t: number) => number)[] = [];
  if (K === 0) {
    const g0 = gScan.firstT ?? 0;
    const g1 = gScan.lastT ?? g0;
    const h0 = hScan.firstT ?? 0;
    const h1 = hScan.lastT ?? h0;
    const rate = g1 > g0 && h1 > h0 ? (h1 - h0) / (g1 - g0) : 1e-3;
    naive.push((t) => h0 + (t - g0) * rate);
  } else
    for (let k = 0; k <= K; k++) {
      const a = B[Math.max(0, k - 1)]!;
      const b = k >= 1 && k < K ? B[k]! : null;
      const r = b && b.g > a.g && b.h > a.h ? (b.h - a.h) / (b.g - a.g) : 1e-3;
      const rate = r > 0.5e-3 && r < 2e-3 ? r : 1e-3;
      naive.push((t) => a.h + (t - a.g) * rate);
    }
  const intervals = guestIntervals(G);
  // host samples by phase: host marker count → phase (the boundary index of the last shared marker)
  const hostPhaseOf = (markersSeen: number): number => {
    let k = 0;
    while (k < K && B[k]!.hi < markersSeen) k++;
    return K === 0 ? 0 : k;
  };
  const byPhase = new Map<number, XlateSample[]>();
  for (const x of hScan.xlate) {
    const k = hostPhaseOf(x.markers);
    let l = byPhase.get(k);
    if (!l) byPhase.set(k, (l = []));
    l.push(x);
  }
  const knots: Knots[] = naive.map((f, k) => trackShift(byPhase.get(k) ?? [], intervals, f));
  const toHost = naive.map((f, k) => {
    const kn = knots[k]!;
    // the shift moves guest events earlier in host time: look it up at the guest event's own (shifted) place
    return (t: number) => {
      const h0 = f(t);
      return h0 + shiftAt(kn, h0 + shiftAt(kn, h0));
    };
  });
  const order: OrderReport = { translations: 0, insideLiveMapping: 0, repaired: 0, shiftsUs: knots.map((kn) => (kn.length ? Math.round(kn[kn.length - 1]![1]) : null)) };
  alignment.order = order;

  // guest side: phase of each event, mapped time, and the maps of each (page, GPA page) ahead
  const gPhase = new Int32Array(G.length);
  const gT = new Float64Array(G.length);
  const mapsAhead = new Map<string, number[]>();
  {
    let k = 0;
    let last = -Infinity;
    for (let i = 0; i < G.length; i++) {
      const e = G[i]!;
      const b = e.ev.kind === 'marker' && e.markerIdx !== undefined ? gBound.get(e.markerIdx) : undefined;
      if (b) k = b;
      gPhase[i] = k;
      const t = e.t === null ? last : toHost[Math.min(k, toHost.length - 1)]!(e.t);
      gT[i] = last = Math.max(last, t);
      if (e.ev.kind === 'iommu.map' && e.ev.size <= 0x1000n * 64n)
        for (let p = 0n; p < (e.ev.size + 0xfffn) >> 12n; p++) {
          const key = `${(e.ev.iova >> 12n) + p}:${(e.ev.gpa >> 12n) + p}`;
          let l = mapsAhead.get(key);
          if (!l) mapsAhead.set(key, (l = []));
          l.push(i);
        }
    }
  }
  // a cut guest log: its end marker goes REPAIR_US before its last event, so that nothing its
  // missing rest could have explained is judged; a complete one ends where it ends
  const guestEndT = gScan.truncated && G.length ? gT[G.length - 1]! - REPAIR_US : Infinity;
  const live = new LiveMappings();

  const h = new Cursor(host[Symbol.asyncIterator]());
  let gi = 0;
  let kg = 0;
  let kh = 0;
  let out: NewEvent[] = [];
  let guestEnded = false;
  let heldAt = -1;
  let hostEnded = false;
  let guestCut = false;
  const emit = (e: TimedEvent, side: 'g' | 'h'): void => {
    out.push(e.ev);
    if (e.ev.kind === 'iommu.map' || e.ev.kind === 'iommu.unmap') live.apply(e.ev);
    if (side === 'h' && e.ev.kind === 'iommu.translate') {
      const r = live.judge(e.ev);
      if (r !== null) {
        order.translations++;
        if (r) order.insideLiveMapping++;
      }
    }
    if (e.ev.kind === 'marker' && e.markerIdx !== undefined && (side === 'g' ? gBound : hBound).has(e.markerIdx)) return;
    if (side === 'g') phases[kg]!.guestEvents++;
    else phases[kh]!.hostEvents++;
  };
  const endGuest = (): void => {
    if (guestEnded) return;
    guestEnded = true;
    out.push(guestEndMarker());
  };
  const boundaryOf = (e: TimedEvent, m: Map<number, number>): number => (e.ev.kind === 'marker' && e.markerIdx !== undefined ? (m.get(e.markerIdx) ?? 0) : 0);
  const takeGuest = (): void => {
    const e = G[gi]!;
    const b = boundaryOf(e, gBound);
    if (b) kg = b;
    gi++;
    emit(e, 'g');
  };
  /** the guest map (index) a host translation needs, if it comes later in the guest's phase and within reach */
  const neededMap = (he: TimedEvent): number => {
    const ev = he.ev;
    if (ev.kind !== 'iommu.translate' || ev.cache === 'pt' || ev.cache === 'fault' || he.t === null) return -1;
    if (live.has(ev.iova, ev.gpa)) return -1;
    const l = mapsAhead.get(`${ev.iova >> 12n}:${ev.gpa >> 12n}`);
    if (!l) return -1;
    for (const i of l) {
      if (i < gi) continue;
      if (gPhase[i] !== kh || gT[i]! > he.t + REPAIR_US) return -1;
      return i;
    }
    return -1;
  };
  /** the guest event is an unmap whose mapping a host translation within reach (same phase) still needs */
  const unmapNeeded = async (i: number): Promise<boolean> => {
    const ev = G[i]!.ev;
    if (ev.kind !== 'iommu.unmap' || ev.size > 0x1000n * 64n) return false;
    const limit = gT[i]! + REPAIR_US;
    const gpas = live.gpasOf(ev.iova, ev.size);
    if (!gpas.size) return false;
    const ahead = await h.lookahead(limit);
    for (const he of ahead) {
      if (boundaryOf(he, hBound)) return false;
      const x = he.ev;
      if (x.kind === 'iommu.translate' && x.iova >> 12n >= ev.iova >> 12n && x.iova < ev.iova + ev.size && gpas.has(`${x.iova >> 12n}:${x.gpa >> 12n}`)) return true;
    }
    return false;
  };

  for (;;) {
    if (out.length >= BATCH) {
      yield out;
      out = [];
    }
    const ge = gi < G.length ? G[gi]! : null;
    const he = await h.peek();
    if (!guestCut && he && he.t !== null && he.t > guestEndT && !boundaryOf(he, hBound)) {
      guestCut = true;
      out.push(guestCutMarker());
    }
    if (!guestEnded && ge === null) endGuest();
    if (ge === null && he === null) break;
    if (he === null && !hostEnded && h.done) {
      hostEnded = true;
      out.push(hostEndMarker());
    }
    const gb = ge ? boundaryOf(ge, gBound) : 0;
    const hb = he ? boundaryOf(he, hBound) : 0;
    if (ge && gb && he && hb && gb === hb) {
      takeGuest();
      emit(h.take(), 'h');
      kh = gb;
      continue;
    }
    let guestFirst: boolean;
    if (!ge) guestFirst = false;
    else if (!he) guestFirst = true;
    else if (gb) guestFirst = false; // the guest waits at the boundary for the host
    else if (hb) guestFirst = true;
    else {
      const need = neededMap(he);
      if (need >= 0) {
        // causality: the translation needs a map the guest makes a little later: the guest goes first
        order.repaired++;
        while (gi <= need) takeGuest();
        continue;
      }
      const tg = gT[gi]!;
      guestFirst = he.t === null ? false : tg < he.t; // a tie goes to the host: the guest log is known to cover it
      if (guestFirst && (await unmapNeeded(gi))) {
        if (heldAt !== gi) order.repaired++;
        heldAt = gi;
        guestFirst = false;
      }
    }
    if (guestFirst) takeGuest();
    else {
      const e = h.take();
      if (hb) kh = hb;
      emit(e, 'h');
    }
  }
  endGuest();
  out.push(endMarker());
  yield out;
}

/**
 * The guest's live mappings in the merged order, for the ordering report: per IOVA page the GPA pages
 * mapped there (an unmap drops the newest, as {@link guestIntervals}).
 */
export class LiveMappings {
  private readonly pages = new Map<bigint, bigint[]>();
  private readonly ever = new Set<bigint>();

  apply(ev: NewEvent): void {
    if (ev.kind !== 'iommu.map' && ev.kind !== 'iommu.unmap') return;
    const n = (ev.size + 0xfffn) >> 12n;
    if (n > 4096n) return;
    for (let i = 0n; i < n; i++) {
      const page = (ev.iova >> 12n) + i;
      if (ev.kind === 'iommu.map') {
        let l = this.pages.get(page);
        if (!l) this.pages.set(page, (l = []));
        l.push((ev.gpa >> 12n) + i);
        this.ever.add(page);
      } else {
        const l = this.pages.get(page);
        l?.pop();
        if (l && !l.length) this.pages.delete(page);
      }
    }
  }

  /**
   * Is IOVA → GPA live? Also true for the base of a large page that holds it: QEMU's amd-iommu prints
   * the translated address of the whole PTE (amdvi_page_walk: `translated_addr = pte & page_mask`),
   * and Linux maps an aligned 8 KiB+ chunk as one large-page PTE.
   */
  has(iova: bigint, gpa: bigint): boolean {
    const page = iova >> 12n;
    const g = gpa >> 12n;
    const l = this.pages.get(page);
    if (!l) return false;
    if (l.includes(g)) return true;
    for (let k = 1n; k <= 9n; k++) {
      const base = page & ~((1n << k) - 1n);
      if (l.includes(g + (page - base)) && this.pages.get(base)?.includes(g)) return true;
    }
    return false;
  }

  /** "page:gpaPage" of every live mapping in [iova, iova+size) */
  gpasOf(iova: bigint, size: bigint): Set<string> {
    const out = new Set<string>();
    for (let p = iova >> 12n; p < (iova + size + 0xfffn) >> 12n; p++) for (const g of this.pages.get(p) ?? []) out.add(`${p}:${g}`);
    return out;
  }

  /** null: not judged (pass-through, a fault, or a page the guest log never maps); else inside a live mapping? */
  judge(ev: NewEvent): boolean | null {
    if (ev.kind !== 'iommu.translate' || ev.cache === 'pt' || ev.cache === 'fault') return null;
    const page = ev.iova >> 12n;
    if (!this.ever.has(page)) return null;
    return this.has(ev.iova, ev.gpa);
  }
}

/** Both files: the alignment to use (phases are filled in by {@link mergeStreams}). */
export function planAlignment(gScan: GuestScan, hScan: HostScan): Alignment {
  const boundaries = alignMarkers(gScan.markers, hScan.markers);
  const usedG = new Set(boundaries.map((b) => b.gi));
  const usedH = new Set(boundaries.map((b) => b.hi));
  return {
    method: boundaries.length ? 'markers' : 'span',
    boundaries,
    guestOnly: gScan.markers.filter((_, i) => !usedG.has(i)).map((m) => m.n),
    hostOnly: hScan.markers.filter((_, i) => !usedH.has(i)).map((m) => m.n),
    phases: [],
    note: boundaries.length
      ? ALIGNMENT_NOTE
      : 'No marker is shared by the two logs: they are aligned only by mapping the guest log\'s first..last timestamps onto the host log\'s, so the cross-side order is an estimate throughout; the checks treat the whole run as one phase.',
  };
}
