// The canonical projection of a trace: what the guest and the device can observe, independent of
// the DMA path. Raw events differ between paths by design (IOTLB traffic, bounce copies, IOVAs);
// per guest operation the projection does not, unless something is wrong:
// - the bytes the device read from the request's buffers, in order;
// - the bytes it wrote into them, and the used length it reported;
// - the bytes the guest CPU read back after completion (after the unmap/sync that made them visible);
// - the order the operation completed in on its queue.
// Interrupt counts depend on timing (EVENT_IDX suppression) and are not part of it.
import { createHash } from 'node:crypto';
import { decodeAt, sizeAt } from '../events/binary.js';
import { Pipeline } from '../engine/pipeline.js';
import { fold, type RecordedChunk } from '../engine/replay.js';
import type { DmaEvent } from '../events/schema.js';
import { readMem } from '../model/memory.js';
import type { World } from '../model/world.js';

export interface OpProjection {
  op: number;
  dev: number;
  what: string;
  /** hash of the bytes the device read from buffers (ring metadata and indirect tables excluded) */
  deviceRead: string;
  deviceReadBytes: number;
  /** hash of the bytes the device wrote */
  deviceWrote: string;
  usedLen: number;
  /** hash of the bytes the guest read back */
  guestRead: string;
  /** position among completions on its queue */
  completion: number;
  completed: boolean;
  /** seqs where each part was observed (for bisect's report): the intent, the used entry, the last device access */
  seqs: { intent: number; used: number; lastAccess: number; guestRead: number };
  /** the device accesses behind it (seq, dma, gpa, len, dir), to name the one that went wrong */
  accesses: { seq: number; dma: bigint; gpa: bigint; len: number; dir: 'read' | 'write'; entry: number }[];
  /** the bytes themselves, kept only for the op asked for */
  bytes?: { deviceRead: Uint8Array[]; deviceWrote: Uint8Array[]; guestRead: Uint8Array[] };
}

/** An operation as issued, before anything was observed (or never issued: intent seq 0). */
export function emptyProjection(op: number, dev = 0, what = '', intent = 0): OpProjection {
  return {
    op,
    dev,
    what,
    deviceRead: '',
    deviceReadBytes: 0,
    deviceWrote: '',
    usedLen: 0,
    guestRead: '',
    completion: -1,
    completed: false,
    seqs: { intent, used: 0, lastAccess: 0, guestRead: 0 },
    accesses: [],
  };
}

interface Pending {
  reads: Uint8Array[];
  writes: Uint8Array[];
  accesses: OpProjection['accesses'];
}

const digest = (parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 32);
};

/** Folds a trace and returns one projection per guest operation, by op number (with the bytes of op `keep`). */
export function project(chunks: Iterable<RecordedChunk>, keep?: number): Map<number, OpProjection> {
  const p = projector(keep, false);
  fold(chunks, null, { noLiveness: true, onEvent: p });
  return p.ops;
}

/**
 * One operation's projection, folding only a window of the trace: from a checkpoint (null: the
 * start) through `chunks`, which must start right after it and reach the operation's last event.
 * The checkpoint must come before everything the projection depends on (op-table.ts `from`): the
 * operation's intent and the pass boundary its device accesses are counted from. A pass already
 * under way at the checkpoint collects from the checkpoint on. `also` sees every event with the world.
 */
export function projectWindow(
  start: { world: World; seq: number } | null,
  chunks: Iterable<RecordedChunk>,
  op: number,
  to: number,
  also?: (ev: DmaEvent, w: World) => void,
): { projection: OpProjection | undefined; world: World } {
  const p = projector(op, start !== null);
  const pipe = new Pipeline({
    judge: null,
    mode: 'fold',
    world: start?.world,
    seq: start?.seq ?? 0,
    liveness: false,
    event: (ev, w) => {
      p(ev, w);
      also?.(ev, w);
    },
  });
  const from = start?.seq ?? 0;
  outer: for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      if (seq > to) break outer;
      const size = sizeAt(c.data, off);
      if (seq > from) pipe.put(decodeAt(c.data, off, seq));
      off += size;
    }
  }
  return { projection: p.ops.get(op), world: pipe.world };
}

