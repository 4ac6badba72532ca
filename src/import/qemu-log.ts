/**
 * Parser for QEMU host trace logs written by the `log` trace backend with `-msg timestamp=on`
 * (QEMU 7.2 and similar):
 *
 *     TID@UNIXSEC.USEC:event_name <formatted args>
 *     8385@1795271543.885837:vtd_dmar_fault sid 0x10 fault 6 addr 0x12340000 write 0
 *
 * The args text is printed by the event's format string from the `trace-events` files
 * (hw/i386, hw/virtio, hw/block, hw/pci). Events listed in {@link QEMU_FORMATS} are parsed into
 * typed records; every other well-formed line becomes an `opaque` record (never an error).
 *
 * Discriminate records on `kind`: it equals `event` for typed records and is `'opaque'` otherwise
 * (an opaque record's `event` is the raw name). All addresses, pointers and other 64-bit values are
 * `bigint`, parsed from the text without going through `Number`.
 *
 * Pure line-level parsing: no state is carried between lines.
 */
import { fieldRangeError } from './fields.js';
import { FAST, type FastBuilder, sameChars, VTD_SLPTE_ADDR_MASK } from './qemu-fast.js';
import { type LineSource, lineBatches, newLineStreamState } from './lines.js';

/** SLPTE address bits 12..51 (VT-d MGAW is at most 52 bits). */
export { VTD_SLPTE_ADDR_MASK };

// ---------------------------------------------------------------------------------------------
// Record types
// ---------------------------------------------------------------------------------------------

/** Host wall-clock time of the event (`gettimeofday`, microsecond resolution). */
export interface QemuTime {
  sec: bigint;
  usec: number;
}

/** Fields common to every QEMU trace record. */
export interface QemuBase {
  /** 1-based line number in the input. */
  line: number;
  /** QEMU thread id (vCPU thread vs. main/I/O thread). */
  tid: number;
  time: QemuTime;
  /** `time` as microseconds since the Unix epoch (exact). */
  tUs: bigint;
  /** Event name as written in the log. */
  event: string;
  /**
   * The line had no `TID@SEC.USEC:` prefix (QEMU without `-msg timestamp=on`): `tid` is 0, `time` 0 and
   * `tUs` the line number, so host-only order is line order and nothing else.
   */
  untimed?: true;
}

type Rec<K extends string, F> = QemuBase & { kind: K; event: K } & F;

/** PCI bus/device/function triple. */
export interface Bdf {
  bus: number;
  dev: number;
  fn: number;
}

// intel-iommu (VT-d) ---------------------------------------------------------------------------
/** `dev %02x:%02x.%02x iova 0x%x -> gpa 0x%x mask 0x%x` — one per translation (iova page aligned). */
export type VtdDmarTranslate = Rec<'vtd_dmar_translate', Bdf & { iova: bigint; gpa: bigint; mask: bigint }>;
/**
 * `IOTLB page hit|update sid 0x%x iova 0x%x slpte 0x%x domain 0x%x` (update = miss + page walk + fill).
 * `iova` is the exact DMA address; `gpa` = slpte address bits (12..51) = base of the mapped page frame
 * (for a large-page SLPTE, bit 7 set, it is the base of the large page); `perm` = slpte & 3 (1 R, 2 W, 3 RW).
 */
export interface VtdIotlbPageFields {
  sid: number;
  iova: bigint;
  slpte: bigint;
  domain: number;
  gpa: bigint;
  perm: number;
}
export type VtdIotlbPageHit = Rec<'vtd_iotlb_page_hit', VtdIotlbPageFields>;
export type VtdIotlbPageUpdate = Rec<'vtd_iotlb_page_update', VtdIotlbPageFields>;
/** `IOTLB context hit bus 0x%x devfn 0x%x high 0x%x low 0x%x gen %u` */
export type VtdIotlbCcHit = Rec<'vtd_iotlb_cc_hit', { bus: number; devfn: number; high: bigint; low: bigint; gen: number }>;
/** `IOTLB context update bus 0x%x devfn 0x%x high 0x%x low 0x%x gen %u -> gen %u` */
export type VtdIotlbCcUpdate = Rec<
  'vtd_iotlb_cc_update',
  { bus: number; devfn: number; high: bigint; low: bigint; genFrom: number; genTo: number }
>;
/** `IOTLB reset (reason: %s)` */
export type VtdIotlbReset = Rec<'vtd_iotlb_reset', { reason: string }>;
/** `` (no args) */
export type VtdContextCacheReset = Rec<'vtd_context_cache_reset', {}>;
/** `invalidate desc type %s high 0x%x low 0x%x` — raw 128-bit queued-invalidation descriptor. */
export type VtdInvDesc = Rec<'vtd_inv_desc', { type: string; hi: bigint; lo: bigint }>;
/** `iotlb invalidate domain 0x%x addr 0x%x mask 0x%x`; mask = log2(pages), size = 4 KiB << mask. */
export type VtdInvDescIotlbPages = Rec<'vtd_inv_desc_iotlb_pages', { domain: number; addr: bigint; mask: number; size: bigint }>;
/** `iotlb invalidate whole domain 0x%x` */
export type VtdInvDescIotlbDomain = Rec<'vtd_inv_desc_iotlb_domain', { domain: number }>;
/** `iotlb invalidate global` */
export type VtdInvDescIotlbGlobal = Rec<'vtd_inv_desc_iotlb_global', {}>;
/** `wait invalidate status write addr 0x%x data 0x%x` */
export type VtdInvDescWaitSw = Rec<'vtd_inv_desc_wait_sw', { addr: bigint; data: number }>;
/** `context invalidate domain 0x%x` */
export type VtdInvDescCcDomain = Rec<'vtd_inv_desc_cc_domain', { domain: number }>;
/** `context invalidate globally` */
export type VtdInvDescCcGlobal = Rec<'vtd_inv_desc_cc_global', {}>;
/** `context invalidate device %02x:%02x.%02x` */
export type VtdInvDescCcDevice = Rec<'vtd_inv_desc_cc_device', Bdf>;
/** `context invalidate devices sid 0x%x fmask 0x%x` */
export type VtdInvDescCcDevices = Rec<'vtd_inv_desc_cc_devices', { sid: number; fmask: number }>;
/** `sid 0x%x fault %d addr 0x%x write %d` */
export type VtdDmarFault = Rec<'vtd_dmar_fault', { sid: number; fault: number; addr: bigint; write: boolean }>;
/** `index %d high 0x%x low 0x%x` — fault recording register written */
export type VtdFrrNew = Rec<'vtd_frr_new', { index: number; high: bigint; low: bigint }>;
/** `FSTS PPF bit set to %d` */
export type VtdFstsPpf = Rec<'vtd_fsts_ppf', { set: boolean }>;
/** `Device %02x:%02x.%x switching address space (iommu enabled=%d)` */
export type VtdSwitchAddressSpace = Rec<'vtd_switch_address_space', Bdf & { on: boolean }>;

// AMD-Vi -------------------------------------------------------------------------------------
// QEMU calls the IOVA "gpa" and the translated guest-physical address "hpa"; here they are
// `iova` and `gpa`.
/** `devid: %02x:%02x.%x gpa 0x%x hpa 0x%x` */
export type AmdviTranslationResult = Rec<'amdvi_translation_result', Bdf & { iova: bigint; gpa: bigint }>;
/** `hit iotlb devid %02x:%02x.%x gpa 0x%x hpa 0x%x` */
export type AmdviIotlbHit = Rec<'amdvi_iotlb_hit', Bdf & { iova: bigint; gpa: bigint }>;
/** ` update iotlb domid 0x%x devid: %02x:%02x.%x gpa 0x%x hpa 0x%x` (note the leading space) */
export type AmdviCacheUpdate = Rec<'amdvi_cache_update', Bdf & { domid: number; iova: bigint; gpa: bigint }>;
/** `AMD-Vi pages for domain 0x%x invalidated` */
export type AmdviPagesInval = Rec<'amdvi_pages_inval', { domid: number }>;
/** `completion wait requested with store address 0x%x and store data 0x%x` */
export type AmdviCompletionWait = Rec<'amdvi_completion_wait', { addr: bigint; data: bigint }>;

