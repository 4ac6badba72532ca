// state: the world at an event, from the nearest checkpoint; optionally the bytes at a GPA or IOVA
// as the guest's IOMMU and as the device's IOTLB would resolve them.
import { UsageError } from '../errors.js';
import { eventToJson, hex } from '../events/json.js';
import { JUDGE } from '../check/index.js';
import { seek } from '../engine/seek.js';
import { stateHash, worldToPlain } from '../engine/snapshot.js';
import { lookup } from '../model/device-iotlb.js';
import { hvaToGpa } from '../model/memtable.js';
import { readMem } from '../model/memory.js';
import { iommuTranslate } from '../model/viommu.js';
import type { DeviceState, World } from '../model/world.js';
import { checkpointAt, readChunks } from '../store/db.js';
import { corruptAsInput, type Loaded, loadTrace, withTrace } from './load.js';
import { findKind } from '../store/scan.js';
import { kindMatcher } from '../events/format.js';
import { KIND_NAMES, KINDS } from '../events/schema.js';

export interface StateQuery {
  at: number;
  /** instead of --at itself: the previous / next event of these kinds (a glob like iotlb.invalidate or iommu.*) */
  prev?: string;
  next?: string;
  gpa?: bigint;
  iova?: bigint;
  len?: number;
}

export interface MemView {
  gpa: string;
  bytes: string;
}

/**
 * A trace held open for seeking: `at` answers a state query as `stateAt` does, without opening the
 * database, reading the trace row and preparing its statements again each time (a timeline, a
 * report or a tool of your own that seeks many times). It sees the trace as it was when opened.
 */
export interface TraceStates {
  at(query: StateQuery): StateView;
  close(): void;
}

export type StateView = ReturnType<typeof stateOf>;

export function openStates(dbPath: string, id: string): TraceStates {
  const l = loadTrace(dbPath, id);
  let open = true;
  return {
    at(query) {
      if (!open) throw new UsageError(`trace ${l.trace.id} of ${dbPath} was closed`);
      return corruptAsInput(l, () => stateOf(l, query));
    },
    close() {
      if (open) l.db.close();
      open = false;
    },
  };
}

/** The state at one event: opens the trace, answers, closes it. */
export function stateAt(dbPath: string, id: string, query: StateQuery): StateView {
  return withTrace(dbPath, id, (l) => stateOf(l, query));
}

function stateOf({ db, trace }: Loaded, query: StateQuery) {
  let q = query;
  if (q.at > trace.events)
    throw new UsageError(`--at ${q.at} is past the end of trace ${trace.id} (${trace.events} events${trace.complete ? '' : ', incomplete'})`);
  const glob = q.prev ?? q.next;
  if (glob !== undefined) {
    const match = kindMatcher(glob);
    const codes = new Set(KIND_NAMES.filter(match).map((k) => KINDS[k].code));
    if (!codes.size) throw new UsageError(`no event kind matches ${JSON.stringify(glob)}`);
    const found = findKind(db, trace, q.at, codes, q.prev !== undefined ? 'prev' : 'next');
    if (found === null) throw new UsageError(`no ${glob} event ${q.prev !== undefined ? 'before' : 'after'} #${q.at} in trace ${trace.id}`);
    q = { ...q, at: found };
  }
  const checkpoint = checkpointAt(db, trace.id, q.at, trace.events);
  // the checkpoint was decoded for this call alone: the seek folds its world in place
  // from the event after the checkpoint, or the event at --at itself when the checkpoint is right after it
  const r = seek(checkpoint, readChunks(db, trace, Math.min((checkpoint?.seq ?? 0) + 1, q.at), q.at), q.at, JUDGE, true);
  const len = q.len ?? 64;
  const memory: Record<string, unknown> = {};
  if (q.gpa !== undefined) memory.gpa = { gpa: hex(q.gpa), bytes: hexOf(readMem(r.world.mem, q.gpa, len)) };
  if (q.iova !== undefined) memory.iova = viewIova(r.world, q.iova, len);
  const plain = worldToPlain(r.world);
  return {
    trace: trace.id,
    at: q.at,
    event: r.event && eventToJson(r.event),
    fromCheckpoint: r.fromCheckpoint,
    folded: r.folded,
    stateHash: stateHash(r.world, plain),
    world: r.world,
    plain,
    memory,
  };
}

/** One IOVA, both ways, for each device: the guest's IOMMU page tables and the device's cached translation. */
function viewIova(w: World, iova: bigint, len: number) {
  return [...w.devices.values()].filter((d) => d.translate !== 'gpa').map((d) => viewIovaOf(w, d, iova, len));
}

function viewIovaOf(w: World, d: DeviceState, iova: bigint, len: number) {
  const t = iommuTranslate(d.iommu, iova);
  const e = lookup(d.iotlb, iova);
  const devGpa = e ? hvaToGpa(w.memTable, e.uaddr + (iova - e.start)) : null;
  return {
    dev: d.dev,
    iova: hex(iova),
    iommu: t ? { gpa: hex(t.gpa), perm: t.perm, mappedAt: t.seq, bytes: hexOf(readMem(w.mem, t.gpa, len)) } : null,
    deviceIotlb: e && devGpa !== null ? { gpa: hex(devGpa), hva: hex(e.uaddr + (iova - e.start)), entry: e.seq, bytes: hexOf(readMem(w.mem, devGpa, len)) } : null,
    coherent: !!t && !!e && devGpa === t.gpa ? true : !t && !e,
  };
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