type Projector = ((ev: DmaEvent, w: World) => void) & { ops: Map<number, OpProjection> };

function projector(keep: number | undefined, partial: boolean): Projector {
  const ops = new Map<number, OpProjection>();
  const opOfIntent = new Map<number, number>();
  const pending = new Map<number, Pending>(); // by queue
  const completions = new Map<number, number>();
  const guestReads = new Map<number, Uint8Array[]>();
  let lastReaped: number | undefined;
  const opOfChain = (w: World, q: number, id: number) => {
    const intent = w.rings[q]?.extra.get(id)?.op;
    return intent === undefined ? undefined : opOfIntent.get(intent);
  };
  const onEvent = (ev: DmaEvent, w: World) => {
      switch (ev.kind) {
        case 'intent':
          opOfIntent.set(ev.seq, ev.op);
          ops.set(ev.op, emptyProjection(ev.op, ev.dev, ev.what, ev.seq));
          return;
        case 'dev.pass':
          if (ev.begin) pending.set(ev.q, { reads: [], writes: [], accesses: [] });
          return;
        case 'dev.access': {
          if (ev.area !== 'buf') return;
          let p = pending.get(ev.q);
          if (!p && partial) pending.set(ev.q, (p = { reads: [], writes: [], accesses: [] }));
          if (!p) return;
          (ev.dir === 'read' ? p.reads : p.writes).push(ev.dir === 'read' ? readMem(w.mem, ev.gpa, ev.len) : ev.data);
          p.accesses.push({ seq: ev.seq, dma: ev.dma, gpa: ev.gpa, len: ev.len, dir: ev.dir, entry: ev.entry });
          return;
        }
        case 'vring.used': {
          const p = pending.get(ev.q) ?? { reads: [], writes: [], accesses: [] };
          pending.set(ev.q, { reads: [], writes: [], accesses: [] });
          const op = opOfChain(w, ev.q, ev.id);
          const o = op === undefined ? undefined : ops.get(op);
          if (!o) return;
          const n = completions.get(ev.q) ?? 0;
          completions.set(ev.q, n + 1);
          o.deviceRead = digest(p.reads);
          o.deviceReadBytes = p.reads.reduce((s, b) => s + b.length, 0);
          o.deviceWrote = digest(p.writes);
          o.usedLen = ev.len;
          o.completion = n;
          o.completed = true;
          o.seqs.used = ev.seq;
          o.seqs.lastAccess = p.accesses.at(-1)?.seq ?? 0;
          if (keep === undefined || op === keep) o.accesses = p.accesses; // long traces: only what is asked for
          if (op === keep) o.bytes = { deviceRead: p.reads, deviceWrote: p.writes, guestRead: [] };
          return;
        }
        case 'cpu.read': {
          // the guest reads the op's buffers right after it reaped that op (the getbuf is its cause)
          const op = lastReaped;
          if (op === undefined) return;
          const list = guestReads.get(op) ?? [];
          list.push(readMem(w.mem, ev.gpa, ev.len));
          guestReads.set(op, list);
          const o = ops.get(op);
          if (o) {
            o.guestRead = digest(list);
            o.seqs.guestRead = ev.seq;
            if (op === keep) (o.bytes ??= { deviceRead: [], deviceWrote: [], guestRead: [] }).guestRead = list;
          }
          return;
        }
        case 'vring.getbuf': {
          // extra has already dropped the chain: find the op through the getbuf's cause (the intent)
          lastReaped = opOfIntent.get(ev.cause);
          return;
        }
        default:
          return;
      }
  };
  return Object.assign(onEvent, { ops });
}
