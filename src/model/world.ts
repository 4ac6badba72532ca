// The simulated world: everything a guest, a device, the VMM and the vIOMMU can observe or keep.
// It is changed only by engine/apply.ts, one event at a time, so a trace folded from its events
// and the run that recorded it reach the same world. Maps keep insertion order, which is the
// order of the events that inserted into them, so iteration is defined by the trace.
import type { Desc } from '../events/schema.js';
import type { DeviceIotlb } from './device-iotlb.js';
import type { IovaRange } from './iova.js';
import type { Pages } from './memory.js';
import type { Region } from './memtable.js';
import type { IommuTable } from './viommu.js';
import type { DirName, PathName } from './types.js';

export interface RingState {
  q: number;
  num: number;
  /** ring addresses as the device sees them (GPA on the direct path, IOVA in IOTLB mode) */
  desc: bigint;
  avail: bigint;
  used: bigint;
  descGpa: bigint;
  availGpa: bigint;
  usedGpa: bigint;
  // driver side (virtio_ring.c)
  free: number[];
  /** desc_extra: the driver's shadow of each posted chain, by head; unmaps use this, never the ring */
  extra: Map<number, Desc[]>;
  availIdx: number;
  lastUsed: number;
  // device side (vhost worker)
  lastAvail: number;
  usedIdx: number;
  kicked: boolean;
  parked: boolean;
}

export interface DmaMapping {
  phys: bigint;
  size: number;
  dir: DirName;
  seq: number;
}

export interface PendingInvalidation {
  iova: bigint;
  size: bigint;
  /** seq of the iommu.inv whose notifier asked for it */
  req: number;
  /** device pass count at which the VMM delivers it (later than now only under a delay fault) */
  due: number;
}

export interface World {
  path: PathName;
  workload: string;
  mem: Pages;
  memTable: Region[];
  iommu: IommuTable;
  iotlb: DeviceIotlb;
  rings: RingState[];
  dmaLive: Map<bigint, DmaMapping>;
  iovas: IovaRange[];
  /** the VMM: invalidations it owes vhost, and MISS messages (by seq) it has not read yet */
  vmm: { invals: PendingInvalidation[]; toRead: number[] };
  /** iova page → seq of the iommu.unmap that last removed it (for causal chains) */
  unmapSeq: Map<bigint, number>;
  passes: number;
  inPass: boolean;
  guest: { ops: number; irq: boolean };
  findings: number;
}

export function emptyWorld(): World {
  return {
    path: 'direct',
    workload: '',
    mem: new Map(),
    memTable: [],
    iommu: new Map(),
    iotlb: { entries: [], pending: [] },
    rings: [],
    dmaLive: new Map(),
    iovas: [],
    vmm: { invals: [], toRead: [] },
    unmapSeq: new Map(),
    passes: 0,
    inPass: false,
    guest: { ops: 0, irq: false },
    findings: 0,
  };
}

/** A private, mutable copy for a replay batch. Pages are shared: memory.ts copies before writing. */
export function cloneWorld(w: World): World {
  return {
    ...w,
    mem: new Map(w.mem),
    memTable: w.memTable.map((r) => ({ ...r })),
    iommu: new Map(w.iommu),
    iotlb: { entries: w.iotlb.entries.map((e) => ({ ...e })), pending: w.iotlb.pending.map((m) => ({ ...m })) },
    rings: w.rings.map((r) => ({
      ...r,
      free: [...r.free],
      extra: new Map([...r.extra].map(([k, v]) => [k, v.map((d) => ({ ...d }))])),
    })),
    dmaLive: new Map(w.dmaLive),
    iovas: w.iovas.map((r) => ({ ...r })),
    vmm: { invals: w.vmm.invals.map((i) => ({ ...i })), toRead: [...w.vmm.toRead] },
    unmapSeq: new Map(w.unmapSeq),
    guest: { ...w.guest },
  };
}
