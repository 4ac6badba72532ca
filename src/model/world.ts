// The simulated world: everything a guest, its devices, the VMM and the vIOMMU can observe or keep.
// It is changed only by engine/apply.ts, one event at a time, so a trace folded from its events
// and the run that recorded it reach the same world. Maps keep insertion order, which is the
// order of the events that inserted into them, so iteration is defined by the trace.
import type { Desc, Seg } from '../events/schema.js';
import type { DeviceIotlb } from './device-iotlb.js';
import type { IovaRange } from './iova.js';
import type { Pages } from './memory.js';
import type { Region } from './memtable.js';
import type { SwiotlbState } from './swiotlb.js';
import type { DirName, PathName, PermName, TranslateMode } from './types.js';
import type { IommuTable } from './viommu.js';
import type { MAP_KINDS } from '../events/schema.js';
import { DEFAULT_VARIANTS, type Variants } from './variants.js';
import { cloneVirtioIommu, emptyVirtioIommu, type VirtioIommuState } from './virtio-iommu.js';
import type { DmaLive } from './dma-live.js';

export interface RingState {
  q: number;
  dev: number;
  num: number;
  packed: boolean;
  eventIdx: boolean;
  /** ring addresses as the device sees them (GPA on the direct path, IOVA in IOTLB mode) */
  desc: bigint;
  avail: bigint;
  used: bigint;
  descGpa: bigint;
  availGpa: bigint;
  usedGpa: bigint;
  // driver side (virtio_ring.c)
  free: number[];
  /** desc_extra: the driver's shadow of each posted chain, by id; unmaps use this, never the ring */
  extra: Map<number, Posted>;
  availIdx: number;
  lastUsed: number;
  /** packed: driver's avail wrap counter (starts at 1) and the device's used wrap counter */
  availWrap: number;
  usedWrap: number;
  lastUsedWrap: number;
  // device side (vhost worker)
  lastAvail: number;
  usedIdx: number;
  /** requests completed on this queue so far, whatever the ring layout */
  served: number;
  kicked: boolean;
  parked: boolean;
  /** stopped by vq_err(): the device processes nothing more */
  broken: boolean;
  /** the device processes the queue only while enabled (queue-life.ts; true unless a vq.enable/vq.reset said otherwise) */
  enabled: boolean;
  /** vq->meta_iotlb: seq of the UPDATE whose entry is cached for desc/avail/used, 0 = not cached */
  meta: { desc: number; avail: number; used: number };
}

export interface Posted {
  chain: Desc[];
  /** the GPA behind each chain entry (the driver's sg list) */
  sg: Seg[];
  /** indirect table: its dma address and GPA, or 0n */
  table: bigint;
  tableGpa: bigint;
  /** the intent (op) this chain carries */
  op: number;
}

export interface DmaMapping {
  phys: bigint;
  size: number;
  dir: DirName;
  type: (typeof MAP_KINDS)[number];
  seq: number;
  /** dma_mapping_error() was called on it */
  checked: boolean;
}

export interface DeviceState {
  dev: number;
  name: string;
  path: PathName;
  useDmaApi: boolean;
  translate: TranslateMode;
  backend: string;
  dmaMask: bigint;
  features: bigint;
  probed: boolean;
  /** the device's IOMMU domain (page tables) */
  iommu: IommuTable;
  /** live IOVA allocations, including unmapped ranges still waiting in the flush queue */
  iovas: IovaRange[];
  /** iommu-lazy: unmapped ranges waiting for the flush queue to be flushed */
  fq: IovaRange[];
  /** vhost device IOTLB */
  iotlb: DeviceIotlb;
  /** vfio-style shadow mappings (translate = shadow), kept by MAP/UNMAP notifications */
  shadow: Map<bigint, { gpa: bigint; seq: number }>;
  /** DMA-API debug entries by dma address */
  dmaLive: DmaLive;
  /** iova page → seq of the iommu.unmap that last removed it (for causal chains) */
  unmapSeq: Map<bigint, number>;
  inBatch: boolean;
}

export interface PendingInvalidation {
  dev: number;
  iova: bigint;
  size: bigint;
  /** seq of the iommu.inv whose notifier asked for it */
  req: number;
  /** device pass count at which the VMM delivers it (later than now only under a delay fault) */
  due: number;
}

