// export --format perfetto: a trace as Chrome/Perfetto JSON trace events, loadable in
// ui.perfetto.dev and chrome://tracing. The format is the Trace Event Format ("JSON Object Format":
// {"traceEvents": [...]}), written as a stream: one event at a time into a buffer flushed every
// ~32 KiB, so a 10M-event trace never sits in memory. The flow arrows of the findings' causal chains
// come at the end, from the findings streamed out of the store and one byte per event saying on
// which track its slice went (a trace can hold hundreds of thousands of findings: none is held).
//
// Layout:
//   pid 1 "trace N: name": one thread track per actor — vCPU (cpu0), each vq worker (vq0..vq3),
//     the VMM (QEMU), the vIOMMU, the device IOTLB (the UPDATE / INVALIDATE / BATCH messages vhost
//     receives), swiotlb (slot allocations and bounces) and the checker (findings as instants).
//     Every event but scheduler decisions is a 1-unit slice ("X") on its track; a device handler
//     pass (dev.pass begin/end) is a B/E slice around the worker's accesses.
//   pid 2 "device IOTLB entries": one async span per vhost IOTLB entry, from the UPDATE that
//     inserted it to the event that removed it (INVALIDATE, eviction, teardown), named by device
//     and IOVA. The entries come from the model itself (engine/apply.ts `mutate` folded along), so
//     overlapping entries, whole-entry invalidation and FIFO eviction are exactly vhost's.
//   pid 3 "IOMMU mappings": one async span per iommu.map, until no page it installed is mapped.
//   Flows: for each finding, arrows from each event of its causal chain to the next.
// Time: the event's seq, one microsecond per event (the schema carries no clock, also for imported
// traces, whose order is the importer's estimate of the real order).
import { decodeAt, sizeAt, CodecError } from '../events/binary.js';
import { bdf } from '../events/format.js';
import { eventToJson } from '../events/json.js';
import { type DmaEvent, fieldsOf } from '../events/schema.js';
import { InputError, UsageError } from '../errors.js';
import { mutate } from '../engine/apply.js';
import { pfnOf } from '../model/memory.js';
import { emptyWorld, type World } from '../model/world.js';
import { readChunks } from '../store/db.js';
import { eachFinding } from '../store/findings.js';
import { loadTrace } from './load.js';

export interface TraceEvent {
  ph: string;
  name: string;
  pid: number;
  tid: number;
  ts: number;
  cat?: string;
  dur?: number;
  id?: string | number;
  s?: string;
  bp?: string;
  args?: Record<string, unknown>;
}

export const PID = { actors: 1, iotlb: 2, iommu: 3 } as const;

/** Thread tracks of pid 1, in display order. */
export const TRACKS = [
  { tid: 1, key: 'cpu0', name: 'vCPU 0 (guest driver)' },
  { tid: 2, key: 'vq0', name: 'vq0 worker' },
  { tid: 3, key: 'vq1', name: 'vq1 worker' },
  { tid: 4, key: 'vq2', name: 'vq2 worker' },
  { tid: 5, key: 'vq3', name: 'vq3 worker' },
  { tid: 6, key: 'vmm', name: 'VMM (QEMU)' },
  { tid: 7, key: 'iommu', name: 'vIOMMU' },
  { tid: 8, key: 'devtlb', name: 'device IOTLB (vhost)' },
  { tid: 9, key: 'swiotlb', name: 'swiotlb' },
  { tid: 10, key: 'check', name: 'findings' },
] as const;
const TID = Object.fromEntries(TRACKS.map((t) => [t.key, t.tid])) as Record<string, number>;

/** The track an event is drawn on: the device IOTLB and swiotlb are tracks of their own, the rest go to their actor. */
export function trackOf(ev: DmaEvent): number | null {
  if (ev.kind === 'sched') return null;
  if (ev.kind === 'iotlb.update' || ev.kind === 'iotlb.invalidate' || ev.kind === 'iotlb.batch') return TID.devtlb!;
  if (ev.kind.startsWith('swiotlb.')) return TID.swiotlb!;
  if (ev.kind === 'finding') return TID.check!;
  return TID[ev.actor] ?? TID.check!;
}