// virtio-iommu -------------------------------------------------------------------------------
/** `domain=%d virt_start=0x%x virt_end=0x%x phys_start=0x%x flags=%d` (virt_end inclusive) */
export type VirtioIommuMap = Rec<
  'virtio_iommu_map',
  { domain: number; virtStart: bigint; virtEnd: bigint; physStart: bigint; flags: number }
>;
/** `domain=%d virt_start=0x%x virt_end=0x%x` */
export type VirtioIommuUnmap = Rec<'virtio_iommu_unmap', { domain: number; virtStart: bigint; virtEnd: bigint }>;
/** `domain=%d virt_start=0x%x virt_end=0x%x`: one mapping really removed by an UNMAP (virtio_iommu_unmap) */
export type VirtioIommuUnmapDone = Rec<'virtio_iommu_unmap_done', { domain: number; virtStart: bigint; virtEnd: bigint }>;
/** `mr=%s rid=%d addr=0x%x flag=%d` */
export type VirtioIommuTranslate = Rec<'virtio_iommu_translate', { mr: string; rid: number; addr: bigint; flag: number }>;
/** `0x%x -> 0x%x for sid=%d` */
export type VirtioIommuTranslateOut = Rec<'virtio_iommu_translate_out', { virtAddr: bigint; physAddr: bigint; sid: number }>;
/** `FAULT reason=%d flags=%d endpoint=%d address =0x%x` */
export type VirtioIommuReportFault = Rec<
  'virtio_iommu_report_fault',
  { reason: number; flags: number; endpoint: number; addr: bigint }
>;
/** `domain=%d endpoint=%d` */
export type VirtioIommuAttach = Rec<'virtio_iommu_attach', { domain: number; endpoint: number }>;
export type VirtioIommuDetach = Rec<'virtio_iommu_detach', { domain: number; endpoint: number }>;

// virtio core / virtio-blk -------------------------------------------------------------------
// Pointers (vq, elem, vdev, req, dev) are QEMU host addresses, only useful as ids; `(nil)` is 0n.
/** `vq %p elem %p in_num %u out_num %u` */
export type VirtqueuePop = Rec<'virtqueue_pop', { vq: bigint; elem: bigint; inNum: number; outNum: number }>;
/** `vq %p elem %p len %u idx %u` */
export type VirtqueueFill = Rec<'virtqueue_fill', { vq: bigint; elem: bigint; len: number; idx: number }>;
/** `vq %p count %u` */
export type VirtqueueFlush = Rec<'virtqueue_flush', { vq: bigint; count: number }>;
/** `vdev %p n %d vq %p` */
export type VirtioQueueNotify = Rec<'virtio_queue_notify', { vdev: bigint; n: number; vq: bigint }>;
/** `vdev %p vq %p` */
export type VirtioNotify = Rec<'virtio_notify', { vdev: bigint; vq: bigint }>;
export type VirtioNotifyIrqfd = Rec<'virtio_notify_irqfd', { vdev: bigint; vq: bigint }>;
/** `vdev %p val %u` */
export type VirtioSetStatus = Rec<'virtio_set_status', { vdev: bigint; val: number }>;
/** `vdev %p req %p sector %lu nsectors %zu` */
export type VirtioBlkHandleRead = Rec<'virtio_blk_handle_read', { vdev: bigint; req: bigint; sector: bigint; nsectors: bigint }>;
export type VirtioBlkHandleWrite = Rec<
  'virtio_blk_handle_write',
  { vdev: bigint; req: bigint; sector: bigint; nsectors: bigint }
>;
/** `vdev %p req %p status %d` */
export type VirtioBlkReqComplete = Rec<'virtio_blk_req_complete', { vdev: bigint; req: bigint; status: number }>;

// vhost --------------------------------------------------------------------------------------
/** `%p step %d` — 1 enter, 2 done/no translation, 3 GPA->HVA lookup failed, 4 update send failed */
export type VhostIotlbMiss = Rec<'vhost_iotlb_miss', { dev: bigint; step: number }>;
/** `%s: 0x%x+0x%x @ 0x%x` (name: gpa+size @ host virtual address) */
export type VhostRegionAddSection = Rec<'vhost_region_add_section', { name: string; gpa: bigint; size: bigint; host: bigint }>;
/**
 * hw/virtio/vhost-user.c vhost_user_write: a message to the back-end (`req:%d flags:0x%x`);
 * req 22 is VHOST_USER_IOTLB_MSG (an IOTLB UPDATE or INVALIDATE, which one the trace does not say).
 */
export type VhostUserWrite = Rec<'vhost_user_write', { req: number; flags: number }>;
/**
 * hw/virtio/vhost-vdpa.c vhost_vdpa_dma_map: a VHOST_IOTLB_UPDATE written to the vhost-vdpa fd
 * (`vdpa:%p fd: %d msg_type: %u asid: %u iova: 0x%x size: 0x%x uaddr: 0x%x perm: 0x%x type: %u`;
 * QEMU before 7.2 has no `asid:`).
 */
export type VhostVdpaDmaMap = Rec<'vhost_vdpa_dma_map', { vdpa: bigint; iova: bigint; size: bigint; uaddr: bigint; perm: number }>;
/** vhost_vdpa_dma_unmap: a VHOST_IOTLB_INVALIDATE (`… iova: 0x%x size: 0x%x type: %u`). */
export type VhostVdpaDmaUnmap = Rec<'vhost_vdpa_dma_unmap', { vdpa: bigint; iova: bigint; size: bigint }>;

// PCI ----------------------------------------------------------------------------------------
/** `%s %02x:%02x.%x @0x%x <- 0x%x` — every guest config-space write. See {@link qemuPhaseMarker}. */
export type PciCfgWrite = Rec<'pci_cfg_write', Bdf & { name: string; offset: number; value: number }>;

/** Every event with a typed record. */
export type QemuTypedRecord =
  | VtdDmarTranslate
  | VtdIotlbPageHit
  | VtdIotlbPageUpdate
  | VtdIotlbCcHit
  | VtdIotlbCcUpdate
  | VtdIotlbReset
  | VtdContextCacheReset
  | VtdInvDesc
  | VtdInvDescIotlbPages
  | VtdInvDescIotlbDomain
  | VtdInvDescIotlbGlobal
  | VtdInvDescWaitSw
  | VtdInvDescCcDomain
  | VtdInvDescCcGlobal
  | VtdInvDescCcDevice
  | VtdInvDescCcDevices
  | VtdDmarFault
  | VtdFrrNew
  | VtdFstsPpf
  | VtdSwitchAddressSpace
  | AmdviTranslationResult
  | AmdviIotlbHit
  | AmdviCacheUpdate
  | AmdviPagesInval
  | AmdviCompletionWait
  | VirtioIommuMap
  | VirtioIommuUnmap
  | VirtioIommuUnmapDone
  | VirtioIommuTranslate
  | VirtioIommuTranslateOut
  | VirtioIommuReportFault
  | VirtioIommuAttach
  | VirtioIommuDetach
  | VirtqueuePop
  | VirtqueueFill
  | VirtqueueFlush
  | VirtioQueueNotify
  | VirtioNotify
  | VirtioNotifyIrqfd
  | VirtioSetStatus
  | VirtioBlkHandleRead
  | VirtioBlkHandleWrite
  | VirtioBlkReqComplete
  | VhostIotlbMiss
  | VhostRegionAddSection
  | VhostUserWrite
  | VhostVdpaDmaMap
  | VhostVdpaDmaUnmap
  | PciCfgWrite;