export interface HeldUpdate {
  dev: number;
  iova: bigint;
  gpa: bigint;
  perm: PermName;
  /** seq of the miss it answers */
  miss: number;
}

export interface World {
  workload: string;
  protected: boolean;
  variants: Variants;
  mem: Pages;
  memTable: Region[];
  devices: Map<number, DeviceState>;
  rings: RingState[];
  swiotlb: SwiotlbState;
  /** GPA ranges a protected guest shares with the host (bounce pool, coherent allocations) */
  shared: IovaRange[];
  /** the VMM: invalidations it owes vhost, MISS messages (by seq) it has not read yet, and UPDATEs it holds back (reorder fault) */
  vmm: { invals: PendingInvalidation[]; toRead: number[]; held: HeldUpdate[]; lastTranslate: HeldUpdate | null };
  passes: number;
  inPass: boolean;
  guest: { ops: number; irq: boolean };
  findings: number;
  /** virtio-iommu: endpoints, domains and their byte-granular mappings (virtio-iommu.ts) */
  virtioIommu: VirtioIommuState;
}

export function emptyWorld(): World {
  return {
    workload: '',
    protected: false,
    variants: DEFAULT_VARIANTS,
    mem: new Map(),
    memTable: [],
    devices: new Map(),
    rings: [],
    swiotlb: { slots: new Map(), next: 0 },
    shared: [],
    vmm: { invals: [], toRead: [], held: [], lastTranslate: null },
    passes: 0,
    inPass: false,
    guest: { ops: 0, irq: false },
    findings: 0,
    virtioIommu: emptyVirtioIommu(),
  };
}

export function newDevice(init: Pick<DeviceState, 'dev' | 'name' | 'path' | 'useDmaApi' | 'translate' | 'backend' | 'dmaMask' | 'features'>): DeviceState {
  return {
    ...init,
    probed: true,
    iommu: new Map(),
    iovas: [],
    fq: [],
    iotlb: { entries: [], pending: [] },
    shadow: new Map(),
    dmaLive: new Map(),
    unmapSeq: new Map(),
    inBatch: false,
  };
}

/** A private, mutable copy for a replay batch. Pages are shared: memory.ts copies before writing. */
export function cloneWorld(w: World): World {
  return {
    ...w,
    mem: new Map(w.mem),
    memTable: w.memTable.map((r) => ({ ...r })),
    devices: new Map(
      [...w.devices].map(([k, d]) => [
        k,
        {
          ...d,
          iommu: new Map(d.iommu),
          iovas: d.iovas.map((r) => ({ ...r })),
          fq: d.fq.map((r) => ({ ...r })),
          iotlb: { entries: d.iotlb.entries.map((e) => ({ ...e })), pending: d.iotlb.pending.map((m) => ({ ...m })) },
          shadow: new Map(d.shadow),
          dmaLive: new Map([...d.dmaLive].map(([k, a]) => [k, a.map((m) => ({ ...m }))])),
          unmapSeq: new Map(d.unmapSeq),
        },
      ]),
    ),
    rings: w.rings.map((r) => ({
      ...r,
      free: [...r.free],
      extra: new Map([...r.extra].map(([k, v]) => [k, { ...v, chain: v.chain.map((d) => ({ ...d })), sg: v.sg.map((g) => ({ ...g })) }])),
      meta: { ...r.meta },
    })),
    swiotlb: { slots: new Map([...w.swiotlb.slots].map(([k, v]) => [k, { ...v, init: new Uint8Array(v.init) }])), next: w.swiotlb.next },
    shared: w.shared.map((r) => ({ ...r })),
    vmm: {
      invals: w.vmm.invals.map((i) => ({ ...i })),
      toRead: [...w.vmm.toRead],
      held: w.vmm.held.map((h) => ({ ...h })),
      lastTranslate: w.vmm.lastTranslate && { ...w.vmm.lastTranslate },
    },
    guest: { ...w.guest },
    virtioIommu: cloneVirtioIommu(w.virtioIommu),
  };
}

export function device(w: World, dev: number): DeviceState | undefined {
  return w.devices.get(dev);
}
