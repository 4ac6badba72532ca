// The simulated world: everything a guest, its devices, the VMM and the vIOMMU can observe or keep,
// and the state the checkers keep about it. It changes only through the per-kind rules
// (src/model/rules), one event at a time, so a trace folded from its events and the run that
// recorded it reach the same world. Maps keep insertion order, which is the order of the events that
// inserted into them, so iteration is defined by the trace.
//
// Its shape is declared once, below, with the combinators of codec.ts: the types are inferred from
// it, and clone, the plain form (checkpoints, `state --json`) and the state hash are derived from it.
// The plain form's field order is the order declared here (keep it: it is what stored state hashes
// were computed over).
import type { Desc, Seg } from '../events/schema.js';
import { type NoPlain, type PlainOf, arr, big, bool, data, type Infer, json, mapList, mapPairs, mapValues, nullable, num, obj, objectList, pfnAddr, type Shape, str } from './codec.js';
import { DEVICE_IOTLB } from './device-iotlb.js';
import { DMA_LIVE, DmaLive } from './dma-live.js';
import { IOVA_RANGE } from './iova.js';
import type { Pages } from './memory.js';
import { REGION } from './memtable.js';
import { SWIOTLB_STATE } from './swiotlb.js';
import type { PathName, PermName, TranslateMode } from './types.js';
import { DEFAULT_VARIANTS, type Variants } from './variants.js';
import { IOMMU_TABLE } from './viommu.js';
import { VIRTIO_IOMMU } from './virtio-iommu.js';

export type { DmaMapping } from './dma-live.js';

const DESC: Shape<Desc> = obj({ __proto__: null, idx: num, addr: big, len: num, flags: num, next: num });
const SEG: Shape<Seg> = obj({ __proto__: null, gpa: big, len: num, write: num });

export const POSTED = obj({ __proto__: null,
  chain: arr(DESC),
  /** the GPA behind each chain entry (the driver's sg list) */
  sg: arr(SEG),
  /** indirect table: its dma address and GPA, or 0n */
  table: big,
  tableGpa: big,
  /** the intent (op) this chain carries */
  op: num,
});
export type Posted = Infer<typeof POSTED>;

export const RING = obj({ __proto__: null,
  q: num,
  dev: num,
  num: num,
  packed: bool,
  eventIdx: bool,
  /** ring addresses as the device sees them (GPA on the direct path, IOVA in IOTLB mode) */
  desc: big,
  avail: big,
  used: big,
  descGpa: big,
  availGpa: big,
  usedGpa: big,
  // driver side (virtio_ring.c)
  free: arr(num),
  /** desc_extra: the driver's shadow of each posted chain, by id; unmaps use this, never the ring */
  extra: mapList('head', num, POSTED),
  availIdx: num,
  lastUsed: num,
  /** packed: driver's avail wrap counter (starts at 1) and the device's used wrap counter */
  availWrap: num,
  usedWrap: num,
  lastUsedWrap: num,
  // device side (vhost worker)
  lastAvail: num,
  usedIdx: num,
  /** requests completed on this queue so far, whatever the ring layout */
  served: num,
  kicked: bool,
  parked: bool,
  /** stopped by vq_err(): the device processes nothing more */
  broken: bool,
  /** vq->meta_iotlb: seq of the UPDATE whose entry is cached for desc/avail/used, 0 = not cached */
  meta: obj({ __proto__: null, desc: num, avail: num, used: num }),
  /**
   * Whether the device processes the queue (queue-life.ts): null until a life-cycle event (vq.enable,
   * vq.reset) says otherwise, which is enabled; null is left out of the plain form (state hashes of
   * recordings without life-cycle events stay as they were).
   */
  enabled: nullable(bool, true),
});
export type RingState = Infer<typeof RING>;

export const DEVICE = obj({ __proto__: null,
  dev: num,
  name: str(),
  path: str<PathName>(),
  useDmaApi: bool,
  translate: str<TranslateMode>(),
  backend: str(),
  dmaMask: big,
  features: big,
  probed: bool,
  /** the device's IOMMU domain (page tables) */
  iommu: IOMMU_TABLE,
  /** live IOVA allocations, including unmapped ranges still waiting in the flush queue */
  iovas: arr(IOVA_RANGE),
  /** iommu-lazy: unmapped ranges waiting for the flush queue to be flushed */
  fq: arr(IOVA_RANGE),
  /** vhost device IOTLB */
  iotlb: DEVICE_IOTLB,
  /** vfio-style shadow mappings (translate = shadow), kept by MAP/UNMAP notifications */
  shadow: mapList('iova', pfnAddr, obj({ __proto__: null, gpa: big, seq: num })),
  /** DMA-API debug entries by dma address */
  dmaLive: DMA_LIVE,
  /** iova page (a number, as the IOMMU table's) → seq of the iommu.unmap that last removed it (for causal chains) */
  unmapSeq: mapPairs('iova', pfnAddr, 'seq', num),
  inBatch: bool,
});
export type DeviceState = Infer<typeof DEVICE>;