export type QemuTypedKind = QemuTypedRecord['kind'];

/** A well-formed line of an event without a typed parser; `args` is the raw text after the name. */
export interface QemuOpaqueRecord extends QemuBase {
  kind: 'opaque';
  args: string;
}

export type QemuRecord = QemuTypedRecord | QemuOpaqueRecord;

/** A line that is not a valid trace line, or a typed event whose args do not match its format. */
export interface QemuMalformed {
  kind: 'malformed';
  line: number;
  /** Why the line was rejected. */
  malformed: string;
  /** The line as read. */
  text: string;
}

/** Last item of {@link readQemuLog}: how the input ended. */
export interface QemuEndOfInput {
  kind: 'end-of-input';
  /** Number of lines read. */
  lines: number;
  /** False if the last line had no `\n` (the log was cut mid-write; that line is reported malformed). */
  finalNewline: boolean;
  records: number;
  malformed: number;
}

export type QemuItem = QemuRecord | QemuMalformed | QemuEndOfInput;

// ---------------------------------------------------------------------------------------------
// Formats and parsers
// ---------------------------------------------------------------------------------------------

/** The QEMU 7.2 format strings (printf-style, PRIx64 etc. reduced to %x) of the typed events. */
export const QEMU_FORMATS: Readonly<Record<QemuTypedKind, string>> = {
  vtd_dmar_translate: 'dev %02x:%02x.%02x iova 0x%x -> gpa 0x%x mask 0x%x',
  vtd_iotlb_page_hit: 'IOTLB page hit sid 0x%x iova 0x%x slpte 0x%x domain 0x%x',
  vtd_iotlb_page_update: 'IOTLB page update sid 0x%x iova 0x%x slpte 0x%x domain 0x%x',
  vtd_iotlb_cc_hit: 'IOTLB context hit bus 0x%x devfn 0x%x high 0x%x low 0x%x gen %u',
  vtd_iotlb_cc_update: 'IOTLB context update bus 0x%x devfn 0x%x high 0x%x low 0x%x gen %u -> gen %u',
  vtd_iotlb_reset: 'IOTLB reset (reason: %s)',
  vtd_context_cache_reset: '',
  vtd_inv_desc: 'invalidate desc type %s high 0x%x low 0x%x',
  vtd_inv_desc_iotlb_pages: 'iotlb invalidate domain 0x%x addr 0x%x mask 0x%x',
  vtd_inv_desc_iotlb_domain: 'iotlb invalidate whole domain 0x%x',
  vtd_inv_desc_iotlb_global: 'iotlb invalidate global',
  vtd_inv_desc_wait_sw: 'wait invalidate status write addr 0x%x data 0x%x',
  vtd_inv_desc_cc_domain: 'context invalidate domain 0x%x',
  vtd_inv_desc_cc_global: 'context invalidate globally',
  vtd_inv_desc_cc_device: 'context invalidate device %02x:%02x.%02x',
  vtd_inv_desc_cc_devices: 'context invalidate devices sid 0x%x fmask 0x%x',
  vtd_dmar_fault: 'sid 0x%x fault %d addr 0x%x write %d',
  vtd_frr_new: 'index %d high 0x%x low 0x%x',
  vtd_fsts_ppf: 'FSTS PPF bit set to %d',
  vtd_switch_address_space: 'Device %02x:%02x.%x switching address space (iommu enabled=%d)',
  amdvi_translation_result: 'devid: %02x:%02x.%x gpa 0x%x hpa 0x%x',
  amdvi_iotlb_hit: 'hit iotlb devid %02x:%02x.%x gpa 0x%x hpa 0x%x',
  amdvi_cache_update: ' update iotlb domid 0x%x devid: %02x:%02x.%x gpa 0x%x hpa 0x%x',
  amdvi_pages_inval: 'AMD-Vi pages for domain 0x%x invalidated',
  amdvi_completion_wait: 'completion wait requested with store address 0x%x and store data 0x%x',
  virtio_iommu_map: 'domain=%d virt_start=0x%x virt_end=0x%x phys_start=0x%x flags=%d',
  virtio_iommu_unmap: 'domain=%d virt_start=0x%x virt_end=0x%x',
  virtio_iommu_unmap_done: 'domain=%d virt_start=0x%x virt_end=0x%x',
  virtio_iommu_translate: 'mr=%s rid=%d addr=0x%x flag=%d',
  virtio_iommu_translate_out: '0x%x -> 0x%x for sid=%d',
  virtio_iommu_report_fault: 'FAULT reason=%d flags=%d endpoint=%d address =0x%x',
  virtio_iommu_attach: 'domain=%d endpoint=%d',
  virtio_iommu_detach: 'domain=%d endpoint=%d',
  virtqueue_pop: 'vq %p elem %p in_num %u out_num %u',
  virtqueue_fill: 'vq %p elem %p len %u idx %u',
  virtqueue_flush: 'vq %p count %u',
  virtio_queue_notify: 'vdev %p n %d vq %p',
  virtio_notify: 'vdev %p vq %p',
  virtio_notify_irqfd: 'vdev %p vq %p',
  virtio_set_status: 'vdev %p val %u',
  virtio_blk_handle_read: 'vdev %p req %p sector %lu nsectors %zu',
  virtio_blk_handle_write: 'vdev %p req %p sector %lu nsectors %zu',
  virtio_blk_req_complete: 'vdev %p req %p status %d',
  vhost_iotlb_miss: '%p step %d',
  vhost_region_add_section: '%s: 0x%x+0x%x @ 0x%x',
  vhost_user_write: 'req:%d flags:0x%x',
  vhost_vdpa_dma_map: 'vdpa:%p fd: %d msg_type: %u asid: %u iova: 0x%x size: 0x%x uaddr: 0x%x perm: 0x%x type: %u',
  vhost_vdpa_dma_unmap: 'vdpa:%p fd: %d msg_type: %u asid: %u iova: 0x%x size: 0x%x type: %u',
  pci_cfg_write: '%s %02x:%02x.%x @0x%x <- 0x%x',
};


/**
 * Hex digits → bigint, exactly. parseInt is exact below 2^53 (and rounds to ≥ 2^53 otherwise, so the
 * check is safe); that path avoids the slower string form of BigInt for the common small values.
 */
const hx = (s: string): bigint => {
  const n = parseInt(s, 16);
  return n <= Number.MAX_SAFE_INTEGER ? BigInt(n) : BigInt('0x' + s);
};
const hn = (s: string): number => parseInt(s, 16);
const dn = (s: string): number => parseInt(s, 10);
/** glibc `%p`: `0x…`, or `(nil)` for NULL. */
const ptr = (s: string): bigint => (s === '(nil)' ? 0n : BigInt(s));

// Building blocks (all anchored in the full per-event regexes below, so no runaway backtracking).
const H = '([0-9a-fA-F]+)';
const N = '(-?\\d+)';
const U = '(\\d+)';
const P = '(0x[0-9a-fA-F]+|\\(nil\\))';
const re = (s: string): RegExp => new RegExp('^' + s + '\\s*$');

