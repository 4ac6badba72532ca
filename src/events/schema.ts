// The event union is defined once, as data: each kind's code, its fields in wire order, and what it
// models. The binary codec, the JSONL codec, the log formatter and the TypeScript types are all
// derived from this table, so a field added here is stored, exported and printed everywhere.
//
// Address spaces (as in the kernel and QEMU): gpa = guest physical, iova = bus address the device
// uses when translated, dma = dma_addr_t handed to the device (a GPA on the direct path, an IOVA on
// the IOMMU path), hva = host virtual (vhost's `uaddr`).

export const SCHEMA_VERSION = 1;

export const DIRS = ['TO_DEVICE', 'FROM_DEVICE', 'BIDIRECTIONAL', 'NONE'] as const; // include/trace/events/dma.h
export const PERMS = ['NONE', 'RO', 'WO', 'RW'] as const; // VHOST_ACCESS_* == IOMMU_* values 0..3
export const ACCESS = ['read', 'write'] as const; // device side: read = device reads guest memory
export const VIA = ['gpa', 'iotlb', 'meta'] as const; // how a device access was resolved
export const WRITERS = ['cpu', 'device', 'swiotlb'] as const;
export const OPS = ['tx', 'rx'] as const;

type FieldSpec =
  | 'u8'
  | 'u16'
  | 'u32'
  | 'seq' // a reference to another event's seq; 0 = none
  | 'u64'
  | 'bytes'
  | 'str'
  | 'descs'
  | 'seqs'
  | { readonly enum: readonly string[] };