export const PENDING_INVALIDATION = obj({ __proto__: null,
  dev: num,
  iova: big,
  size: big,
  /** seq of the iommu.inv whose notifier asked for it */
  req: num,
  /** device pass count at which the VMM delivers it (later than now only under a delay fault) */
  due: num,
});
export type PendingInvalidation = Infer<typeof PENDING_INVALIDATION>;

export const HELD_UPDATE = obj({ __proto__: null,
  dev: num,
  iova: big,
  gpa: big,
  perm: str<PermName>(),
  /** seq of the miss it answers */
  miss: num,
});
export type HeldUpdate = Infer<typeof HELD_UPDATE>;

/** Guest memory: shared page by page between clones (copy-on-write, memory.ts); checkpoints store it as binary pages. */
const PAGES: Shape<Pages, NoPlain> = { clone: (m) => new Map(m), toPlain: () => undefined, fromPlain: () => new Map(), noPlain: true };

export const WORLD = obj({ __proto__: null,
  workload: str(),
  protected: bool,
  variants: json<Variants>(),
  mem: PAGES,
  memTable: arr(REGION),
  devices: mapValues((d: DeviceState) => d.dev, DEVICE),
  rings: arr(RING),
  swiotlb: SWIOTLB_STATE,
  /** GPA ranges a protected guest shares with the host (bounce pool, coherent allocations) */
  shared: arr(IOVA_RANGE),
  /** the VMM: invalidations it owes vhost, MISS messages (by seq) it has not read yet, and UPDATEs it holds back (reorder fault) */
  vmm: obj({ __proto__: null, invals: arr(PENDING_INVALIDATION), toRead: arr(num), held: arr(HELD_UPDATE), lastTranslate: nullable(HELD_UPDATE) }),
  passes: num,
  inPass: bool,
  guest: obj({ __proto__: null, ops: num, irq: bool }),
  /** finding events in the trace so far */
  findings: num,
  /**
   * What the real-trace checks (src/check/real.ts) have judged so far about an imported trace: their
   * state is declared there, kept here so that it is cloned, checkpointed and hashed with the world
   * (null for a simulated trace, and then not in the plain form).
   */
  real: nullable(data, true),
  /** virtio-iommu endpoints, domains and byte-granular mappings (virtio-iommu.ts); null until a virtio-iommu event, and then not in the plain form */
  virtioIommu: nullable(VIRTIO_IOMMU, true),
});
export type World = Infer<typeof WORLD>;

export function emptyWorld(): World {
  return {
    workload: '',
    protected: false,
    variants: DEFAULT_VARIANTS,
    mem: new Map(),
    memTable: objectList(),
    devices: new Map(),
    rings: objectList(),
    swiotlb: { next: 0, slots: new Map(), call: null },
    shared: objectList(),
    vmm: { invals: objectList(), toRead: [], held: objectList(), lastTranslate: null },
    passes: 0,
    inPass: false,
    guest: { ops: 0, irq: false },
    findings: 0,
    real: null,
    virtioIommu: null,
  };
}

export function newDevice(init: Pick<DeviceState, 'dev' | 'name' | 'path' | 'useDmaApi' | 'translate' | 'backend' | 'dmaMask' | 'features'>): DeviceState {
  // fields named one by one: spreading init and adding the rest cost ~10 µs a device (V8's
  // object-spread clone then a transition per added field), a noticeable part of a short run
  return {
    dev: init.dev,
    name: init.name,
    path: init.path,
    useDmaApi: init.useDmaApi,
    translate: init.translate,
    backend: init.backend,
    dmaMask: init.dmaMask,
    features: init.features,
    probed: true,
    iommu: new Map(),
    iovas: objectList(),
    fq: objectList(),
    iotlb: { entries: objectList(), pending: objectList(), retired: null },
    shadow: new Map(),
    dmaLive: new DmaLive(),
    unmapSeq: new Map(),
    inBatch: false,
  };
}

/** A private, mutable copy (a replay batch, a seek). Pages are shared: memory.ts copies before writing. */
export function cloneWorld(w: World): World {
  return WORLD.clone(w);
}

/** The world's plain form: every field but guest memory, 64-bit values as hex strings. */
export function worldToPlain(w: World): PlainWorld {
  return WORLD.toPlain(w);
}

export function worldFromPlain(p: PlainWorld, mem: Pages): World {
  const w = WORLD.fromPlain(p);
  w.mem = mem;
  return w;
}

export type PlainWorld = PlainOf<typeof WORLD>;

export function device(w: World, dev: number): DeviceState | undefined {
  return w.devices.get(dev);
}

/** An event that cannot be applied to the world it meets (a queue never set up, a descriptor not free). */
export class ApplyError extends Error {}

/** The device an event names; it must have been added. */
export function deviceOf(w: World, d: number, seq: number): DeviceState {
  const s = w.devices.get(d);
  if (!s) throw new ApplyError(`event ${seq}: device 0x${d.toString(16)} was never added`);
  return s;
}

/** The virtqueue an event names; it must have been set up. */
export function ringOf(w: World, q: number, seq: number): RingState {
  const r = w.rings[q];
  if (!r) throw new ApplyError(`event ${seq}: queue ${q} was never set up`);
  return r;
}