const R_TRANSLATE = re(`dev ${H}:${H}\\.${H} iova 0x${H} -> gpa 0x${H} mask 0x${H}`);
const R_PAGE_HIT = re(`IOTLB page hit sid 0x${H} iova 0x${H} slpte 0x${H} domain 0x${H}`);
const R_PAGE_UPDATE = re(`IOTLB page update sid 0x${H} iova 0x${H} slpte 0x${H} domain 0x${H}`);
const R_CC_HIT = re(`IOTLB context hit bus 0x${H} devfn 0x${H} high 0x${H} low 0x${H} gen ${U}`);
const R_CC_UPDATE = re(`IOTLB context update bus 0x${H} devfn 0x${H} high 0x${H} low 0x${H} gen ${U} -> gen ${U}`);
const R_IOTLB_RESET = /^IOTLB reset \(reason: (.*)\)\s*$/;
const R_EMPTY = /^\s*$/;
const R_INV_DESC = re(`invalidate desc type (\\S+) high 0x${H} low 0x${H}`);
const R_INV_PAGES = re(`iotlb invalidate domain 0x${H} addr 0x${H} mask 0x${H}`);
const R_INV_DOMAIN = re(`iotlb invalidate whole domain 0x${H}`);
const R_INV_GLOBAL = re('iotlb invalidate global');
const R_WAIT_SW = re(`wait invalidate status write addr 0x${H} data 0x${H}`);
const R_CC_DOMAIN = re(`context invalidate domain 0x${H}`);
const R_CC_GLOBAL = re('context invalidate globally');
const R_CC_DEVICE = re(`context invalidate device ${H}:${H}\\.${H}`);
const R_CC_DEVICES = re(`context invalidate devices sid 0x${H} fmask 0x${H}`);
const R_FAULT = re(`sid 0x${H} fault ${N} addr 0x${H} write ${U}`);
const R_FRR = re(`index ${N} high 0x${H} low 0x${H}`);
const R_PPF = re(`FSTS PPF bit set to ${U}`);
const R_SWITCH = re(`Device ${H}:${H}\\.${H} switching address space \\(iommu enabled=${U}\\)`);
const R_AMD_RESULT = re(`devid: ${H}:${H}\\.${H} gpa 0x${H} hpa 0x${H}`);
const R_AMD_HIT = re(`hit iotlb devid ${H}:${H}\\.${H} gpa 0x${H} hpa 0x${H}`);
const R_AMD_UPDATE = new RegExp(`^\\s*update iotlb domid 0x${H} devid: ${H}:${H}\\.${H} gpa 0x${H} hpa 0x${H}\\s*$`);
const R_AMD_PAGES = re(`AMD-Vi pages for domain 0x${H} invalidated`);
const R_AMD_WAIT = re(`completion wait requested with store address 0x${H} and store data 0x${H}`);
const R_VI_MAP = re(`domain=${N} virt_start=0x${H} virt_end=0x${H} phys_start=0x${H} flags=${N}`);
const R_VI_UNMAP = re(`domain=${N} virt_start=0x${H} virt_end=0x${H}`);
const R_VI_TRANSLATE = re(`mr=(.*) rid=${N} addr=0x${H} flag=${N}`);
const R_VI_OUT = re(`0x${H} -> 0x${H} for sid=${N}`);
const R_VI_FAULT = re(`FAULT reason=${N} flags=${N} endpoint=${N} address =0x${H}`);
const R_VI_ATTACH = re(`domain=${N} endpoint=${N}`);
const R_VQ_POP = re(`vq ${P} elem ${P} in_num ${U} out_num ${U}`);
const R_VQ_FILL = re(`vq ${P} elem ${P} len ${U} idx ${U}`);
const R_VQ_FLUSH = re(`vq ${P} count ${U}`);
const R_QUEUE_NOTIFY = re(`vdev ${P} n ${N} vq ${P}`);
const R_NOTIFY = re(`vdev ${P} vq ${P}`);
const R_SET_STATUS = re(`vdev ${P} val ${U}`);
const R_BLK_RW = re(`vdev ${P} req ${P} sector ${U} nsectors ${U}`);
const R_BLK_COMPLETE = re(`vdev ${P} req ${P} status ${N}`);
const R_IOTLB_MISS = re(`${P} step ${N}`);
const R_REGION_ADD = re(`(.*): 0x${H}\\+0x${H} @ 0x${H}`);
const R_USER_WRITE = re(`req:${N} flags:0x${H}`);
const R_VDPA_MAP = re(`vdpa:${P} fd: ${N} msg_type: ${U} (?:asid: ${U} )?iova: 0x${H} size: 0x${H} uaddr: 0x${H} perm: 0x${H} type: ${U}`);
const R_VDPA_UNMAP = re(`vdpa:${P} fd: ${N} msg_type: ${U} (?:asid: ${U} )?iova: 0x${H} size: 0x${H} type: ${U}`);
const R_PCI_CFG_WRITE = re(`(.*) ${H}:${H}\\.${H} @0x${H} <- 0x${H}`);

// Each builder writes its record as one object literal (header fields listed explicitly, no object
// spread): V8 then allocates every record with a fixed shape per event, which is ~100x faster than
// spreading a shared header into varying field sets.
type Builder<K extends QemuTypedKind> = (args: string, h: QemuBase) => Extract<QemuTypedRecord, { kind: K }> | null;