/** A slice's args: the event's fields as `log --json` has them, device ids as bus:dev.fn, byte strings cut to 16 bytes. */
function argsOf(ev: DmaEvent): Record<string, unknown> {
  const rec = ev as unknown as Record<string, unknown>;
  const j: Record<string, unknown> = { seq: ev.seq, actor: ev.actor };
  if (ev.cause) j.cause = ev.cause;
  let full: Record<string, unknown> | undefined;
  for (const [name, spec] of fieldsOf(ev.kind)) {
    const v = rec[name];
    if (name === 'dev' && spec === 'u16') j.dev = bdf(v as number);
    else if (spec === 'u64') j[name] = '0x' + (v as bigint).toString(16);
    else if (spec === 'bytes') {
      const b = v as Uint8Array;
      // cut before converting: a packet can be 64 KiB
      j[name] = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, 16)).toString('hex') + (b.length > 16 ? `… (${b.length} bytes)` : '');
    } else if (spec === 'descs' || spec === 'segs') j[name] = (full ??= eventToJson(ev))[name];
    else j[name] = v;
  }
  return j;
}

const hex = (v: bigint) => '0x' + v.toString(16);

interface OpenMap {
  seq: number;
  dev: number;
  iova: bigint;
  size: bigint;
  name: string;
  id: string;
  begin: TraceEvent;
}

/**
 * Span ids keyed by device and IOVA, so that the successive lifetimes of one IOVA share a track; a
 * second span of the same IOVA while one is open (vhost lets overlapping entries coexist) takes the
 * next free slot, i.e. a track of its own, so spans never interleave on a track.
 */
class Slots {
  private readonly busy = new Map<string, Set<number>>();
  take(key: string): string {
    let b = this.busy.get(key);
    if (!b) this.busy.set(key, (b = new Set()));
    let k = 0;
    while (b.has(k)) k++;
    b.add(k);
    return `${key}/${k}`;
  }
  give(id: string): void {
    const at = id.lastIndexOf('/');
    const b = this.busy.get(id.slice(0, at));
    b?.delete(Number(id.slice(at + 1)));
    if (b && !b.size) this.busy.delete(id.slice(0, at));
  }
}

/**
 * Tracks the lifetimes of device-IOTLB entries and IOMMU mappings along a fold: after each event
 * that can change them, the model's state is compared with the spans open so far.
 */
class Lifetimes {
  private readonly iotlb = new Map<number, Map<number, { name: string; id: string; begin: TraceEvent }>>(); // dev → UPDATE seq → span
  private readonly maps = new Map<number, OpenMap>(); // iommu.map seq → span
  private readonly slots = new Slots();
  /** before the exported range nothing is written, but the spans are followed (start() opens those alive then) */
  private live: boolean;
  constructor(
    private readonly out: (e: TraceEvent) => void,
    live = true,
  ) {
    this.live = live;
  }

  private emit(e: TraceEvent): void {
    if (this.live) this.out(e);
  }

  /** The exported range begins at ts: the spans alive then begin there. */
  start(ts: number): void {
    this.live = true;
    for (const open of this.iotlb.values()) for (const span of open.values()) this.out({ ...span.begin, ts });
    for (const m of this.maps.values()) this.out({ ...m.begin, ts });
  }

  after(ev: DmaEvent, w: World): void {
    const ts = ev.seq;
    switch (ev.kind) {
      case 'iotlb.update':
      case 'iotlb.invalidate':
      case 'iotlb.batch':
      case 'fault':
      case 'dev.pass':
      case 'dev.teardown':
      case 'iommu.inv':
        this.diffIotlb(w, ts);
        break;
    }
    if (ev.kind === 'iommu.map' || ev.kind === 'iommu.unmap' || ev.kind === 'dev.teardown') this.diffMaps(w, ev, ts);
  }

  private diffIotlb(w: World, ts: number): void {
    for (const [dev, d] of w.devices) {
      let open = this.iotlb.get(dev);
      if (!open) this.iotlb.set(dev, (open = new Map()));
      const now = new Set<number>();
      for (const e of d.iotlb.entries) {
        now.add(e.seq);
        if (!open.has(e.seq)) {
          const name = `${bdf(dev)} iova ${hex(e.start)}`;
          const id = this.slots.take(`iotlb:${bdf(dev)}:${hex(e.start)}`);
          const begin: TraceEvent = { ph: 'b', cat: 'iotlb', name, id, pid: PID.iotlb, tid: 0, ts, args: { dev: bdf(dev), start: hex(e.start), last: hex(e.last), uaddr: hex(e.uaddr), perm: e.perm, update: e.seq } };
          open.set(e.seq, { name, id, begin });
          this.emit(begin);
        }
      }
      for (const [seq, span] of open)
        if (!now.has(seq)) {
          open.delete(seq);
          this.slots.give(span.id);
          this.emit({ ph: 'e', cat: 'iotlb', name: span.name, id: span.id, pid: PID.iotlb, tid: 0, ts });
        }
    }
  }

