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
/** how a device access was resolved: vhost memory table, vhost device IOTLB, vhost meta cache, the vIOMMU itself (emulated device), a shadow (vfio) mapping */
export const VIA = ['gpa', 'iotlb', 'meta', 'iommu', 'shadow'] as const;
export const WRITERS = ['cpu', 'device', 'swiotlb'] as const;
export const OPS = ['tx', 'rx', 'read', 'write'] as const;
export const RESULTS = ['ok', 'EINVAL', 'EFAULT', 'ENOMEM', 'EPERM'] as const;
export const TRANSLATE_MODES = ['gpa', 'iova', 'shadow'] as const; // what the device does with desc.addr
export const INV_GRANS = ['page', 'domain', 'global', 'device'] as const;
export const MAP_KINDS = ['page', 'single', 'coherent', 'sg'] as const; // dma-debug "type"
export const DMA_PATHS = ['direct', 'iommu', 'swiotlb'] as const; // what the DMA API did for one mapping
export const TRIGGERS = ['map', 'unmap', 'sync_cpu', 'sync_dev'] as const;
export const CACHE = ['hit', 'miss', 'pt', 'fault'] as const;
export const SIDES = ['guest', 'host'] as const;
export const NOTIFY = ['MAP', 'UNMAP'] as const;
export const SLOT_OPS = ['alloc', 'release'] as const;
/** what a device access touched: ring metadata, an indirect table, or a buffer */
export const AREAS = ['ring', 'table', 'buf'] as const;
/** VIRTIO_IOMMU_S_* (virtio 1.2 §5.13.6), in value order */
export const VIOMMU_STATUS = ['S_OK', 'S_IOERR', 'S_UNSUPP', 'S_DEVERR', 'S_INVAL', 'S_RANGE', 'S_NOENT', 'S_FAULT', 'S_NOMEM'] as const;
/** what VHOST_SET_VRING_BASE answered */
export const BASE_RESULTS = ['ok', 'EINVAL', 'EBUSY'] as const;

type FieldSpec =
  | 'u8'
  | 'u16'
  | 'u32'
  | 'seq' // a reference to another event's seq; 0 = none
  | 'u64'
  | 'bytes'
  | 'str'
  | 'descs'
  | 'segs'
  | 'seqs'
  | { readonly enum: readonly string[] };