const BUILDERS: { readonly [K in QemuTypedKind]: Builder<K> } = {
  vtd_dmar_translate: (a, h) => {
    const m = R_TRANSLATE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_dmar_translate', event: 'vtd_dmar_translate',
      bus: hn(m[1]!), dev: hn(m[2]!), fn: hn(m[3]!), iova: hx(m[4]!), gpa: hx(m[5]!), mask: hx(m[6]!),
    };
  },
  vtd_iotlb_page_hit: (a, h) => {
    const m = R_PAGE_HIT.exec(a);
    if (m === null) return null;
    const slpte = hx(m[3]!);
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs, kind: 'vtd_iotlb_page_hit', event: 'vtd_iotlb_page_hit',
      sid: hn(m[1]!), iova: hx(m[2]!), slpte, domain: hn(m[4]!), gpa: slpte & VTD_SLPTE_ADDR_MASK, perm: Number(slpte & 3n),
    };
  },
  vtd_iotlb_page_update: (a, h) => {
    const m = R_PAGE_UPDATE.exec(a);
    if (m === null) return null;
    const slpte = hx(m[3]!);
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs, kind: 'vtd_iotlb_page_update', event: 'vtd_iotlb_page_update',
      sid: hn(m[1]!), iova: hx(m[2]!), slpte, domain: hn(m[4]!), gpa: slpte & VTD_SLPTE_ADDR_MASK, perm: Number(slpte & 3n),
    };
  },
  vtd_iotlb_cc_hit: (a, h) => {
    const m = R_CC_HIT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_iotlb_cc_hit', event: 'vtd_iotlb_cc_hit',
      bus: hn(m[1]!), devfn: hn(m[2]!), high: hx(m[3]!), low: hx(m[4]!), gen: dn(m[5]!),
    };
  },
  vtd_iotlb_cc_update: (a, h) => {
    const m = R_CC_UPDATE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_iotlb_cc_update', event: 'vtd_iotlb_cc_update',
      bus: hn(m[1]!), devfn: hn(m[2]!), high: hx(m[3]!), low: hx(m[4]!), genFrom: dn(m[5]!), genTo: dn(m[6]!),
    };
  },
  vtd_iotlb_reset: (a, h) => {
    const m = R_IOTLB_RESET.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_iotlb_reset', event: 'vtd_iotlb_reset',
      reason: m[1]!,
    };
  },
  vtd_context_cache_reset: (a, h) => {
    if (!R_EMPTY.test(a)) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_context_cache_reset', event: 'vtd_context_cache_reset',
    };
  },
  vtd_inv_desc: (a, h) => {
    const m = R_INV_DESC.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc', event: 'vtd_inv_desc',
      type: m[1]!, hi: hx(m[2]!), lo: hx(m[3]!),
    };
  },
  vtd_inv_desc_iotlb_pages: (a, h) => {
    const m = R_INV_PAGES.exec(a);
    if (m === null) return null;
    const mask = hn(m[3]!);
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_iotlb_pages', event: 'vtd_inv_desc_iotlb_pages',
      // AM is 6 bits (VT-d spec 6.5.2.3): a larger mask is refused by the field range check, not shifted
      domain: hn(m[1]!), addr: hx(m[2]!), mask, size: mask <= 63 ? 4096n << BigInt(mask) : 0n,
    };
  },
  vtd_inv_desc_iotlb_domain: (a, h) => {
    const m = R_INV_DOMAIN.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_iotlb_domain', event: 'vtd_inv_desc_iotlb_domain',
      domain: hn(m[1]!),
    };
  },
  vtd_inv_desc_iotlb_global: (a, h) => {
    if (!R_INV_GLOBAL.test(a)) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_iotlb_global', event: 'vtd_inv_desc_iotlb_global',
    };
  },
  vtd_inv_desc_wait_sw: (a, h) => {
    const m = R_WAIT_SW.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_wait_sw', event: 'vtd_inv_desc_wait_sw',
      addr: hx(m[1]!), data: hn(m[2]!),
    };
  },
  vtd_inv_desc_cc_domain: (a, h) => {
    const m = R_CC_DOMAIN.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_cc_domain', event: 'vtd_inv_desc_cc_domain',
      domain: hn(m[1]!),
    };
  },
  vtd_inv_desc_cc_global: (a, h) => {
    if (!R_CC_GLOBAL.test(a)) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_cc_global', event: 'vtd_inv_desc_cc_global',
    };
  },
  vtd_inv_desc_cc_device: (a, h) => {
    const m = R_CC_DEVICE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_cc_device', event: 'vtd_inv_desc_cc_device',
      bus: hn(m[1]!), dev: hn(m[2]!), fn: hn(m[3]!),
    };
  },
  vtd_inv_desc_cc_devices: (a, h) => {
    const m = R_CC_DEVICES.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_cc_devices', event: 'vtd_inv_desc_cc_devices',
      sid: hn(m[1]!), fmask: hn(m[2]!),
    };
  },
  vtd_dmar_fault: (a, h) => {
    const m = R_FAULT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_dmar_fault', event: 'vtd_dmar_fault',
      sid: hn(m[1]!), fault: dn(m[2]!), addr: hx(m[3]!), write: m[4] !== '0',
    };
  },
  vtd_frr_new: (a, h) => {
    const m = R_FRR.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_frr_new', event: 'vtd_frr_new',
      index: dn(m[1]!), high: hx(m[2]!), low: hx(m[3]!),
    };
  },
  vtd_fsts_ppf: (a, h) => {
    const m = R_PPF.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_fsts_ppf', event: 'vtd_fsts_ppf',
      set: m[1] !== '0',
    };
  },
  vtd_switch_address_space: (a, h) => {
    const m = R_SWITCH.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_switch_address_space', event: 'vtd_switch_address_space',
      bus: hn(m[1]!), dev: hn(m[2]!), fn: hn(m[3]!), on: m[4] !== '0',
    };
  },
  amdvi_translation_result: (a, h) => {
    const m = R_AMD_RESULT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_translation_result', event: 'amdvi_translation_result',
      bus: hn(m[1]!), dev: hn(m[2]!), fn: hn(m[3]!), iova: hx(m[4]!), gpa: hx(m[5]!),
    };
  },
  amdvi_iotlb_hit: (a, h) => {
    const m = R_AMD_HIT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_iotlb_hit', event: 'amdvi_iotlb_hit',
      bus: hn(m[1]!), dev: hn(m[2]!), fn: hn(m[3]!), iova: hx(m[4]!), gpa: hx(m[5]!),
    };
  },
  amdvi_cache_update: (a, h) => {
    const m = R_AMD_UPDATE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_cache_update', event: 'amdvi_cache_update',
      domid: hn(m[1]!), bus: hn(m[2]!), dev: hn(m[3]!), fn: hn(m[4]!), iova: hx(m[5]!), gpa: hx(m[6]!),
    };
  },
  amdvi_pages_inval: (a, h) => {
    const m = R_AMD_PAGES.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_pages_inval', event: 'amdvi_pages_inval',
      domid: hn(m[1]!),
    };
  },
  amdvi_completion_wait: (a, h) => {
    const m = R_AMD_WAIT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_completion_wait', event: 'amdvi_completion_wait',
      addr: hx(m[1]!), data: hx(m[2]!),
    };
  },
  virtio_iommu_map: (a, h) => {
    const m = R_VI_MAP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_map', event: 'virtio_iommu_map',
      domain: dn(m[1]!), virtStart: hx(m[2]!), virtEnd: hx(m[3]!), physStart: hx(m[4]!), flags: dn(m[5]!),
    };
  },
  virtio_iommu_unmap: (a, h) => {
    const m = R_VI_UNMAP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_unmap', event: 'virtio_iommu_unmap',
      domain: dn(m[1]!), virtStart: hx(m[2]!), virtEnd: hx(m[3]!),
    };
  },
  virtio_iommu_unmap_done: (a, h) => {
    const m = R_VI_UNMAP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_unmap_done', event: 'virtio_iommu_unmap_done',
      domain: dn(m[1]!), virtStart: hx(m[2]!), virtEnd: hx(m[3]!),
    };
  },
  virtio_iommu_translate: (a, h) => {
    const m = R_VI_TRANSLATE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_translate', event: 'virtio_iommu_translate',
      mr: m[1]!, rid: dn(m[2]!), addr: hx(m[3]!), flag: dn(m[4]!),
    };
  },
  virtio_iommu_translate_out: (a, h) => {
    const m = R_VI_OUT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_translate_out', event: 'virtio_iommu_translate_out',
      virtAddr: hx(m[1]!), physAddr: hx(m[2]!), sid: dn(m[3]!),
    };
  },
  virtio_iommu_report_fault: (a, h) => {
    const m = R_VI_FAULT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_report_fault', event: 'virtio_iommu_report_fault',
      reason: dn(m[1]!), flags: dn(m[2]!), endpoint: dn(m[3]!), addr: hx(m[4]!),
    };
  },
  virtio_iommu_attach: (a, h) => {
    const m = R_VI_ATTACH.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_attach', event: 'virtio_iommu_attach',
      domain: dn(m[1]!), endpoint: dn(m[2]!),
    };
  },
  virtio_iommu_detach: (a, h) => {
    const m = R_VI_ATTACH.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_iommu_detach', event: 'virtio_iommu_detach',
      domain: dn(m[1]!), endpoint: dn(m[2]!),
    };
  },
  virtqueue_pop: (a, h) => {
    const m = R_VQ_POP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtqueue_pop', event: 'virtqueue_pop',
      vq: ptr(m[1]!), elem: ptr(m[2]!), inNum: dn(m[3]!), outNum: dn(m[4]!),
    };
  },
  virtqueue_fill: (a, h) => {
    const m = R_VQ_FILL.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtqueue_fill', event: 'virtqueue_fill',
      vq: ptr(m[1]!), elem: ptr(m[2]!), len: dn(m[3]!), idx: dn(m[4]!),
    };
  },
  virtqueue_flush: (a, h) => {
    const m = R_VQ_FLUSH.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtqueue_flush', event: 'virtqueue_flush',
      vq: ptr(m[1]!), count: dn(m[2]!),
    };
  },
  virtio_queue_notify: (a, h) => {
    const m = R_QUEUE_NOTIFY.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_queue_notify', event: 'virtio_queue_notify',
      vdev: ptr(m[1]!), n: dn(m[2]!), vq: ptr(m[3]!),
    };
  },
  virtio_notify: (a, h) => {
    const m = R_NOTIFY.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_notify', event: 'virtio_notify',
      vdev: ptr(m[1]!), vq: ptr(m[2]!),
    };
  },
  virtio_notify_irqfd: (a, h) => {
    const m = R_NOTIFY.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_notify_irqfd', event: 'virtio_notify_irqfd',
      vdev: ptr(m[1]!), vq: ptr(m[2]!),
    };
  },
  virtio_set_status: (a, h) => {
    const m = R_SET_STATUS.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_set_status', event: 'virtio_set_status',
      vdev: ptr(m[1]!), val: dn(m[2]!),
    };
  },
  virtio_blk_handle_read: (a, h) => {
    const m = R_BLK_RW.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_blk_handle_read', event: 'virtio_blk_handle_read',
      vdev: ptr(m[1]!), req: ptr(m[2]!), sector: BigInt(m[3]!), nsectors: BigInt(m[4]!),
    };
  },
  virtio_blk_handle_write: (a, h) => {
    const m = R_BLK_RW.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_blk_handle_write', event: 'virtio_blk_handle_write',
      vdev: ptr(m[1]!), req: ptr(m[2]!), sector: BigInt(m[3]!), nsectors: BigInt(m[4]!),
    };
  },
  virtio_blk_req_complete: (a, h) => {
    const m = R_BLK_COMPLETE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'virtio_blk_req_complete', event: 'virtio_blk_req_complete',
      vdev: ptr(m[1]!), req: ptr(m[2]!), status: dn(m[3]!),
    };
  },
  vhost_iotlb_miss: (a, h) => {
    const m = R_IOTLB_MISS.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vhost_iotlb_miss', event: 'vhost_iotlb_miss',
      dev: ptr(m[1]!), step: dn(m[2]!),
    };
  },
  vhost_region_add_section: (a, h) => {
    const m = R_REGION_ADD.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vhost_region_add_section', event: 'vhost_region_add_section',
      name: m[1]!, gpa: hx(m[2]!), size: hx(m[3]!), host: hx(m[4]!),
    };
  },
  vhost_user_write: (a, h) => {
    const m = R_USER_WRITE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vhost_user_write', event: 'vhost_user_write',
      req: dn(m[1]!), flags: hn(m[2]!),
    };
  },
  vhost_vdpa_dma_map: (a, h) => {
    const m = R_VDPA_MAP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vhost_vdpa_dma_map', event: 'vhost_vdpa_dma_map',
      vdpa: ptr(m[1]!), iova: hx(m[5]!), size: hx(m[6]!), uaddr: hx(m[7]!), perm: hn(m[8]!),
    };
  },
  vhost_vdpa_dma_unmap: (a, h) => {
    const m = R_VDPA_UNMAP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vhost_vdpa_dma_unmap', event: 'vhost_vdpa_dma_unmap',
      vdpa: ptr(m[1]!), iova: hx(m[5]!), size: hx(m[6]!),
    };
  },
  pci_cfg_write: (a, h) => {
    const m = R_PCI_CFG_WRITE.exec(a);
    if (m === null) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'pci_cfg_write', event: 'pci_cfg_write',
      name: m[1]!, bus: hn(m[2]!), dev: hn(m[3]!), fn: hn(m[4]!), offset: hn(m[5]!), value: hn(m[6]!),
    };
  },
};