  private diffMaps(w: World, ev: DmaEvent, ts: number): void {
    if (ev.kind === 'iommu.map') {
      const name = `${bdf(ev.dev)} iova ${hex(ev.iova)}`;
      const id = this.slots.take(`map:${bdf(ev.dev)}:${hex(ev.iova)}`);
      const begin: TraceEvent = { ph: 'b', cat: 'iommu', name, id, pid: PID.iommu, tid: 0, ts, args: { dev: bdf(ev.dev), iova: hex(ev.iova), gpa: hex(ev.gpa), size: hex(ev.size), perm: ev.perm, map: ev.seq } };
      this.maps.set(ev.seq, { seq: ev.seq, dev: ev.dev, iova: ev.iova, size: ev.size, name, id, begin });
      this.emit(begin);
    }
    const dev = 'dev' in ev ? (ev.dev as number) : -1;
    for (const m of [...this.maps.values()]) {
      if (m.dev !== dev || m.seq === ev.seq) continue;
      if (ev.kind !== 'dev.teardown' && 'iova' in ev && 'size' in ev) {
        const lo = ev.iova as bigint;
        const hi = lo + (ev.size as bigint);
        if (hi <= m.iova || lo >= m.iova + m.size) continue; // does not touch this mapping
      }
      if (!this.stillMapped(w, m)) {
        this.maps.delete(m.seq);
        this.slots.give(m.id);
        this.emit({ ph: 'e', cat: 'iommu', name: m.name, id: m.id, pid: PID.iommu, tid: 0, ts });
      }
    }
  }

  private stillMapped(w: World, m: OpenMap): boolean {
    const t = w.devices.get(m.dev)?.iommu;
    if (!t) return false;
    for (let off = 0n; off < m.size; off += 0x1000n) if (t.get(pfnOf(m.iova + off))?.seq === m.seq) return true;
    return false;
  }

  /** Spans still open when the trace ends are closed at its last event. */
  close(ts: number): void {
    for (const open of this.iotlb.values()) for (const span of open.values()) this.emit({ ph: 'e', cat: 'iotlb', name: span.name, id: span.id, pid: PID.iotlb, tid: 0, ts });
    for (const m of this.maps.values()) this.emit({ ph: 'e', cat: 'iommu', name: m.name, id: m.id, pid: PID.iommu, tid: 0, ts });
  }
}

/** what is written at once (see the loop) */
const PIECE = 1 << 15;

export interface PerfettoOptions {
  /** called every chunk with the events written so far and the trace's length */
  progress?: (done: number, total: number) => void;
  /**
   * Only the events from..to (a window of a long trace: Perfetto's UI loads JSON of a few hundred MB
   * at most, about 250 bytes per event). The trace is still followed from its first event, so the
   * IOTLB entries and IOMMU mappings alive at `from` begin there.
   */
  from?: number;
  to?: number;
}

/**
 * Writes trace `id` as Trace Event Format JSON through `write` (which may return a promise for
 * back-pressure). Returns the number of trace events written.
 */
