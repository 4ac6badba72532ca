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
  type GuestScan,
  GuestConverter,
  type HostScan,
  HostConverter,
  MARKER_END,
  MARKER_GUEST_END,
  type MarkerInfo,
  type TimedEvent,
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
  'an estimate (the guest writes its marker some milliseconds before QEMU logs the config write). The checks judge a host event against the guest state over its phase and the next, never against that interleaving.';

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
}

const endMarker = (): NewEvent => ({ kind: 'marker', actor: 'vmm', cause: 0, n: MARKER_END, name: END_NAME, side: 'host' });
const guestEndMarker = (): NewEvent => ({ kind: 'marker', actor: 'cpu0', cause: 0, n: MARKER_GUEST_END, name: GUEST_END_NAME, side: 'guest' });

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
 * Merges the two sides phase by phase (see the file comment). `alignment.phases` is filled in while
 * streaming. Ends with the end-of-guest-log marker (where the guest log ran out) and the end-of-logs
 * marker.
 */
export async function* mergeStreams(guest: AsyncGenerator<TimedEvent[]>, host: AsyncGenerator<TimedEvent[]>, gScan: GuestScan, hScan: HostScan, alignment: Alignment): AsyncGenerator<NewEvent[]> {
  const B = alignment.boundaries;
  const K = B.length;
  const gBound = new Map(B.map((b, k) => [b.gi, k + 1]));
  const hBound = new Map(B.map((b, k) => [b.hi, k + 1]));
  const phases: PhaseStat[] = [{ phase: 0, n: null, name: '', guestEvents: 0, hostEvents: 0 }];
  for (let k = 1; k <= K; k++) phases.push({ phase: k, n: B[k - 1]!.n, name: B[k - 1]!.name, guestEvents: 0, hostEvents: 0 });
  alignment.phases = phases;

  // guest ns → host µs, per phase
  const span = (): ((t: number) => number) => {
    const g0 = gScan.firstT ?? 0;
    const g1 = gScan.lastT ?? g0;
    const h0 = hScan.firstT ?? 0;
    const h1 = hScan.lastT ?? h0;
    const rate = g1 > g0 && h1 > h0 ? (h1 - h0) / (g1 - g0) : 1e-3;
    return (t) => h0 + (t - g0) * rate;
  };
  const maps: ((t: number) => number)[] = [];
  if (K === 0) maps.push(span());
  else
    for (let k = 0; k <= K; k++) {
      const a = B[Math.max(0, k - 1)]!;
      const b = k >= 1 && k < K ? B[k]! : null;
      const rate = b && b.g > a.g && b.h > a.h ? (b.h - a.h) / (b.g - a.g) : 1e-3;
      const anchor = k === 0 ? B[0]! : a;
      maps.push((t) => anchor.h + (t - anchor.g) * rate);
    }

  const g = new Cursor(guest[Symbol.asyncIterator]());
  const h = new Cursor(host[Symbol.asyncIterator]());
  let kg = 0;
  let kh = 0;
  let lastG = 0;
  let lastH = 0;
  let out: NewEvent[] = [];
  let guestEnded = false;
  const emit = (e: TimedEvent, side: 'g' | 'h'): void => {
    out.push(e.ev);
    if (e.ev.kind === 'marker' && e.markerIdx !== undefined && (side === 'g' ? gBound : hBound).has(e.markerIdx)) return;
    if (side === 'g') phases[kg]!.guestEvents++;
    else phases[kh]!.hostEvents++;
  };
  const boundaryOf = (e: TimedEvent, m: Map<number, number>): number => (e.ev.kind === 'marker' && e.markerIdx !== undefined ? (m.get(e.markerIdx) ?? 0) : 0);

  for (;;) {
    if (out.length >= BATCH) {
      yield out;
      out = [];
    }
    const ge = await g.peek();
    const he = await h.peek();
    if (ge === null && !guestEnded) {
      guestEnded = true;
      out.push(guestEndMarker());
    }
    if (ge === null && he === null) break;
    const gb = ge ? boundaryOf(ge, gBound) : 0;
    const hb = he ? boundaryOf(he, hBound) : 0;
    if (ge && gb && he && hb && gb === hb) {
      emit(g.take(), 'g');
      emit(h.take(), 'h');
      kg = kh = gb;
      continue;
    }
    let takeGuest: boolean;
    if (!ge) takeGuest = false;
    else if (!he) takeGuest = true;
    else if (gb) takeGuest = false; // the guest waits at the boundary for the host
    else if (hb) takeGuest = true;
    else {
      if (ge.t !== null) lastG = maps[Math.min(kg, maps.length - 1)]!(ge.t);
      if (he.t !== null) lastH = he.t;
      takeGuest = lastG < lastH; // a tie goes to the host: the guest log is known to cover it
    }
    if (takeGuest) {
      const e = g.take();
      if (gb) kg = gb; // a boundary the host never reaches (only if the file changed since the scan)
      emit(e, 'g');
    } else {
      const e = h.take();
      if (hb) kh = hb;
      emit(e, 'h');
    }
  }
  out.push(endMarker());
  yield out;
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