interface KindSpec {
  readonly code: number;
  readonly doc: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

// `dev` is the PCI requester id (bus << 8 | devfn, e.g. 0x10 = 00:02.0), as in vtd_dmar_fault's sid;
// 0xffff when a trace does not say. `q` is a global virtqueue index (vring.setup names its device).
export const KINDS = {
  'trace.config': {
    code: 1,
    doc: 'First event of every simulated trace: the workload, whether the guest is protected (SEV/TDX: swiotlb forced, ACCESS_PLATFORM required), and the kernel/QEMU behaviour variants in force (JSON).',
    fields: { workload: 'str', protected: 'u8', variants: 'str' },
  },
  'mem.table': {
    code: 2,
    doc: 'VHOST_SET_MEM_TABLE: one GPA→HVA region of the vhost memory table.',
    fields: { gpa: 'u64', size: 'u64', hva: 'u64' },
  },
  'mem.write': {
    code: 3,
    doc: 'Bytes written into guest physical memory by the guest CPU or a device, exactly.',
    fields: { gpa: 'u64', by: { enum: WRITERS }, data: 'bytes' },
  },
  'cpu.read': {
    code: 4,
    doc: 'The guest CPU reads a DMA buffer after the device completed it (what the guest observes).',
    fields: { dev: 'u16', gpa: 'u64', len: 'u32', sum: 'u32' },
  },
  intent: {
    code: 5,
    doc: 'What the guest asked for (one guest operation: a packet or a block request and its scatter-gather list of GPAs), recorded before the events that carry it out.',
    fields: { op: 'u32', dev: 'u16', what: { enum: OPS }, sector: 'u64', segs: 'segs' },
  },
  sched: {
    code: 6,
    doc: 'A scheduler decision: which of the runnable actors ran next.',
    fields: { pick: 'str', runnable: 'str' },
  },
  fault: {
    code: 7,
    doc: 'An injected fault taking effect (a recorded input, reproduced exactly by replay).',
    fields: { what: 'str', arg: 'u32', dev: 'u16', iova: 'u64', size: 'u64' },
  },
  'dev.add': {
    code: 8,
    doc: 'A virtio device probed: negotiated features, whether vring_use_dma_api() is true, what the device does with desc.addr, and the vhost backend.',
    fields: {
      dev: 'u16',
      name: 'str',
      path: 'str',
      features: 'u64',
      useDmaApi: 'u8',
      translate: { enum: TRANSLATE_MODES },
      backend: 'str',
      dmaMask: 'u64',
    },
  },
  'dev.probe_fail': {
    code: 9,
    doc: 'virtio_features_ok() refused the device (e.g. a protected guest and no ACCESS_PLATFORM): -ENODEV, no DMA.',
    fields: { dev: 'u16', reason: 'str' },
  },
  'dev.teardown': {
    code: 10,
    doc: 'The driver was unbound from the device (BUS_NOTIFY_UNBOUND_DRIVER): any live DMA mapping is a leak.',
    fields: { dev: 'u16' },
  },
  'vring.setup': {
    code: 11,
    doc: 'Driver allocated virtqueue q of device dev (addresses as the device sees them: GPA or IOVA).',
    fields: {
      dev: 'u16',
      q: 'u8',
      num: 'u16',
      packed: 'u8',
      eventIdx: 'u8',
      desc: 'u64',
      avail: 'u64',
      used: 'u64',
      descGpa: 'u64',
      availGpa: 'u64',
      usedGpa: 'u64',
    },
  },
  'vring.post': {
    code: 12,
    doc: 'virtqueue_add: the chain written into guest memory (split: desc table, head into avail.ring[slot], avail.idx := availIdx; packed: descriptors at slot.. with AVAIL/USED flags for wrap). With indirect, chain lives in a table at tableGpa (mapped at table) and the ring holds one INDIRECT descriptor. sg is the GPA behind each chain entry.',
    fields: { q: 'u8', head: 'u16', slot: 'u16', availIdx: 'u16', wrap: 'u8', table: 'u64', tableGpa: 'u64', chain: 'descs', sg: 'segs' },
  },
  'vring.kick': {
    code: 13,
    doc: 'Driver notified the device (virtqueue_kick_prepare said yes; with EVENT_IDX that is vring_need_event(avail_event, new, old)).',
    fields: { q: 'u8' },
  },
  'vring.used': {
    code: 14,
    doc: 'Device published used id/len (split: used.ring[slot], used.idx := usedIdx; packed: the descriptor at slot with USED=AVAIL=wrap), at the resolved GPA of the ring.',
    fields: { q: 'u8', slot: 'u16', id: 'u16', len: 'u32', usedIdx: 'u16', wrap: 'u8', gpa: 'u64' },
  },
  'vring.irq': {
    code: 15,
    doc: 'Device signalled a used-buffer interrupt (irqfd).',
    fields: { q: 'u8' },
  },
  'vring.getbuf': {
    code: 16,
    doc: 'Driver reaped used id (virtqueue_get_buf → detach_buf); its descriptors are free again.',
    fields: { q: 'u8', id: 'u16', len: 'u32', lastUsed: 'u16' },
  },
  'vq.event': {
    code: 17,
    doc: 'EVENT_IDX: the driver wrote used_event (interrupt me once used.idx passes it) or, device = 1, the device wrote avail_event (kick me once avail.idx passes it).',
    fields: { q: 'u8', idx: 'u16', device: 'u8', gpa: 'u64' },
  },
  'vq.error': {
    code: 18,
    doc: 'vhost vq_err(): the device stopped processing the queue (the message is the kernel one).',
    fields: { q: 'u8', msg: 'str' },
  },
  'vq.prefetch': {
    code: 26,
    doc: 'vq_meta_prefetch: the desc/avail/used areas each translated by one IOTLB entry (seq of its UPDATE) and cached in vq->meta_iotlb until the next UPDATE or INVALIDATE.',
    fields: { q: 'u8', desc: 'seq', avail: 'seq', used: 'seq' },
  },
  'vq.log': {
    code: 19,
    doc: 'Dirty logging (VHOST_F_LOG_ALL) for one chain: log entries produced vs writable iovecs (log_num must stay ≤ in_num).',
    fields: { q: 'u8', logNum: 'u16', inNum: 'u16' },
  },
  'iommu.map': {
    code: 20,
    doc: 'Guest IOMMU driver installed IOVA→GPA page-table entries for dev\'s domain (iommu:map).',
    fields: { dev: 'u16', iova: 'u64', gpa: 'u64', size: 'u64', perm: { enum: PERMS } },
  },
  'iommu.unmap': {
    code: 21,
    doc: 'Guest IOMMU driver cleared the entries for [iova, iova+size) (iommu:unmap).',
    fields: { dev: 'u16', iova: 'u64', size: 'u64' },
  },
  'iommu.inv': {
    code: 22,
    doc: 'vIOMMU processed a guest invalidation (page-selective, domain, global, or device-IOTLB) and fired its UNMAP notifiers.',
    fields: { dev: 'u16', iova: 'u64', size: 'u64', gran: { enum: INV_GRANS } },
  },
  'iommu.translate': {
    code: 23,
    doc: 'The vIOMMU translated a DMA address for dev (vtd_dmar_translate / vtd_iotlb_page_hit|update / amdvi_translation_result).',
    fields: { dev: 'u16', iova: 'u64', gpa: 'u64', perm: { enum: PERMS }, cache: { enum: CACHE } },
  },
  'iommu.fault': {
    code: 24,
    doc: 'DMA remapping fault: no translation or no permission (vtd_dmar_fault, iommu:io_page_fault). reason is the VT-d fault reason (6 = PTE read access not set, 5 = write).',
    fields: { dev: 'u16', iova: 'u64', write: 'u8', reason: 'u8' },
  },
  'iommu.notify': {
    code: 25,
    doc: 'An IOMMU notifier event to a MAP-capable listener (vfio shadow page tables): MAP or UNMAP of a range.',
    fields: { dev: 'u16', op: { enum: NOTIFY }, iova: 'u64', size: 'u64', gpa: 'u64' },
  },
  'dma.map': {
    code: 30,
    doc: 'DMA API mapping: phys → dma address handed to the device, and what the DMA API did (direct 1:1, through the IOMMU, bounced through swiotlb).',
    fields: { dev: 'u16', phys: 'u64', dma: 'u64', size: 'u32', dir: { enum: DIRS }, type: { enum: MAP_KINDS }, path: { enum: DMA_PATHS } },
  },
  'dma.map_error': {
    code: 31,
    doc: 'A mapping failed: DMA_MAPPING_ERROR returned (swiotlb full, mask overflow, IOVA space exhausted).',
    fields: { dev: 'u16', phys: 'u64', size: 'u32', dir: { enum: DIRS }, reason: 'str' },
  },
  'dma.check': {
    code: 32,
    doc: 'The driver checked a mapping with dma_mapping_error() (debug_dma_mapping_error marks it checked).',
    fields: { dev: 'u16', dma: 'u64' },
  },
  'dma.unmap': {
    code: 33,
    doc: 'DMA API unmap (from the driver\'s shadow, desc_extra).',
    fields: { dev: 'u16', dma: 'u64', size: 'u32', dir: { enum: DIRS }, type: { enum: MAP_KINDS } },
  },
  'dma.sync': {
    code: 34,
    doc: 'dma_sync_single_for_cpu / _for_device.',
    fields: { dev: 'u16', dma: 'u64', size: 'u32', dir: { enum: DIRS }, forCpu: 'u8' },
  },
  'swiotlb.slots': {
    code: 35,
    doc: 'swiotlb slot allocation or release (2 KiB slots; orig_addr and alloc_size recorded per slot).',
    fields: { dev: 'u16', op: { enum: SLOT_OPS }, index: 'u32', nslots: 'u32', orig: 'u64', size: 'u32', offset: 'u16' },
  },
  'swiotlb.bounce': {
    code: 36,
    doc: 'swiotlb_bounce: size bytes copied between the original buffer and its bounce slot (toTlb = orig→tlb), and why (swiotlb_bounced traces the map).',
    fields: { dev: 'u16', orig: 'u64', tlb: 'u64', size: 'u32', toTlb: 'u8', trigger: { enum: TRIGGERS } },
  },
  'iotlb.miss': {
    code: 40,
    doc: 'vhost_iotlb_miss: VHOST_IOTLB_MISS with only iova+perm (size, uaddr stay 0); the vq is parked.',
    fields: { dev: 'u16', q: 'u8', iova: 'u64', perm: { enum: PERMS } },
  },
  'iotlb.update': {
    code: 41,
    doc: 'VHOST_IOTLB_UPDATE written by the VMM: adds [iova, iova+size-1] → uaddr; wakes a pending miss it covers. result is what write() returned.',
    fields: { dev: 'u16', iova: 'u64', size: 'u64', uaddr: 'u64', perm: { enum: PERMS }, result: { enum: RESULTS } },
  },
  'iotlb.invalidate': {
    code: 42,
    doc: 'VHOST_IOTLB_INVALIDATE written by the VMM: deletes every overlapping entry whole.',
    fields: { dev: 'u16', iova: 'u64', size: 'u64', result: { enum: RESULTS } },
  },
  'iotlb.batch': {
    code: 43,
    doc: 'VHOST_IOTLB_BATCH_BEGIN/END (handled by vhost-vdpa only; vhost-net answers EINVAL).',
    fields: { dev: 'u16', begin: 'u8', result: { enum: RESULTS } },
  },
  'dev.pass': {
    code: 50,
    doc: 'Device worker handler pass boundary (vq->mutex held between begin and end): IOTLB messages land only between passes.',
    fields: { q: 'u8', begin: 'u8' },
  },
  'dev.access': {
    code: 51,
    doc: 'Device memory access: dma address, length, direction, and what it resolved to (GPA, HVA, and the translation used: the seq of the IOTLB UPDATE or IOMMU map). Writes carry the bytes written.',
    fields: {
      q: 'u8',
      dma: 'u64',
      len: 'u32',
      dir: { enum: ACCESS },
      area: { enum: AREAS },
      via: { enum: VIA },
      gpa: 'u64',
      hva: 'u64',
      entry: 'seq',
      sum: 'u32',
      data: 'bytes',
    },
  },
  'vq.pop': {
    code: 52,
    doc: 'Imported (QEMU virtqueue_pop): the device took a request with in_num writable and out_num readable descriptors.',
    fields: { dev: 'u16', q: 'u8', elem: 'u64', inNum: 'u16', outNum: 'u16' },
  },
  'vq.fill': {
    code: 53,
    doc: 'Imported (QEMU virtqueue_fill/flush): the device completed a request (len bytes written to the guest); count > 0 for a flush.',
    fields: { dev: 'u16', q: 'u8', elem: 'u64', len: 'u32', count: 'u16' },
  },
  marker: {
    code: 54,
    doc: 'A phase marker shared by guest and host logs (ftrace marker / host-bridge config write), used to align two sides.',
    fields: { n: 'u16', name: 'str', side: { enum: SIDES } },
  },
  opaque: {
    code: 55,
    doc: 'An imported line of a kind dmareplay does not model, kept verbatim.',
    fields: { side: { enum: SIDES }, event: 'str', text: 'str' },
  },
  'vq.base': {
    code: 80,
    doc: 'VHOST_SET_VRING_BASE (also how a live-migration destination restores the queue): last_avail_idx := num (packed: bits 0-15 last_avail_idx with the wrap counter in bit 15, bits 16-31 last_used_idx); split last_used_idx is read from used.idx. EBUSY while the queue is enabled, EINVAL for a split num above 0xffff.',
    fields: { q: 'u8', num: 'u32', result: { enum: BASE_RESULTS } },
  },
  'vq.enable': {
    code: 81,
    doc: 'The queue enabled or disabled (queue_enable, VHOST_SET_VRING_ENABLE, a backend attached): the device processes a queue only while enabled; a ring set up without life-cycle events is enabled.',
    fields: { q: 'u8', enable: 'u8' },
  },
  'vq.reset': {
    code: 82,
    doc: 'VIRTIO_F_RING_RESET queue_reset (QEMU virtio_queue_reset): the device forgets the queue: indices and wrap counters back to their start, not enabled, a stopped queue runs again.',
    fields: { q: 'u8' },
  },
  'viommu.attach': {
    code: 83,
    doc: 'virtio-iommu ATTACH: endpoint ep (PCI requester id) joins domain (leaving any other; a new domain is created) with its status.',
    fields: { ep: 'u16', domain: 'u32', bypass: 'u8', status: { enum: VIOMMU_STATUS } },
  },
  'viommu.detach': {
    code: 84,
    doc: 'virtio-iommu DETACH: endpoint ep leaves domain (S_NOENT: unknown endpoint, S_INVAL: not in that domain); the last endpoint out destroys the domain.',
    fields: { ep: 'u16', domain: 'u32', status: { enum: VIOMMU_STATUS } },
  },
  'viommu.map': {
    code: 85,
    doc: 'virtio-iommu MAP of the byte range [start, end] (inclusive) to phys with flags READ=1 WRITE=2 MMIO=4; S_INVAL on overlap or a bypass domain, S_NOENT on an unknown domain.',
    fields: { domain: 'u32', start: 'u64', end: 'u64', phys: 'u64', flags: 'u8', status: { enum: VIOMMU_STATUS } },
  },
  'viommu.unmap': {
    code: 86,
    doc: 'virtio-iommu UNMAP of [start, end]: with S_OK every mapping inside it is removed; S_RANGE (it would split a mapping) removes nothing.',
    fields: { domain: 'u32', start: 'u64', end: 'u64', status: { enum: VIOMMU_STATUS } },
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

/** One scatter-gather element as the guest asked for it: a GPA range (written by the device if write). */
export interface Seg {
  gpa: bigint;
  len: number;
  write: number;
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
          : F extends 'segs'
            ? Seg[]
          : F extends { readonly enum: readonly (infer E)[] }
            ? E
            : number;

type Fields<K extends Kind> = { -readonly [F in keyof (typeof KINDS)[K]['fields']]: TsOf<(typeof KINDS)[K]['fields'][F]> };

/** Who caused an event: a guest CPU, a device vq worker, the VMM (QEMU), the vIOMMU, the scheduler, a checker. */
export const ACTORS = ['cpu0', 'vq0', 'vq1', 'vq2', 'vq3', 'vmm', 'iommu', 'sched', 'check'] as const;
export type Actor = (typeof ACTORS)[number];

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