export async function exportPerfetto(dbPath: string, id: string, write: (chunk: string) => void | Promise<void>, opts: PerfettoOptions = {}): Promise<{ trace: number; events: number; traceEvents: number }> {
  const { db, trace } = loadTrace(dbPath, id);
  try {
    const from = opts.from ?? 1;
    const to = Math.min(opts.to ?? trace.events, trace.events);
    if (from < 1 || from > to) throw new UsageError(`--from ${from} --to ${opts.to ?? trace.events}: not a range of trace ${trace.id} (${trace.events} events)`);
    // seq → tid of its slice (0: none), for the causal-chain arrows drawn at the end: one byte per
    // event (10 MB at 10M events) instead of holding every finding and its chain
    const trackAt = new Uint8Array(to + 1);
    let buf = '{"displayTimeUnit":"ns","otherData":' + JSON.stringify({ generator: 'dmareplay', trace: trace.id, name: trace.name, source: trace.source, clock: 'event seq (1 us per event)', from, to }) + ',"traceEvents":[\n';
    let count = 0;
    const emit = (e: TraceEvent) => {
      buf += (count ? ',\n' : '') + JSON.stringify(e);
      count++;
    };
    const meta = (pid: number, tid: number, name: 'process_name' | 'thread_name' | 'process_sort_index' | 'thread_sort_index', args: Record<string, unknown>) => emit({ ph: 'M', name, pid, tid, ts: 0, args });
    meta(PID.actors, 0, 'process_name', { name: `trace ${trace.id}: ${trace.name}` });
    meta(PID.iotlb, 0, 'process_name', { name: 'device IOTLB entries (vhost), by IOVA' });
    meta(PID.iommu, 0, 'process_name', { name: 'IOMMU mappings (guest page tables), by IOVA' });
    for (const [pid, i] of [[PID.actors, 0], [PID.iotlb, 1], [PID.iommu, 2]] as const) meta(pid, 0, 'process_sort_index', { sort_index: i });
    for (const t of TRACKS) {
      meta(PID.actors, t.tid, 'thread_name', { name: t.name });
      meta(PID.actors, t.tid, 'thread_sort_index', { sort_index: t.tid });
    }
    const life = new Lifetimes(emit, from === 1);
    const world = emptyWorld();
    const owned = new Set<Uint8Array>();
    const openPass = new Map<number, number>(); // tid → open B/E depth
    let last = 0;
    for (const c of readChunks(db, trace, 1, to)) {
      let off = 0;
      for (let i = 0; i < c.n && c.seq0 + i <= to; i++) {
        const ev = decodeAt(c.data, off, c.seq0 + i);
        off += sizeAt(c.data, off);
        last = ev.seq;
        mutate(world, ev, owned);
        if (ev.seq === from && from > 1) life.start(from);
        const tid = ev.seq >= from ? trackOf(ev) : null;
        if (tid !== null) {
          if (ev.kind === 'dev.pass') {
            if (ev.begin) {
              emit({ ph: 'B', cat: 'pass', name: 'handler pass', pid: PID.actors, tid, ts: ev.seq, args: { q: ev.q, begin: ev.seq } });
              openPass.set(tid, (openPass.get(tid) ?? 0) + 1);
            } else if (openPass.get(tid)) {
              emit({ ph: 'E', pid: PID.actors, tid, ts: ev.seq, name: 'handler pass', cat: 'pass' });
              openPass.set(tid, openPass.get(tid)! - 1);
            }
          } else if (ev.kind === 'finding') {
            emit({ ph: 'i', s: 't', cat: 'finding', name: ev.cls, pid: PID.actors, tid, ts: ev.seq, args: { seq: ev.seq, message: ev.message, chain: ev.chain } });
          } else {
            emit({ ph: 'X', cat: ev.kind.split('.')[0]!, name: ev.kind, pid: PID.actors, tid, ts: ev.seq, dur: 1, args: argsOf(ev) });
            trackAt[ev.seq] = tid;
          }
        }
        life.after(ev, world);
        // written in pieces of ~32 KiB: a longer string is a V8 large object, allocated in the old
        // generation and only freed by a full GC (10M events: gigabytes of them before one came)
        if (buf.length >= PIECE) {
          await write(buf);
          buf = '';
        }
      }
      opts.progress?.(Math.min(c.seq0 + c.n - 1, to), to);
    }
    for (const [tid, depth] of openPass) for (let k = 0; k < depth; k++) emit({ ph: 'E', pid: PID.actors, tid, ts: last + 1, name: 'handler pass', cat: 'pass' });
    life.close(last + 1);
    // flow arrows along each causal chain, through the chain events that have a slice
    for (const f of eachFinding(db, trace)) {
      const steps = [...new Set(f.chain)].sort((a, b) => a - b).filter((s) => s >= 1 && s <= to && trackAt[s]! > 0);
      if (steps.length < 2) continue;
      // a flow id must be a number (Perfetto's JSON importer reads a string flow id as hex): the finding's seq
      steps.forEach((s, k) =>
        emit({ ph: k === 0 ? 's' : k === steps.length - 1 ? 'f' : 't', bp: 'e', cat: 'chain', name: `${f.class} #${f.seq}`, id: f.seq, pid: PID.actors, tid: trackAt[s]!, ts: s + 0.5 }),
      );
      // in pieces too: a trace can hold hundreds of thousands of findings
      if (buf.length >= PIECE) {
        await write(buf);
        buf = '';
      }
    }
    buf += '\n]}\n';
    await write(buf);
    return { trace: trace.id, events: last, traceEvents: count };
  } catch (e) {
    if (e instanceof CodecError) throw new InputError(`trace ${trace.id} is corrupt: ${e.message}`);
    throw e;
  } finally {
    db.close();
  }
}