interface KindSpec {
  readonly code: number;
  readonly doc: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

export const KINDS = {
  'trace.config': {
    code: 1,
    doc: 'First event of every simulated trace: path and workload, so a fold can rebuild the world without the header.',
    fields: { path: 'str', workload: 'str', ringNum: 'u16' },
  },
  'mem.table': {
    code: 2,
    doc: 'VHOST_SET_MEM_TABLE: one GPA→HVA region of the vhost memory table.',
    fields: { gpa: 'u64', size: 'u64', hva: 'u64' },
  },
  'mem.write': {
    code: 3,
    doc: 'Bytes written into guest physical memory (by the guest CPU, a device, or a swiotlb bounce), exactly.',
    fields: { gpa: 'u64', by: { enum: WRITERS }, data: 'bytes' },
  },
  intent: {
    code: 4,
    doc: 'What the guest asked for (one guest operation), recorded before the events that carry it out.',
    fields: { op: 'u32', what: { enum: OPS }, gpa: 'u64', len: 'u32' },
  },
  sched: {
    code: 5,
    doc: 'A scheduler decision: which of the runnable actors ran next (runnable is a bitmask).',
    fields: { pick: 'str', runnable: 'u8' },
  },
  fault: {
    code: 6,
    doc: 'An injected fault taking effect (a recorded input, reproduced exactly by replay).',
    fields: { what: 'str', arg: 'u32', iova: 'u64', size: 'u64' },
  },
  'vring.setup': {
    code: 10,
    doc: 'Driver allocated split ring q (desc/avail/used addresses as the device sees them: GPA or IOVA).',
    fields: { q: 'u8', num: 'u16', desc: 'u64', avail: 'u64', used: 'u64', descGpa: 'u64', availGpa: 'u64', usedGpa: 'u64' },
  },
  'vring.post': {
    code: 11,
    doc: 'virtqueue_add_split + avail publish: the chain written into the desc table in guest memory, head put in avail.ring[slot], avail.idx := availIdx.',
    fields: { q: 'u8', head: 'u16', slot: 'u16', availIdx: 'u16', chain: 'descs' },
  },
  'vring.kick': {
    code: 12,
    doc: 'Driver notified the device (virtqueue_kick → ioeventfd).',
    fields: { q: 'u8' },
  },
  'vring.used': {
    code: 13,
    doc: 'Device wrote used.ring[slot] = {id, len} and used.idx := usedIdx, at the resolved GPA of the used ring.',
    fields: { q: 'u8', slot: 'u16', id: 'u16', len: 'u32', usedIdx: 'u16', gpa: 'u64' },
  },
  'vring.irq': {
    code: 14,
    doc: 'Device signalled a used-buffer interrupt (irqfd).',
    fields: { q: 'u8' },
  },
  'vring.getbuf': {
    code: 15,
    doc: 'Driver reaped used id (virtqueue_get_buf → detach_buf_split); its descriptors are free again.',
    fields: { q: 'u8', id: 'u16', len: 'u32', lastUsed: 'u16' },
  },
  'iommu.map': {
    code: 20,
    doc: 'Guest IOMMU driver installed IOVA→GPA page-table entries (iommu:map).',
    fields: { iova: 'u64', gpa: 'u64', size: 'u64', perm: { enum: PERMS } },
  },
  'iommu.unmap': {
    code: 21,
    doc: 'Guest IOMMU driver cleared the entries for [iova, iova+size) (iommu:unmap).',
    fields: { iova: 'u64', size: 'u64' },
  },
  'iommu.inv': {
    code: 22,
    doc: 'vIOMMU processed a guest IOTLB invalidation of [iova, iova+size) and fired its UNMAP notifiers.',
    fields: { iova: 'u64', size: 'u64' },
  },
  'dma.map': {
    code: 30,
    doc: 'DMA API mapping (dma_map_page): phys → dma address handed to the device.',
    fields: { dev: 'u8', phys: 'u64', dma: 'u64', size: 'u32', dir: { enum: DIRS } },
  },
  'dma.unmap': {
    code: 31,
    doc: 'DMA API unmap (dma_unmap_page), from the driver shadow copy (desc_extra).',
    fields: { dev: 'u8', dma: 'u64', size: 'u32', dir: { enum: DIRS } },
  },
  'iotlb.miss': {
    code: 40,
    doc: 'vhost_iotlb_miss: VHOST_IOTLB_MISS with only iova+perm (size, uaddr stay 0); the vq is parked.',
    fields: { q: 'u8', iova: 'u64', perm: { enum: PERMS } },
  },
  'iotlb.update': {
    code: 41,
    doc: 'VHOST_IOTLB_UPDATE written by the VMM: adds [iova, iova+size-1] → uaddr; wakes a pending miss it covers.',
    fields: { iova: 'u64', size: 'u64', uaddr: 'u64', perm: { enum: PERMS } },
  },
  'iotlb.invalidate': {
    code: 42,
    doc: 'VHOST_IOTLB_INVALIDATE written by the VMM: deletes every overlapping entry whole.',
    fields: { iova: 'u64', size: 'u64' },
  },
  'dev.pass': {
    code: 50,
    doc: 'Device worker handler pass boundary (vq->mutex held between begin and end): IOTLB messages land only between passes.',
    fields: { q: 'u8', begin: 'u8' },
  },
  'dev.access': {
    code: 51,
    doc: 'Device memory access: dma address, length, direction, and what it resolved to (GPA, HVA, and the IOTLB entry used, by the seq of its UPDATE). Writes carry the bytes written.',
    fields: {
      q: 'u8',
      dma: 'u64',
      len: 'u32',
      dir: { enum: ACCESS },
      via: { enum: VIA },
      gpa: 'u64',
      hva: 'u64',
      entry: 'seq',
      sum: 'u32',
      data: 'bytes',
    },
  },
  finding: {
    code: 60,
    doc: 'A checker finding: class, message, and the causal chain of seqs (the events that explain it).',
    fields: { cls: 'str', message: 'str', iova: 'u64', gpa: 'u64', chain: 'seqs' },
  },
} as const satisfies Record<string, KindSpec>;

export type Kind = keyof typeof KINDS;
export const KIND_NAMES = Object.keys(KINDS) as Kind[];

export interface Desc {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
  idx: number;
}

type TsOf<F> = F extends 'u64'
  ? bigint
  : F extends 'bytes'
    ? Uint8Array
    : F extends 'str'
      ? string
      : F extends 'descs'
        ? Desc[]
        : F extends 'seqs'
          ? number[]
          : F extends { readonly enum: readonly (infer E)[] }
            ? E
            : number;

type Fields<K extends Kind> = { -readonly [F in keyof (typeof KINDS)[K]['fields']]: TsOf<(typeof KINDS)[K]['fields'][F]> };

/** Who caused an event: a guest CPU, a device vq worker, the VMM (QEMU), the vIOMMU, the scheduler, a checker. */
export type Actor = 'cpu0' | 'vq0' | 'vmm' | 'iommu' | 'sched' | 'check';
export const ACTORS: readonly Actor[] = ['cpu0', 'vq0', 'vmm', 'iommu', 'sched', 'check'];

export interface EventHead {
  /** Position in the trace, from 1. */
  seq: number;
  actor: Actor;
  /** Seq of the event that caused this one, or 0. */
  cause: number;
}

export type EventOf<K extends Kind> = EventHead & { kind: K } & Fields<K>;
export type DmaEvent = { [K in Kind]: EventOf<K> }[Kind];
/** An event before the store has given it a seq. */
export type NewEvent = { [K in Kind]: Omit<EventOf<K>, 'seq'> }[Kind];

export const KIND_BY_CODE: (Kind | undefined)[] = [];
for (const k of KIND_NAMES) KIND_BY_CODE[KINDS[k].code] = k;

export function fieldsOf(kind: Kind): [string, FieldSpec][] {
  return Object.entries(KINDS[kind].fields) as [string, FieldSpec][];
}