const BUILDER_MAP: ReadonlyMap<string, Builder<QemuTypedKind>> = new Map(
  Object.entries(BUILDERS) as [QemuTypedKind, Builder<QemuTypedKind>][],
);

/** True if `event` has a typed record. */
export function isQemuTypedEvent(event: string): event is QemuTypedKind {
  return BUILDER_MAP.has(event);
}

/** `TID@SEC.USEC:event[ args]` */
const HEADER_RE = /^(\d+)@(\d+)\.(\d+):([A-Za-z_][A-Za-z0-9_]*)(?: (.*))?$/;

/** Cheap check used by format detection: does the line look like a log-backend trace line? */
export function isQemuLogLine(line: string): boolean {
  return HEADER_RE.test(stripCr(line));
}

/**
 * QEMU's `log` trace backend without `-msg timestamp=on` prints only `event_name args`
 * (scripts/tracetool/backend/log.py: `qemu_log("%s " fmt "\n", name, …)` when
 * `message_with_timestamp` is off): no thread id, no clock. True for such a line of an event family
 * dmareplay reads (vIOMMU, virtio, vhost, PCI config).
 */
const UNTIMED_RE = /^(?:vtd|amdvi|virtio|virtqueue|vhost|pci)_[a-z0-9_]+(?: |$)/;
const UNTIMED_HEADER_RE = /^((?:vtd|amdvi|virtio|virtqueue|vhost|pci)_[a-z0-9_]+)(?: (.*))?$/;
export function isUntimedQemuLogLine(line: string): boolean {
  return UNTIMED_RE.test(stripCr(line));
}

/** The one-line explanation for a log written without timestamps. */
export function untimedLogMessage(file: string): string {
  return `${file} is a QEMU trace log without timestamps (lines "event args", no "TID@SEC.USEC:" prefix): merging it with a guest log needs the host clock, rerun QEMU with -msg timestamp=on (alone it imports in line order)`;
}

function stripCr(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

function usecOf(frac: string): number {
  // `%06zu` always prints 6 digits; tolerate others as a decimal fraction of a second.
  if (frac.length === 6) return parseInt(frac, 10);
  return frac.length < 6 ? parseInt(frac.padEnd(6, '0'), 10) : parseInt(frac.slice(0, 6), 10);
}

let lastSecText = '';
let lastSec = 0n;
let lastSecUs = 0n;
/** the fast path's cache of the same (by value) */
let fastSecN = -1;
let fastSec = 0n;
let fastSecUs = 0n;

/**
 * Parses one line. Returns `null` for blank lines, a {@link QemuMalformed} (which has a `malformed`
 * reason) for lines that are not `TID@SEC.USEC:event args` or whose args do not match the typed
 * event's format, and otherwise a typed or opaque record.
 */
export function parseQemuLogLine(line: string, lineNo: number): QemuRecord | QemuMalformed | null {
  return parseLine(line, lineNo, false);
}

/** `c` is an ASCII decimal digit */
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** `c` may start an event name: [A-Za-z_] */
const isNameStart = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
/** `c` may continue an event name: [A-Za-z0-9_] */
const isNameChar = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (c >= 48 && c <= 57);
/** what `.` in HEADER_RE does not match: the args of a line holding one are no args */
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/** An event name seen in a log, and its record's builder (none: opaque). */
interface EventName {
  event: string;
  builder: Builder<QemuTypedKind> | undefined;
  fast: FastBuilder | undefined;
}
/**
 * The event names seen so far, by their length and three of their characters: a line's name is
 * found without cutting it out of the line (and hashing the new string) first, and without checking
 * its characters again. A log names a few dozen events; past NAMES_MAX distinct names new ones are
 * no longer remembered (just checked and cut out each time).
 */
const NAMES = new Map<number, EventName[]>();
let namesKept = 0;
const NAMES_MAX = 4096;

/**
 * The event name text[from, to) (`to`: the first space after it, or the end of the line), or null
 * when it is not one ([A-Za-z_][A-Za-z0-9_]*).
 */
function eventName(text: string, from: number, to: number): EventName | null {
  const n = to - from;
  if (n === 0) return null;
  const key = (((n << 7) ^ text.charCodeAt(to - 1)) * 131 + text.charCodeAt(from + (n >> 1))) * 131 + text.charCodeAt(to - 2 + (n === 1 ? 1 : 0));
  const known = NAMES.get(key);
  if (known !== undefined) for (const e of known) if (e.event.length === n && sameChars(text, from, e.event)) return e;
  if (!isNameStart(text.charCodeAt(from))) return null;
  for (let j = from + 1; j < to; j++) if (!isNameChar(text.charCodeAt(j))) return null;
  const event = text.slice(from, to);
  const e: EventName = { event, builder: BUILDER_MAP.get(event), fast: isQemuTypedEvent(event) ? FAST[event] : undefined };
  if (namesKept < NAMES_MAX) {
    namesKept++;
    if (known !== undefined) known.push(e);
    else NAMES.set(key, [e]);
  }
  return e;
}

/**
 * {@link parseQemuLogLine}, and with `keepText` the line as read in `rawText` (for the converters).
 *
 * The header is scanned by hand when it has the shape QEMU prints (a TID of at most 9 digits, at
 * most 15 digits of seconds, `%06zu` microseconds): then every field is in range by construction
 * (fields.ts) and no regex runs. Anything else takes HEADER_RE, with the same results.
 */
export function parseLine(line: string, lineNo: number, keepText: boolean): QemuRecord | QemuMalformed | null {
  return parseOrPeek(line, lineNo, keepText, false) as QemuRecord | QemuMalformed | null;
}

/**
 * What the import's first pass ({@link peekQemuLogLine}) learns of an opaque line (an event with no
 * typed record) of the fast shape, without building its record. One object, overwritten by each call.
 */
export interface QemuPeek {
  kind: 'peek';
  line: number;
  event: string;
  /** Number(tUs) of the record the line would be */
  t: number;
}
const PEEKED: QemuPeek = { kind: 'peek', line: 0, event: '', t: 0 };

/**
 * {@link parseQemuLogLine}, except that an opaque line of the fast shape (`TID@SEC.USEC:event args`,
 * an event without a typed record) gives the shared {@link QemuPeek} (read it before the next call)
 * instead of a record: the same line is a record, malformed or blank exactly when parseQemuLogLine
 * says so, but nothing is allocated for the ~80% of a vIOMMU log's lines that the scan only counts.
 */
export function peekQemuLogLine(line: string, lineNo: number, unread: ReadonlySet<string> | null = null): QemuRecord | QemuMalformed | QemuPeek | null {
  return parseOrPeek(line, lineNo, false, true, unread);
}

/**
 * `peek`: an opaque line of the fast shape gives {@link PEEKED}, and so does a typed one whose event
 * is in `unread` (its args are not checked: a malformed one passes for a record).
 */
function parseOrPeek(
  line: string,
  lineNo: number,
  keepText: boolean,
  peek: boolean,
  unread: ReadonlySet<string> | null = null,
  /** the line holds no line terminator (LineStreamState.plain) */
  plain = false,
): QemuRecord | QemuMalformed | QemuPeek | null {
  const text = stripCr(line);
  const len = text.length;
  if (len === 0 || (text.charCodeAt(0) <= 32 && R_EMPTY.test(text))) return null;
  // TID: 1-9 digits, then '@'
  let i = 0;
  let tid = 0;
  let c = text.charCodeAt(0);
  while (i < 9 && isDigit(c)) {
    tid = tid * 10 + (c - 48);
    c = text.charCodeAt(++i);
  }
  if (i === 0 || c !== 64) return parseLineSlow(line, text, lineNo, keepText);
  // SEC: 1-15 digits (exact as a double), then '.'
  const s0 = ++i;
  let sec = 0;
  c = text.charCodeAt(i);
  while (i - s0 < 15 && isDigit(c)) {
    sec = sec * 10 + (c - 48);
    c = text.charCodeAt(++i);
  }
  if (i === s0 || c !== 46) return parseLineSlow(line, text, lineNo, keepText);
  // USEC: exactly 6 digits, then ':'
  const u0 = ++i;
  let usec = 0;
  c = text.charCodeAt(i);
  while (i - u0 < 6 && isDigit(c)) {
    usec = usec * 10 + (c - 48);
    c = text.charCodeAt(++i);
  }
  if (i - u0 !== 6 || c !== 58) return parseLineSlow(line, text, lineNo, keepText);
  // event name, then the end or ' ' and the args
  const n0 = ++i;
  i = text.indexOf(' ', n0);
  if (i < 0) i = len;
  const name = eventName(text, n0, i);
  if (name === null) return parseLineSlow(line, text, lineNo, keepText);
  const event = name.event;
  if (peek && (name.builder === undefined || (unread !== null && unread.has(event)))) {
    // the args are all that may still hold a line terminator (the header and name are checked above)
    if (!plain && LINE_TERMINATOR.test(text)) return parseLineSlow(line, text, lineNo, false);
    PEEKED.line = lineNo;
    PEEKED.event = event;
    // sec < 9e9: sec * 1e6 + usec < 2^53, exact (as Number(tUs) is)
    PEEKED.t = sec < 9_000_000_000 ? sec * 1e6 + usec : Number(BigInt(sec) * 1_000_000n + BigInt(usec));
    return PEEKED;
  }
  const args = i < len ? text.slice(i + 1) : '';
  if (!plain && args.length > 0 && LINE_TERMINATOR.test(args)) return parseLineSlow(line, text, lineNo, keepText);
  if (sec !== fastSecN) {
    // consecutive lines mostly share the second: convert it once
    fastSecN = sec;
    fastSec = BigInt(sec);
    fastSecUs = fastSec * 1_000_000n;
  }
  const tUs = fastSecUs + BigInt(usec);
  const time: QemuTime = { sec: fastSec, usec };
  const b = name.builder;
  if (b === undefined) {
    // tid < 10^9, usec < 10^6 and sec < 10^15: the range checks of fields.ts hold
    return keepText
      ? ({ line: lineNo, tid, time, tUs, event, kind: 'opaque', args, rawText: line } as QemuOpaqueRecord & WithText)
      : ({ line: lineNo, tid, time, tUs, event, kind: 'opaque', args } as QemuOpaqueRecord);
  }
  return typedRecord(b, name.fast, event, args, { line: lineNo, tid, time, tUs, event }, line, keepText);
}

/** The args of a typed event → its record, or the malformed line (args that do not match, fields out of range). */
function typedRecord(
  b: Builder<QemuTypedKind>,
  fast: FastBuilder | undefined,
  event: string,
  args: string,
  base: QemuBase,
  line: string,
  keepText: boolean,
): QemuRecord | QemuMalformed {
  const rec = (fast !== undefined ? fast(args, base) : null) ?? b(args, base);
  if (rec === null) {
    return {
      kind: 'malformed',
      line: base.line,
      malformed: `${event}: args do not match "${QEMU_FORMATS[event as QemuTypedKind]}"`,
      text: line,
    };
  }
  // out-of-range fields (fields.ts) make the line malformed, like args that do not match
  const bad = fieldRangeError(rec);
  if (bad !== null) return { kind: 'malformed', line: base.line, malformed: `${event}: ${bad}`, text: line };
  if (keepText) (rec as QemuRecord & WithText).rawText = line;
  return rec;
}

/**
 * The parser without its fast paths: HEADER_RE and the regex builders for every line. Results are
 * {@link parseQemuLogLine}'s; the tests hold the fast paths to it.
 */
export function parseQemuLogLineByRegex(line: string, lineNo: number): QemuRecord | QemuMalformed | null {
  const text = stripCr(line);
  if (text.length === 0 || (text.charCodeAt(0) <= 32 && R_EMPTY.test(text))) return null;
  return parseLineSlow(line, text, lineNo, false);
}

/** Every header the fast path of {@link parseLine} does not take: HEADER_RE, untimed lines, malformed ones. */
function parseLineSlow(line: string, text: string, lineNo: number, keepText: boolean): QemuRecord | QemuMalformed {
  const m = HEADER_RE.exec(text);
  if (m === null) {
    const u = UNTIMED_HEADER_RE.exec(text);
    if (u !== null) {
      const r = untimedRecord(u[1]!, u[2] ?? '', lineNo, line);
      if (keepText && r.kind !== 'malformed') (r as QemuRecord & WithText).rawText = line;
      return r;
    }
    const reason = /^\d+@/.test(text)
      ? 'bad trace line header (expected TID@SEC.USEC:event args)'
      : 'not a QEMU log-backend trace line (expected TID@SEC.USEC:event args)';
    return { kind: 'malformed', line: lineNo, malformed: reason, text: line };
  }
  const secText = m[2]!;
  if (secText !== lastSecText) {
    lastSecText = secText;
    lastSec = BigInt(secText);
    lastSecUs = lastSec * 1_000_000n;
  }
  const usec = usecOf(m[3]!);
  const event = m[4]!;
  const args = m[5] ?? '';
  const base: QemuBase = {
    line: lineNo,
    tid: parseInt(m[1]!, 10),
    time: { sec: lastSec, usec },
    tUs: lastSecUs + BigInt(usec),
    event,
  };
  const b = BUILDER_MAP.get(event);
  if (b === undefined) {
    const bad = fieldRangeError(base);
    if (bad !== null) return { kind: 'malformed', line: lineNo, malformed: `${event}: ${bad}`, text: line };
    const r: QemuOpaqueRecord = { line: base.line, tid: base.tid, time: base.time, tUs: base.tUs, event, kind: 'opaque', args };
    if (keepText) (r as QemuRecord & WithText).rawText = line;
    return r;
  }
  return typedRecord(b, undefined, event, args, base, line, keepText);
}

/** A line of a log without timestamps ({@link isUntimedQemuLogLine}): tid 0, time 0, tUs = line number. */
function untimedRecord(event: string, args: string, lineNo: number, line: string): QemuRecord | QemuMalformed {
  const base: QemuBase = { line: lineNo, tid: 0, time: { sec: 0n, usec: 0 }, tUs: BigInt(lineNo), event };
  const b = BUILDER_MAP.get(event);
  if (b === undefined) return { ...base, kind: 'opaque', args, untimed: true };
  const rec = b(args, base);
  if (rec === null) return { kind: 'malformed', line: lineNo, malformed: `${event}: args do not match "${QEMU_FORMATS[event as QemuTypedKind]}"`, text: line };
  rec.untimed = true;
  return rec;
}

/** Options of the batch readers. */
export type { ReadOptions, WithText } from './lines.js';
import type { ReadOptions, WithText } from './lines.js';

/**
 * The items of {@link readQemuLogBatches}, in order, handed to `visit` with the line each was read
 * from, except that lines are only peeked at as {@link peekQemuLogLine} does (`unread`: typed events
 * whose args are not checked): a peek is the shared {@link QemuPeek}, valid during the call. The last
 * call is the end of input. Yields (nothing) after each chunk of lines, so a caller can hand on
 * what it made of them.
 */
export async function* visitQemuLog(
  source: LineSource,
  unread: ReadonlySet<string> | null,
  visit: (it: QemuRecord | QemuMalformed | QemuPeek | QemuEndOfInput, line: string) => void,
): AsyncGenerator<void> {
  const state = newLineStreamState();
  let lineNo = 0;
  let records = 0;
  let malformed = 0;
  const one = (line: string, n: number): void => {
    const it = parseOrPeek(line, n, false, true, unread, state.plain === true);
    if (it === null) return;
    if (it.kind === 'malformed') malformed++;
    else records++;
    visit(it, line);
  };
  // a file that does not end with a newline: its last line, if not blank, is malformed (cut off),
  // whatever it says (readQemuLogBatches); so each chunk's last line waits for the next chunk
  let held: string | null = null;
  for await (const batch of lineBatches(source, state)) {
    if (held !== null) one(held, lineNo);
    const last = batch.length - 1;
    for (let k = 0; k < last; k++) one(batch[k]!, ++lineNo);
    held = batch[last]!;
    lineNo++;
    yield;
  }
  if (held !== null) {
    if (state.finalNewline) one(held, lineNo);
    else if (parseOrPeek(held, lineNo, false, true, unread) !== null) {
      malformed++;
      visit({ kind: 'malformed', line: lineNo, malformed: 'incomplete last line (no trailing newline): input truncated?', text: held }, held);
    }
  }
  visit({ kind: 'end-of-input', lines: lineNo, finalNewline: state.finalNewline, records, malformed }, '');
}

/**
 * Streams a QEMU log (path or readable stream) and yields one item per non-blank line, in order:
 * records and malformed-line reports, then a final {@link QemuEndOfInput}. If the input does not end
 * with a newline, the last line is reported as malformed instead of being parsed (a cut-off line can
 * otherwise look valid with a truncated number). Read errors (e.g. ENOENT) are thrown.
 */
export async function* readQemuLog(source: LineSource): AsyncGenerator<QemuItem> {
  for await (const batch of readQemuLogBatches(source)) yield* batch;
}

/**
 * Same items as {@link readQemuLog}, handed out in arrays (one per chunk of input, in order; the last
 * array ends with the {@link QemuEndOfInput}). Cheaper per line: use it for multi-million-line logs.
 */
export async function* readQemuLogBatches(source: LineSource, opts: ReadOptions = {}): AsyncGenerator<QemuItem[]> {
  const state = newLineStreamState();
  let lineNo = 0;
  let pending: QemuRecord | QemuMalformed | null = null;
  let pendingText = '';
  let records = 0;
  let malformed = 0;
  const keep = opts.text === true;
  for await (const batch of lineBatches(source, state)) {
    const plain = state.plain === true;
    const out: QemuItem[] = [];
    for (const line of batch) {
      lineNo++;
      const item = parseOrPeek(line, lineNo, keep, false, null, plain) as QemuRecord | QemuMalformed | null;
      if (item === null) continue;
      if (pending !== null) {
        if (pending.kind === 'malformed') malformed++;
        else records++;
        out.push(pending);
      }
      pending = item;
      pendingText = line;
    }
    if (out.length > 0) yield out;
  }
  const out: QemuItem[] = [];
  if (pending !== null) {
    if (!state.finalNewline && pending.line === lineNo) {
      pending = {
        kind: 'malformed',
        line: lineNo,
        malformed: 'incomplete last line (no trailing newline): input truncated?',
        text: pendingText,
      };
    }
    if (pending.kind === 'malformed') malformed++;
    else records++;
    out.push(pending);
  }
  out.push({ kind: 'end-of-input', lines: lineNo, finalNewline: state.finalNewline, records, malformed });
  yield out;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * Phase marker written by the trace workload: a 4-byte config write of `0x5254_00NN` to offset 0xfc of
 * the host bridge 00:00.0 (`pci_cfg_write mch 00:00.0 @0xfc <- 0x525400NN`). Returns N (255 = end
 * marker, 254 = io-done), or null if the record is not such a marker.
 */
export function qemuPhaseMarker(rec: QemuRecord | QemuMalformed | QemuEndOfInput): number | null {
  if (rec.kind !== 'pci_cfg_write') return null;
  if (rec.bus !== 0 || rec.dev !== 0 || rec.fn !== 0 || rec.offset !== 0xfc) return null;
  if (rec.value >>> 8 !== 0x525400) return null;
  return rec.value & 0xff;
}

/** Requester/source id of a PCI function: bus << 8 | dev << 3 | fn. */
export function sidOf(bdf: Bdf): number {
  return (bdf.bus << 8) | (bdf.dev << 3) | bdf.fn;
}

/** Inverse of {@link sidOf}. */
export function bdfOfSid(sid: number): Bdf {
  return { bus: (sid >> 8) & 0xff, dev: (sid >> 3) & 0x1f, fn: sid & 7 };
}

/** `BB:DD.F`, as QEMU and lspci print it (the guest's ftrace device names add a `0000:` domain). */
export function formatBdf(bdf: Bdf): string {
  const h2 = (n: number) => n.toString(16).padStart(2, '0');
  return `${h2(bdf.bus)}:${h2(bdf.dev)}.${bdf.fn.toString(16)}`;
}
