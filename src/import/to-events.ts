/**
 * From parsed trace records to dmareplay events.
 *
 * Two passes over each input file:
 * 1. {@link scanGuest} / {@link scanHost} read the whole file once and collect what the conversion
 *    needs up front: phase markers (for alignment), the guest kernel command line (strict / lazy /
 *    passthrough), which PCI functions appear, VT-d/AMD-Vi domain → requester id, which QEMU virtqueue
 *    pointer belongs to which device, malformed lines and whether the file was cut off. Nothing is
 *    written anywhere during a scan, so a bad input (with `--strict`) fails before the database is
 *    touched.
 * 2. {@link GuestConverter} / {@link HostConverter} turn records into events, one record at a time
 *    (bounded memory). Every event carries the time of its line (guest: ns since boot; host: µs since
 *    the epoch) for the merge.
 *
 * Mapping (see README "Import and export"): guest `map`/`unmap` → `iommu.map`/`iommu.unmap` on dev
 * 0xffff (the guest trace does not name the device); `swiotlb_bounced` → `swiotlb.bounce` (tlb 0: the
 * slot is not traced); `dma:*` → `dma.map/unmap/sync`; `io_page_fault` / `vtd_dmar_fault` /
 * `virtio_iommu_report_fault` → `iommu.fault`; `vtd_iotlb_page_hit|update` + the `vtd_dmar_translate`
 * QEMU logs right after it for the same access → one `iommu.translate` (cache hit|miss; a translate
 * without a lookup line is `pt`); `amdvi_iotlb_hit|cache_update` + `amdvi_translation_result` likewise;
 * invalidation descriptors → `iommu.inv`; `virtqueue_pop/fill/flush` → `vq.pop`/`vq.fill`;
 * `virtio_notify[_irqfd]` → `vring.irq`; `vhost_iotlb_miss` steps around QEMU's translation →
 * `iotlb.miss` + `iotlb.update`, vhost-user IOTLB messages after a page invalidation, Device-TLB
 * invalidation descriptors and vhost-vdpa dma_map/unmap → `iotlb.invalidate`/`iotlb.update` (see
 * {@link HostConverter.vhost}); phase markers → `marker`; everything else → `opaque` (the line verbatim).
 */
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InputError } from '../errors.js';
import type { NewEvent } from '../events/schema.js';
import { QUEUE_UNKNOWN } from '../model/device-iotlb.js';
import type { PermName } from '../model/types.js';
import type { TraceFormat } from './detect.js';
import type { LineSource } from './lines.js';
import { type FtraceItem, type FtraceRecord, parsePciDeviceName, readFtraceBatches, rtMark } from './ftrace.js';
import { QEMU_FORMATS, type QemuEndOfInput, type QemuItem, type QemuMalformed, type QemuPeek, type QemuRecord, type QemuTypedKind, qemuPhaseMarker, visitQemuLog, sidOf } from './qemu-log.js';

/** The device id used when a trace line does not name the device. */
export const DEV_UNKNOWN = 0xffff;
/** Marker n of the synthetic markers the importer adds (end of the guest log, end of all logs). */
export const MARKER_GUEST_END = 0xfffe;
export const MARKER_END = 0xffff;
/** Where the host log ran out while the guest's went on (a cut host log). */
export const MARKER_HOST_END = 0xfffd;
export const HOST_END_NAME = 'end-of-host-log';
/** Where a cut guest log stops being trusted (its end, less the merge's repair reach). */
export const MARKER_GUEST_CUT = 0xfffc;
export const GUEST_CUT_NAME = 'guest-log-cut-off';
export const GUEST_END_NAME = 'end-of-guest-log';
export const END_NAME = 'end-of-logs';

export interface MalformedLine {
  file: string;
  line: number;
  reason: string;
}

export interface MarkerInfo {
  n: number;
  name: string;
  /** side-local time: ns since boot (guest), µs since the epoch (host) */
  t: number;
}

export interface SideScan {
  side: 'guest' | 'host';
  file: string;
  format: TraceFormat;
  lines: number;
  records: number;
  malformed: number;
  /** the first {@link MAX_MALFORMED_LISTED} malformed lines */
  malformedLines: MalformedLine[];
  /** why the file looks cut off, or null */
  truncated: string | null;
  markers: MarkerInfo[];
  firstT: number | null;
  lastT: number | null;
  /** raw record counts by trace event name */
  events: Map<string, number>;
}

export interface GuestScan extends SideScan {
  side: 'guest';
  cmdline: string | null;
  lostEvents: number;
  /** PCI requester ids named by the guest trace, with the device name as printed */
  devices: Map<number, string>;
  dmaMask: Map<number, bigint>;
  iommuMaps: number;
  iommuUnmaps: number;
  /** the guest's dmesg (after RT-TRACE-END in a serial capture) says the IOMMU driver is strict */
  strictHint: string | null;
  bounces: number;
  forcedBounces: number;
}

export interface HostScan extends SideScan {
  side: 'host';
  /** VT-d domain id → source id (-1: more than one device in the domain) */
  domainSid: Map<number, number>;
  /** AMD-Vi domain id → device id */
  amdDomainDev: Map<number, number>;
  /** virtio-iommu domain → endpoint */
  viommuDomainEp: Map<number, number>;
  /** requester ids seen, with the QEMU device model name when a config write names it */
  devices: Map<number, string>;
  /** QEMU VirtQueue pointer → [requester id, queue index] */
  vqs: Map<bigint, [number, number]>;
  pageInvalidations: number;
  /** every IOTLB invalidation (page, domain, global; VT-d and AMD-Vi) */
  invalidations: number;
  iommuEvents: number;
  /** amdvi_* lines seen: the vIOMMU is QEMU's amd-iommu */
  amd: boolean;
  /** vhost IOTLB traffic seen (vhost_iotlb_miss, vhost_vdpa_dma_map/unmap): the log carries iotlb.* events */
  vhostIotlb: number;
  /** vhost-vdpa map/unmap lines (they name no PCI function: imported on the unknown device) */
  vdpa: number;
  /** vhost_user_* lines: the vhost back-end is vhost-user (its IOTLB messages are traced) */
  vhostUser: number;
  /** lines without the `TID@SEC.USEC:` prefix (QEMU without -msg timestamp=on): ordered by line only */
  untimed: number;
  /** line number of the first record (for messages) */
  firstLine: number | null;
  /**
   * Scanned with `deferArgs`: `records`, `malformed` and `malformedLines` count the lines pass 1
   * checked; {@link hostEvents} sets them to the whole file's once it has read it all.
   */
  deferred?: boolean;
  /**
   * A sample of the host's translations (IOVA page → GPA page at host time t, after `markers` host
   * markers), for fitting the guest clock onto the host clock (src/import/merge.ts). At most
   * {@link MAX_XLATE_SAMPLES} per phase.
   */
  xlate: XlateSample[];
}

export interface XlateSample {
  t: number;
  page: number;
  gpaPage: number;
  /** host markers seen before it */
  markers: number;
}

export const MAX_XLATE_SAMPLES = 4000;

/** hw/virtio/vhost-user.c VhostUserRequest: VHOST_USER_IOTLB_MSG */
export const VHOST_USER_IOTLB_MSG = 22;

export const MAX_MALFORMED_LISTED = 100;

const bump = (m: Map<string, number>, k: string): void => {
  m.set(k, (m.get(k) ?? 0) + 1);
};

function pciSid(name: string): number {
  const p = parsePciDeviceName(name);
  return p === null || p.domain !== 0 ? DEV_UNKNOWN : (p.bus << 8) | (p.dev << 3) | p.fn;
}

function strictError(file: string, line: number, reason: string): InputError {
  return new InputError(`${file}:${line}: malformed line (--strict): ${reason}`);
}

export interface ScanOptions {
  strict?: boolean;
  /** called now and then with the number of lines read so far */
  progress?: (lines: number) => void;
  /**
   * Collect the host's translation samples ({@link HostScan.xlate}; default true). They only serve to
   * fit a guest log's clock: a host log imported alone does without (a long log has up to
   * MAX_XLATE_SAMPLES per phase, held for the whole import).
   */
  xlate?: boolean;
  /**
   * Leave the args of typed events the scan does not read (vtd_inv_desc, virtqueue_pop, …: see
   * {@link SCAN_UNREAD}) to pass 2: the scan takes such a line for a record, so its `records`,
   * `malformed` and `malformedLines` (and firstT/lastT) are final only once {@link hostEvents} has read
   * the whole file again ({@link HostScan.deferred}). For a host log imported alone without
   * --strict (default false).
   */
  deferArgs?: boolean;
}

/**
 * The typed QEMU events whose fields {@link scanHost} does not read (it only counts them): with
 * `deferArgs` their args are checked in pass 2 only. Everything the scan's switch reads, and every
 * amdvi_* event (any of them says the vIOMMU is amd-iommu), is parsed in pass 1.
 */
export const SCAN_UNREAD: ReadonlySet<string> = new Set(
  (Object.keys(QEMU_FORMATS) as QemuTypedKind[]).filter(
    (k) =>
      !k.startsWith('amdvi_') &&
      ![
        'vtd_iotlb_page_hit', 'vtd_iotlb_page_update', 'vtd_dmar_translate', 'vtd_dmar_fault', 'vtd_inv_desc_iotlb_pages',
        'vtd_inv_desc_iotlb_domain', 'vtd_inv_desc_iotlb_global', 'virtio_iommu_attach', 'virtio_iommu_map', 'virtio_iommu_unmap',
        'virtio_iommu_unmap_done', 'virtio_iommu_translate_out', 'virtio_iommu_report_fault', 'virtio_queue_notify', 'virtio_set_status',
        'virtio_notify', 'virtio_notify_irqfd', 'virtio_blk_handle_read', 'virtio_blk_handle_write', 'virtio_blk_req_complete',
        'vhost_iotlb_miss', 'vhost_vdpa_dma_map', 'vhost_vdpa_dma_unmap', 'vhost_user_write', 'pci_cfg_write',
      ].includes(k),
  ),
);

/** Pass 1 over a guest ftrace file. Throws an InputError at the first malformed line with `strict`. */
export async function scanGuest(file: string, opts: ScanOptions = {}): Promise<GuestScan> {
  const s: GuestScan = {
    side: 'guest', file, format: 'ftrace', lines: 0, records: 0, malformed: 0, malformedLines: [], truncated: null,
    markers: [], firstT: null, lastT: null, events: new Map(),
    cmdline: null, lostEvents: 0, devices: new Map(), dmaMask: new Map(), iommuMaps: 0, iommuUnmaps: 0, strictHint: null, bounces: 0, forcedBounces: 0,
  };
  const dev = (name: string): void => {
    const sid = pciSid(name);
    if (sid !== DEV_UNKNOWN && !s.devices.has(sid)) s.devices.set(sid, name);
  };
  for await (const batch of readFtraceBatches(file)) {
    for (const it of batch as FtraceItem[]) {
      switch (it.kind) {
        case 'end-of-input':
          s.lines = it.lines;
          s.strictHint = it.strictHint ?? null;
          if (it.unterminatedFrame) s.truncated = `no RT-TRACE-END after the RT-TRACE-BEGIN at line ${it.begin?.line ?? '?'}: the trace was cut off after line ${it.lines}`;
          else if (!it.finalNewline) s.truncated = `the last line (${it.lines}) has no newline: the file was cut off mid-line`;
          continue;
        case 'malformed':
          if (opts.strict) throw strictError(file, it.line, it.malformed);
          s.malformed++;
          if (s.malformedLines.length < MAX_MALFORMED_LISTED) s.malformedLines.push({ file, line: it.line, reason: it.malformed });
          continue;
        case 'frame-begin':
          if (s.cmdline === null) s.cmdline = it.cmdline;
          continue;
        case 'lost-events':
          s.lostEvents += it.count;
          continue;
        case 'frame-end':
          continue;
      }
      const r = it as FtraceRecord;
      s.records++;
      bump(s.events, r.event);
      const t = Number(r.tNs);
      if (s.firstT === null) s.firstT = t;
      s.lastT = t;
      switch (r.kind) {
        case 'map':
          s.iommuMaps++;
          break;
        case 'unmap':
          s.iommuUnmaps++;
          break;
        case 'swiotlb_bounced':
          s.bounces++;
          if (r.force === 'FORCE') s.forcedBounces++;
          dev(r.device);
          if (!s.dmaMask.has(pciSid(r.device))) s.dmaMask.set(pciSid(r.device), r.dmaMask);
          break;
        case 'tracing_mark_write': {
          const m = rtMark(r);
          if (m) s.markers.push({ n: m.n, name: m.name, t });
          break;
        }
        case 'opaque':
          break;
        default:
          if ('device' in r && typeof r.device === 'string') dev(r.device);
      }
    }
    opts.progress?.(s.lines || (s.records + s.malformed));
  }
  return s;
}

/** Pass 1 over a QEMU log. Throws an InputError at the first malformed line with `strict`. */
export async function scanHost(file: string, opts: ScanOptions = {}): Promise<HostScan> {
  // --strict reports the first malformed line of any kind before anything is written: no deferring then
  const unread = opts.deferArgs && !opts.strict ? SCAN_UNREAD : null;
  if (unread && opts.xlate === false) {
    const split = await scanHostSplit(file, opts);
    if (split) return finishHostScan(split);
  }
  return finishHostScan(await scanHostPart(file, file, opts, unread));
}

/** What pass 1 keeps of (a part of) a QEMU log before the virtio devices are paired up. */
export interface HostScanPart {
  s: HostScan;
  /** virtio: vq pointer → (vdev, n), vdev → kind */
  vqVdev: Map<bigint, [bigint, number]>;
  blkVdevs: Set<bigint>;
  vdevs: Set<bigint>;
  /** the part did not end with a newline */
  cut: boolean;
}

const cutMessage = (lines: number): string => `the last line (${lines}) has no newline: the log was cut off mid-line`;

/**
 * Pass 1 over `source` (the whole log `file`, or a byte range of it read by scan-worker.ts: its line
 * numbers then count from the range's start).
 */
export async function scanHostPart(source: LineSource, file: string, opts: ScanOptions, unread: ReadonlySet<string> | null): Promise<HostScanPart> {
  const s: HostScan = {
    side: 'host', file, format: 'qemu-log', lines: 0, records: 0, malformed: 0, malformedLines: [], truncated: null,
    markers: [], firstT: null, lastT: null, events: new Map(),
    domainSid: new Map(), amdDomainDev: new Map(), viommuDomainEp: new Map(), devices: new Map(), vqs: new Map(),
    pageInvalidations: 0, invalidations: 0, iommuEvents: 0, amd: false, vhostIotlb: 0, vdpa: 0, vhostUser: 0, untimed: 0, firstLine: null, xlate: [],
  };
  if (unread) s.deferred = true;
  let cut = false;
  const seen = (sid: number): void => {
    if (!s.devices.has(sid)) s.devices.set(sid, '');
  };
  const domain = (m: Map<number, number>, d: number, sid: number): void => {
    const was = m.get(d);
    if (was === undefined) m.set(d, sid);
    else if (was !== sid) m.set(d, -1);
  };
  // virtio: vq pointer → (vdev, n), vdev → kind, PCI names → requester ids
  const vqVdev = new Map<bigint, [bigint, number]>();
  const blkVdevs = new Set<bigint>();
  const vdevs = new Set<bigint>();
  let samplePhase = 0;
  let samples = 0;
  const keepXlate = opts.xlate ?? true;
  // The items readQemuLogBatches would give, in order, but an opaque line of the usual shape is only
  // peeked at (its event name and time; peekQemuLogLine): most lines of a vIOMMU log are opaque.
  const visit = (it: QemuRecord | QemuMalformed | QemuPeek): void => {
      if (it.kind === 'malformed') {
        if (opts.strict) throw strictError(file, it.line, it.malformed);
        s.malformed++;
        if (s.malformedLines.length < MAX_MALFORMED_LISTED) s.malformedLines.push({ file, line: it.line, reason: it.malformed });
        return;
      }
      s.records++;
      if (it.kind === 'peek') {
        bump(s.events, it.event);
        const t = it.t;
        if (s.firstT === null) s.firstT = t;
        s.lastT = t;
        if (it.event.charCodeAt(0) === 97 && it.event.startsWith('amdvi_')) {
          s.amd = true;
          if (it.event === 'amdvi_all_inval') {
            s.iommuEvents++;
            s.invalidations++;
          }
        }
        if (s.firstLine === null) s.firstLine = it.line;
        return;
      }
      if (it.untimed) s.untimed++;
      bump(s.events, it.event);
      const t = Number(it.tUs);
      if (s.firstT === null) s.firstT = t;
      s.lastT = t;
      switch (it.kind) {
        case 'vtd_iotlb_page_hit':
        case 'vtd_iotlb_page_update':
          s.iommuEvents++;
          seen(it.sid);
          domain(s.domainSid, it.domain, it.sid);
          break;
        case 'vtd_dmar_translate':
        case 'amdvi_translation_result':
        case 'amdvi_iotlb_hit':
          s.iommuEvents++;
          seen(sidOf(it));
          if (it.kind !== 'amdvi_iotlb_hit' && it.gpa !== 0n) {
            if (s.markers.length !== samplePhase) {
              samplePhase = s.markers.length;
              samples = 0;
            }
            if (samples++ < MAX_XLATE_SAMPLES && keepXlate) {
              const gpa = it.kind === 'vtd_dmar_translate' ? (it.gpa & ~it.mask) | (it.iova & it.mask) : it.gpa;
              s.xlate.push({ t, page: Number(it.iova >> 12n), gpaPage: Number(gpa >> 12n), markers: s.markers.length });
            }
          }
          break;
        case 'amdvi_cache_update':
          s.amd = true;
          s.iommuEvents++;
          seen(sidOf(it));
          domain(s.amdDomainDev, it.domid, sidOf(it));
          break;
        case 'vtd_dmar_fault':
          s.iommuEvents++;
          seen(it.sid);
          break;
        case 'vtd_inv_desc_iotlb_pages':
          s.iommuEvents++;
          s.pageInvalidations++;
          s.invalidations++;
          break;
        case 'vtd_inv_desc_iotlb_domain':
        case 'vtd_inv_desc_iotlb_global':
        case 'amdvi_pages_inval':
          s.iommuEvents++;
          s.invalidations++;
          break;
        case 'virtio_iommu_attach':
          domain(s.viommuDomainEp, it.domain, it.endpoint);
          seen(it.endpoint);
          break;
        case 'virtio_iommu_map':
        case 'virtio_iommu_unmap':
        case 'virtio_iommu_unmap_done':
        case 'virtio_iommu_translate_out':
        case 'virtio_iommu_report_fault':
          s.iommuEvents++;
          break;
        case 'virtio_queue_notify':
          vqVdev.set(it.vq, [it.vdev, it.n]);
          vdevs.add(it.vdev);
          break;
        case 'virtio_set_status':
        case 'virtio_notify':
        case 'virtio_notify_irqfd':
          vdevs.add(it.vdev);
          break;
        case 'virtio_blk_handle_read':
        case 'virtio_blk_handle_write':
        case 'virtio_blk_req_complete':
          blkVdevs.add(it.vdev);
          vdevs.add(it.vdev);
          break;
        case 'vhost_iotlb_miss':
          s.vhostIotlb++;
          break;
        case 'vhost_vdpa_dma_map':
        case 'vhost_vdpa_dma_unmap':
          s.vhostIotlb++;
          s.vdpa++;
          break;
        case 'vhost_user_write':
          s.vhostUser++;
          if (it.req === VHOST_USER_IOTLB_MSG) s.vhostIotlb++;
          break;
        case 'pci_cfg_write': {
          const n = qemuPhaseMarker(it);
          if (n !== null) s.markers.push({ n, name: '', t });
          else {
            const sid = sidOf(it);
            if (!s.devices.get(sid)) s.devices.set(sid, it.name);
          }
          break;
        }
        default:
          if (it.event === 'amdvi_all_inval') {
            s.iommuEvents++;
            s.invalidations++;
          }
          if (it.event.startsWith('amdvi_')) s.amd = true;
          break;
      }
      if (s.firstLine === null) s.firstLine = it.line;
  };
  for await (const _ of visitQemuLog(source, unread, (it) => {
    if (it.kind !== 'end-of-input') return visit(it);
    s.lines = it.lines;
    cut = !it.finalNewline;
    if (cut) s.truncated = cutMessage(it.lines);
  }))
    opts.progress?.(s.records + s.malformed);
  return { s, vqVdev, blkVdevs, vdevs, cut };
}

/** The end of pass 1: which QEMU VirtIODevice is which PCI function. */
export function finishHostScan(part: HostScanPart): HostScan {
  const { s, vqVdev, blkVdevs, vdevs } = part;
  // Which QEMU VirtIODevice is which PCI function: virtio-blk devices show themselves through their
  // own events; one remaining virtio device and one remaining virtio-*-pci function pair up.
  const pciOfKind = (re: RegExp) => [...s.devices].filter(([, name]) => re.test(name)).map(([sid]) => sid);
  const vdevSid = new Map<bigint, number>();
  const blkPci = pciOfKind(/^virtio-blk/);
  if (blkVdevs.size === 1 && blkPci.length === 1) vdevSid.set([...blkVdevs][0]!, blkPci[0]!);
  const otherVdevs = [...vdevs].filter((v) => !blkVdevs.has(v));
  const otherPci = pciOfKind(/^virtio-/).filter((sid) => !blkPci.includes(sid));
  if (otherVdevs.length === 1 && otherPci.length === 1) vdevSid.set(otherVdevs[0]!, otherPci[0]!);
  for (const [vq, [vdev, n]] of vqVdev) s.vqs.set(vq, [vdevSid.get(vdev) ?? DEV_UNKNOWN, n]);
  return s;
}

/** Below this size a log is scanned on this thread alone (a worker costs tens of ms to start). */
const SPLIT_MIN_BYTES = 16 << 20;
/**
 * Where the log is split: this thread takes a little more than half, since the worker starts tens of
 * ms later (1M-line vtd-cm log, idle machine: 0.5 left this thread waiting ~0.1 s for the worker).
 */
const SPLIT_AT = 0.56;
const SCAN_WORKER_URL = new URL('./scan-worker.js', import.meta.url);
// compiled only: from sources (the test runner) there is no scan-worker.js and the scan is not split
const SCAN_WORKER = SCAN_WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(SCAN_WORKER_URL));

/**
 * A deferred scan of a large log in two halves at once: this thread up to the first line end past
 * SPLIT_AT, a worker (scan-worker.ts) from there on; the parts are merged in file order as if
 * read by one scan. Null when the log is not split (small, no worker, no line end past that point,
 * or untimed lines in the second half, whose times are their line numbers).
 */
async function scanHostSplit(file: string, opts: ScanOptions): Promise<HostScanPart | null> {
  if (!SCAN_WORKER) return null;
  let size: number;
  let start = -1;
  try {
    size = statSync(file).size;
    if (size < SPLIT_MIN_BYTES || !statSync(file).isFile()) return null;
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(1 << 16);
      const mid = Math.floor(size * SPLIT_AT);
      const n = readSync(fd, buf, 0, buf.length, mid);
      const nl = buf.subarray(0, n).indexOf(10);
      if (nl >= 0) start = mid + nl + 1;
    } finally {
      closeSync(fd);
    }
  } catch {
    return null; // the whole scan reports it
  }
  if (start <= 0 || start >= size) return null;
  const worker = new Worker(SCAN_WORKER_URL, { workerData: { hostScanPart: { file, start } } });
  try {
    const second = new Promise<HostScanPart>((resolve, reject) => {
      worker.once('message', (m: { part?: HostScanPart; error?: string; code?: string }) =>
        m.part ? resolve(m.part) : reject(Object.assign(new Error(m.error ?? 'the scan worker failed'), { code: m.code })),
      );
      worker.once('error', reject);
    });
    second.catch(() => {}); // awaited below, unless the first half fails first
    const a = await scanHostPart(createReadStream(file, { end: start - 1, highWaterMark: 1 << 16 }), file, opts, SCAN_UNREAD);
    const b = await second;
    if (b.s.untimed > 0) return null;
    return mergeHostScanParts(a, b);
  } finally {
    void worker.terminate();
  }
}

/** `b` (the part of the log after `a`'s last line) merged into `a`, as one scan of both would have it. */
export function mergeHostScanParts(a: HostScanPart, b: HostScanPart): HostScanPart {
  const s = a.s;
  const t = b.s;
  const off = s.lines;
  s.lines += t.lines;
  s.records += t.records;
  s.malformed += t.malformed;
  for (const m of t.malformedLines) if (s.malformedLines.length < MAX_MALFORMED_LISTED) s.malformedLines.push({ file: s.file, line: m.line + off, reason: m.reason });
  s.truncated = b.cut ? cutMessage(s.lines) : null;
  a.cut = b.cut;
  s.markers.push(...t.markers);
  if (s.firstT === null) s.firstT = t.firstT;
  if (t.lastT !== null) s.lastT = t.lastT;
  for (const [k, n] of t.events) s.events.set(k, (s.events.get(k) ?? 0) + n);
  for (const [m, n] of [[s.domainSid, t.domainSid], [s.amdDomainDev, t.amdDomainDev], [s.viommuDomainEp, t.viommuDomainEp]] as const)
    for (const [d, sid] of n) {
      const was = m.get(d);
      if (was === undefined) m.set(d, sid);
      else if (was !== sid) m.set(d, -1);
    }
  // the first device name wins; a device first seen in b comes after a's
  for (const [sid, name] of t.devices) if (!s.devices.has(sid) || (!s.devices.get(sid) && name)) s.devices.set(sid, name);
  for (const [vq, v] of b.vqVdev) a.vqVdev.set(vq, v);
  for (const v of b.blkVdevs) a.blkVdevs.add(v);
  for (const v of b.vdevs) a.vdevs.add(v);
  s.pageInvalidations += t.pageInvalidations;
  s.invalidations += t.invalidations;
  s.iommuEvents += t.iommuEvents;
  s.amd ||= t.amd;
  s.vhostIotlb += t.vhostIotlb;
  s.vdpa += t.vdpa;
  s.vhostUser += t.vhostUser;
  s.untimed += t.untimed;
  if (s.firstLine === null && t.firstLine !== null) s.firstLine = t.firstLine + off;
  s.xlate.push(...t.xlate);
  return a;
}

// ---------------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------------

/** An event with the time of the line it came from (side-local clock) and, for markers, their ordinal. */
export interface TimedEvent {
  ev: NewEvent;
  t: number | null;
  /** for phase markers: index into the side's marker list (scan order) */
  markerIdx?: number;
}

/** The line an item was read from (readers run with `{ text: true }`). */
const raw = (it: object): string => (it as { rawText?: string }).rawText ?? '';

const PERM_OF_BITS: PermName[] = ['NONE', 'RO', 'WO', 'RW'];
const U32 = 0xffff_ffffn;

function u32(v: bigint): number | null {
  return v < 0n || v > U32 ? null : Number(v);
}

function opaque(side: 'guest' | 'host', event: string, text: string, actor: 'cpu0' | 'vmm' | 'iommu' = side === 'guest' ? 'cpu0' : 'vmm'): NewEvent {
  return { kind: 'opaque', actor, cause: 0, side, event, text };
}

/** Guest ftrace records → events. */
export class GuestConverter {
  private markerIdx = 0;
  private lastT: number | null = null;
  /** dma_map_sg entries by device and phys, for dma_unmap_sg (which prints only phys addresses) */
  private readonly sg = new Map<string, { dma: bigint; size: number }[]>();

  constructor(private readonly scan: GuestScan) {}

  convert(it: FtraceItem): TimedEvent[] {
    switch (it.kind) {
      case 'end-of-input':
      case 'malformed':
        return [];
      case 'frame-begin':
        return [{ ev: opaque('guest', 'RT-TRACE-BEGIN', raw(it)), t: this.lastT }];
      case 'frame-end':
        return [{ ev: opaque('guest', 'RT-TRACE-END', raw(it)), t: this.lastT }];
      case 'lost-events':
        return [{ ev: opaque('guest', 'lost-events', raw(it)), t: this.lastT }];
    }
    const r = it as FtraceRecord;
    const t = Number(r.tNs);
    this.lastT = t;
    const one = (ev: NewEvent): TimedEvent[] => [{ ev, t }];
    switch (r.kind) {
      case 'map':
        return one({ kind: 'iommu.map', actor: 'cpu0', cause: 0, dev: DEV_UNKNOWN, iova: r.iova, gpa: r.paddr, size: r.size, perm: 'RW' });
      case 'unmap':
        return one({ kind: 'iommu.unmap', actor: 'cpu0', cause: 0, dev: DEV_UNKNOWN, iova: r.iova, size: r.unmappedSize > 0n ? r.unmappedSize : r.size });
      case 'io_page_fault':
        // IOMMU_FAULT_WRITE = 1; the tracepoint has no fault reason
        return one({ kind: 'iommu.fault', actor: 'iommu', cause: 0, dev: pciSid(r.device), iova: r.iova, write: r.faultFlags & 1, reason: 0 });
      case 'swiotlb_bounced': {
        const size = u32(r.size);
        if (size === null) break;
        return one({ kind: 'swiotlb.bounce', actor: 'cpu0', cause: 0, dev: pciSid(r.device), orig: r.devAddr, tlb: 0n, size, toTlb: 1, trigger: 'map' });
      }
      case 'tracing_mark_write': {
        const m = rtMark(r);
        if (!m) break;
        return [{ ev: { kind: 'marker', actor: 'cpu0', cause: 0, n: m.n & 0xffff, name: m.name, side: 'guest' }, t, markerIdx: this.markerIdx++ }];
      }
      case 'dma_map_phys':
      case 'dma_map_page':
      case 'dma_map_resource': {
        const size = u32(r.size);
        if (size === null) break;
        return one({
          kind: 'dma.map', actor: 'cpu0', cause: 0, dev: pciSid(r.device), phys: r.physAddr, dma: r.dmaAddr, size, dir: r.dir,
          type: r.kind === 'dma_map_resource' ? 'single' : 'page', path: this.pathOf(r.physAddr, r.dmaAddr),
        });
      }
      case 'dma_unmap_phys':
      case 'dma_unmap_page':
      case 'dma_unmap_resource': {
        const size = u32(r.size);
        if (size === null) break;
        return one({ kind: 'dma.unmap', actor: 'cpu0', cause: 0, dev: pciSid(r.device), dma: r.dmaAddr, size, dir: r.dir, type: r.kind === 'dma_unmap_resource' ? 'single' : 'page' });
      }
      case 'dma_sync_single_for_cpu':
      case 'dma_sync_single_for_device': {
        const size = u32(r.size);
        if (size === null) break;
        return one({ kind: 'dma.sync', actor: 'cpu0', cause: 0, dev: pciSid(r.device), dma: r.dmaAddr, size, dir: r.dir, forCpu: r.kind === 'dma_sync_single_for_cpu' ? 1 : 0 });
      }
      case 'dma_sync_sg_for_cpu':
      case 'dma_sync_sg_for_device': {
        if (r.dmaAddrs.length !== r.sizes.length) break;
        const dev = pciSid(r.device);
        const forCpu = r.kind === 'dma_sync_sg_for_cpu' ? 1 : 0;
        return r.dmaAddrs.map((dma, i) => ({ ev: { kind: 'dma.sync', actor: 'cpu0', cause: 0, dev, dma, size: r.sizes[i]!, dir: r.dir, forCpu }, t }));
      }
      case 'dma_map_sg': {
        if (r.truncated || r.dmaAddrs.length !== r.sizes.length) break;
        const dev = pciSid(r.device);
        const out: TimedEvent[] = [];
        // dma_map_sg may merge entries: dma_addrs/sizes are the mapped segments, phys_addrs the inputs
        r.dmaAddrs.forEach((dma, i) => {
          const phys = r.physAddrs[i] ?? dma;
          out.push({ ev: { kind: 'dma.map', actor: 'cpu0', cause: 0, dev, phys, dma, size: r.sizes[i]!, dir: r.dir, type: 'sg', path: this.pathOf(phys, dma) }, t });
        });
        this.sg.set(`${dev}:${r.physAddrs.join(',')}`, r.dmaAddrs.map((dma, i) => ({ dma, size: r.sizes[i]! })));
        return out;
      }
      case 'dma_unmap_sg': {
        const dev = pciSid(r.device);
        const key = `${dev}:${r.physAddrs.join(',')}`;
        const ents = this.sg.get(key);
        if (!ents) break;
        this.sg.delete(key);
        return ents.map((e) => ({ ev: { kind: 'dma.unmap', actor: 'cpu0', cause: 0, dev, dma: e.dma, size: e.size, dir: r.dir, type: 'sg' }, t }));
      }
      case 'dma_alloc':
      case 'dma_alloc_pages': {
        const size = u32(r.size);
        if (size === null) break;
        return one({ kind: 'dma.map', actor: 'cpu0', cause: 0, dev: pciSid(r.device), phys: 0n, dma: r.dmaAddr, size, dir: r.dir ?? 'BIDIRECTIONAL', type: 'coherent', path: this.pathOf(null, r.dmaAddr) });
      }
      case 'dma_free':
      case 'dma_free_pages': {
        const size = u32(r.size);
        if (size === null) break;
        return one({ kind: 'dma.unmap', actor: 'cpu0', cause: 0, dev: pciSid(r.device), dma: r.dmaAddr, size, dir: r.dir ?? 'BIDIRECTIONAL', type: 'coherent' });
      }
      default:
        break;
    }
    return one(opaque('guest', r.event, raw(r)));
  }

  private pathOf(phys: bigint | null, dma: bigint): 'direct' | 'iommu' | 'swiotlb' {
    if (this.scan.bounces > 0 && this.scan.iommuMaps === 0) return phys === dma ? 'direct' : 'swiotlb';
    if (phys !== null && phys === dma) return 'direct';
    return this.scan.iommuMaps > 0 ? 'iommu' : 'direct';
  }
}

interface VhostMissState {
  /** time of step 1 */
  t: number;
  /** the translation QEMU did for it */
  xlate: { dev: number; iova: bigint; gpa: bigint; perm: PermName; mask: bigint; ok: boolean } | null;
  text: string;
}

interface PendingLookup {
  rec: QemuRecord & { kind: 'vtd_iotlb_page_hit' | 'vtd_iotlb_page_update' | 'amdvi_iotlb_hit' | 'amdvi_cache_update' };
  t: number;
}

/** Host (QEMU log) records → events. */
export class HostConverter {
  private markerIdx = 0;
  /** an IOTLB lookup line waiting for the translate line QEMU logs next (per thread) */
  private readonly pending = new Map<number, PendingLookup>();
  /** virtio-iommu: a translate request waiting for its translate_out */
  private readonly viommuReq = new Map<number, { rid: number; addr: bigint; flag: number }>();
  private readonly guestNames: Map<number, string>;
  /** vhost: a device-IOTLB miss QEMU is serving on this thread (vhost_iotlb_miss step 1 seen) */
  private readonly vhostMiss = new Map<number, VhostMissState>();
  /** devices that took a vhost IOTLB UPDATE: a vhost-kernel device IOTLB that page invalidations reach */
  private readonly vhostSids = new Set<number>();
  /** the last page-selective VT-d invalidation per thread: what a vhost-user IOTLB message right after it invalidates */
  private readonly pageInv = new Map<number, { dev: number; iova: bigint; size: bigint }>();
  /** vhost memory regions (vhost_region_add_section): GPA → the back-end's HVA, for UPDATE's uaddr */
  private readonly regions = new Map<bigint, { size: bigint; host: bigint }>();

  constructor(
    private readonly scan: HostScan,
    guestMarkers: MarkerInfo[] = [],
  ) {
    this.guestNames = new Map(guestMarkers.map((m) => [m.n, m.name]));
  }

  private domainDev(m: Map<number, number>, d: number): number {
    const sid = m.get(d);
    return sid === undefined || sid < 0 ? DEV_UNKNOWN : sid;
  }

  /** A deferred scan's counts made whole: the lines pass 1 only peeked at were parsed here. */
  private tally(it: QemuMalformed | QemuEndOfInput): void {
    const s = this.scan;
    if (it.kind === 'malformed') {
      if (this.malformedLines.length < MAX_MALFORMED_LISTED) this.malformedLines.push({ file: s.file, line: it.line, reason: it.malformed });
      return;
    }
    s.records = it.records;
    s.malformed = it.malformed;
    s.malformedLines = this.malformedLines;
    s.deferred = false;
  }

  /** Lookup lines still waiting (end of input). */
  flush(): TimedEvent[] {
    const out: TimedEvent[] = [];
    for (const p of this.pending.values()) out.push(this.lookupOnly(p));
    this.pending.clear();
    return out;
  }

  private lookupOnly(p: PendingLookup): TimedEvent {
    const r = p.rec;
    if (r.kind === 'vtd_iotlb_page_hit' || r.kind === 'vtd_iotlb_page_update')
      return { ev: { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: r.sid, iova: r.iova, gpa: r.gpa | (r.iova & 0xfffn), perm: PERM_OF_BITS[r.perm & 3]!, cache: r.kind === 'vtd_iotlb_page_hit' ? 'hit' : 'miss' }, t: p.t };
    return { ev: { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: sidOf(r), iova: r.iova, gpa: r.gpa, perm: 'RW', cache: r.kind === 'amdvi_iotlb_hit' ? 'hit' : 'miss' }, t: p.t };
  }

  /** with a deferred scan: the malformed lines of the whole file (pass 2 sees them all) */
  private readonly malformedLines: MalformedLine[] = [];

  convert(it: QemuItem): TimedEvent[] {
    if (it.kind === 'end-of-input' || it.kind === 'malformed') {
      if (this.scan.deferred) this.tally(it);
      return [];
    }
    const out = this.convertRecord(it);
    return this.scan.vhostIotlb > 0 ? this.vhost(it, out) : out;
  }

  /**
   * hw/virtio/vhost.c vhost_device_iotlb_miss, as its trace shows it: `vhost_iotlb_miss step 1` when a
   * back-end's VHOST_IOTLB_MISS arrives (the IOVA is not printed), then on the same thread the vIOMMU
   * translation QEMU does for it (address_space_get_iotlb_entry: vtd_iotlb_page_* + vtd_dmar_translate,
   * amdvi_*, or vtd_dmar_fault when it fails), then step 2 (done: an UPDATE of
   * [iova & ~addr_mask, +addr_mask] → HVA was sent, unless the translation failed), step 3 (the GPA is in
   * no vhost memory region) or step 4 (sending the UPDATE failed). So: iotlb.miss at step 1's time with
   * the translation's IOVA, then iotlb.update (ok at step 2, EFAULT at 3/4); no UPDATE after a fault.
   * The vq is not named (QUEUE_UNKNOWN).
   */
  private vhost(it: QemuRecord, out: TimedEvent[]): TimedEvent[] {
    const m = this.vhostMiss.get(it.tid);
    if (m && !m.xlate) {
      const i = out.findIndex((e) => e.ev.kind === 'iommu.translate' || e.ev.kind === 'iommu.fault');
      if (i >= 0) {
        const x = out[i]!.ev;
        if (x.kind === 'iommu.translate') {
          const mask = it.kind === 'vtd_dmar_translate' ? it.mask : 0xfffn;
          m.xlate = { dev: x.dev, iova: x.iova, gpa: x.gpa, perm: x.perm === 'NONE' ? 'RW' : x.perm, mask, ok: x.cache !== 'fault' && x.perm !== 'NONE' };
        } else if (x.kind === 'iommu.fault') m.xlate = { dev: x.dev, iova: x.iova, gpa: 0n, perm: x.write ? 'WO' : 'RO', mask: 0xfffn, ok: false };
        if (m.xlate) out.splice(i, 0, { ev: { kind: 'iotlb.miss', actor: 'vmm', cause: 0, dev: m.xlate.dev, q: QUEUE_UNKNOWN, iova: m.xlate.iova, perm: m.xlate.perm }, t: m.t });
      }
    }
    if (it.kind === 'vtd_inv_desc_iotlb_pages') {
      const inv = { dev: this.domainDev(this.scan.domainSid, it.domain), iova: it.addr, size: it.size };
      this.pageInv.set(it.tid, inv);
      // vhost-kernel (vhost-net): QEMU writes the INVALIDATE to the vhost fd without a trace line
      // (vhost_kernel_send_device_iotlb_msg); it follows every UNMAP notification of the page
      // invalidation (vtd_iotlb_page_invalidate_notify) for a device whose IOTLB vhost serves
      if (this.scan.vhostUser === 0 && this.vhostSids.has(inv.dev)) out.push({ ev: { kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: inv.dev, iova: inv.iova, size: inv.size, result: 'ok' }, t: Number(it.tUs) });
    }
    if (it.kind === 'vhost_user_write' && it.req === VHOST_USER_IOTLB_MSG && !m) {
      // not inside a miss, so not an UPDATE: vhost_iommu_unmap_notify → vhost_backend_invalidate_device_iotlb,
      // called by the vIOMMU's UNMAP notification of the page invalidation QEMU just processed on this
      // thread (intel_iommu.c vtd_iotlb_page_invalidate_notify: [addr, addr + size) for UNMAP-only notifiers)
      const inv = this.pageInv.get(it.tid);
      this.pageInv.delete(it.tid);
      if (inv) out.push({ ev: { kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: inv.dev, iova: inv.iova, size: inv.size, result: 'ok' }, t: Number(it.tUs) });
      else out.push({ ev: opaque('host', it.event, raw(it)), t: Number(it.tUs) });
      return out;
    }
    if (it.kind !== 'vhost_iotlb_miss') return out;
    const t = Number(it.tUs);
    if (it.step === 1) {
      this.vhostMiss.set(it.tid, { t, xlate: null, text: raw(it) });
      return out;
    }
    this.vhostMiss.delete(it.tid);
    const x = m?.xlate;
    if (!m || !x) {
      // no translation line between the steps (a trace without the vIOMMU's events): the IOVA is unknown
      if (m) out.push({ ev: opaque('host', it.event, m.text), t: m.t });
      out.push({ ev: opaque('host', it.event, raw(it)), t });
      return out;
    }
    if (!x.ok) return out; // the translation failed: QEMU sends nothing, the miss stays unanswered
    this.vhostSids.add(x.dev);
    const base = x.iova & ~x.mask;
    const gpaBase = x.gpa & ~x.mask;
    out.push({
      ev: { kind: 'iotlb.update', actor: 'vmm', cause: 0, dev: x.dev, iova: base, size: x.mask + 1n, uaddr: this.hvaOf(gpaBase), perm: x.perm, result: it.step === 2 ? 'ok' : 'EFAULT' },
      t,
    });
    return out;
  }

  /** vhost_memory_region_lookup: the HVA of a GPA in the vhost memory table (the GPA itself if unknown). */
  private hvaOf(gpa: bigint): bigint {
    for (const [start, r] of this.regions) if (gpa >= start && gpa - start < r.size) return r.host + (gpa - start);
    return gpa;
  }

  private convertRecord(it: QemuRecord): TimedEvent[] {
    const t = Number(it.tUs);
    const out: TimedEvent[] = [];
    const waiting = this.pending.get(it.tid);
    if (waiting) {
      this.pending.delete(it.tid);
      const paired = this.pair(waiting, it, t);
      if (paired) return [paired];
      out.push(this.lookupOnly(waiting));
    }
    const one = (ev: NewEvent): TimedEvent[] => {
      out.push({ ev, t });
      return out;
    };
    switch (it.kind) {
      case 'vtd_iotlb_page_hit':
      case 'vtd_iotlb_page_update':
      case 'amdvi_iotlb_hit':
      case 'amdvi_cache_update':
        this.pending.set(it.tid, { rec: it, t });
        return out;
      case 'vtd_dmar_translate':
        // no lookup line before it: DMAR disabled or pass-through context, QEMU translated 1:1
        return one({ kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: sidOf(it), iova: it.iova, gpa: it.gpa, perm: 'RW', cache: 'pt' });
      case 'amdvi_translation_result':
        // QEMU 7.2 amd-iommu: a walk that found no PTE gives 0 with no permission and no fault event
        if (it.gpa === 0n && it.iova !== 0n) return one({ kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: sidOf(it), iova: it.iova, gpa: 0n, perm: 'NONE', cache: 'fault' });
        return one({ kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: sidOf(it), iova: it.iova, gpa: it.gpa, perm: 'RW', cache: 'miss' });
      case 'vtd_inv_desc_iotlb_pages':
        return one({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: this.domainDev(this.scan.domainSid, it.domain), iova: it.addr, size: it.size, gran: 'page' });
      case 'vtd_inv_desc_iotlb_domain':
        return one({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: this.domainDev(this.scan.domainSid, it.domain), iova: 0n, size: 0n, gran: 'domain' });
      case 'vtd_inv_desc_iotlb_global':
        return one({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: DEV_UNKNOWN, iova: 0n, size: 0n, gran: 'global' });
      case 'amdvi_pages_inval':
        // QEMU 7.2 prints only the domain, and drops every IOTLB entry of that domain
        return one({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: this.domainDev(this.scan.amdDomainDev, it.domid), iova: 0n, size: 0n, gran: 'domain' });
      case 'vtd_dmar_fault':
        return one({ kind: 'iommu.fault', actor: 'iommu', cause: 0, dev: it.sid, iova: it.addr, write: it.write ? 1 : 0, reason: it.fault & 0xff });
      case 'virtio_iommu_map': {
        const perm = PERM_OF_BITS[it.flags & 3]!;
        return one({ kind: 'iommu.map', actor: 'iommu', cause: 0, dev: this.domainDev(this.scan.viommuDomainEp, it.domain), iova: it.virtStart, gpa: it.physStart, size: it.virtEnd - it.virtStart + 1n, perm });
      }
      case 'virtio_iommu_unmap':
        // the request, traced before it is checked: an UNMAP that would split a mapping fails with
        // S_RANGE and removes nothing, so what was removed comes from the _done lines
        return one(opaque('host', it.event, raw(it)));
      case 'virtio_iommu_unmap_done':
        // virtio_iommu_unmap: one line per mapping really removed
        return one({ kind: 'iommu.unmap', actor: 'iommu', cause: 0, dev: this.domainDev(this.scan.viommuDomainEp, it.domain), iova: it.virtStart, size: it.virtEnd - it.virtStart + 1n });
      case 'virtio_iommu_translate':
        // folded into the translate_out QEMU logs next
        this.viommuReq.set(it.tid, { rid: it.rid, addr: it.addr, flag: it.flag });
        return out;
      case 'virtio_iommu_translate_out': {
        const req = this.viommuReq.get(it.tid);
        this.viommuReq.delete(it.tid);
        const perm: PermName = req ? PERM_OF_BITS[req.flag & 3]! : 'RW';
        return one({ kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: it.sid & 0xffff, iova: it.virtAddr, gpa: it.physAddr, perm: perm === 'NONE' ? 'RW' : perm, cache: 'miss' });
      }
      case 'virtio_iommu_report_fault':
        // VIRTIO_IOMMU_FAULT_F_WRITE = 2
        return one({ kind: 'iommu.fault', actor: 'iommu', cause: 0, dev: it.endpoint & 0xffff, iova: it.addr, write: it.flags & 2 ? 1 : 0, reason: it.reason & 0xff });
      case 'virtqueue_pop': {
        const [dev, q] = this.scan.vqs.get(it.vq) ?? [DEV_UNKNOWN, 0xff];
        return one({ kind: 'vq.pop', actor: 'vmm', cause: 0, dev, q: q & 0xff, elem: it.elem, inNum: it.inNum & 0xffff, outNum: it.outNum & 0xffff });
      }
      case 'virtqueue_fill': {
        const [dev, q] = this.scan.vqs.get(it.vq) ?? [DEV_UNKNOWN, 0xff];
        return one({ kind: 'vq.fill', actor: 'vmm', cause: 0, dev, q: q & 0xff, elem: it.elem, len: it.len >>> 0, count: 0 });
      }
      case 'virtqueue_flush': {
        const [dev, q] = this.scan.vqs.get(it.vq) ?? [DEV_UNKNOWN, 0xff];
        return one({ kind: 'vq.fill', actor: 'vmm', cause: 0, dev, q: q & 0xff, elem: 0n, len: 0, count: it.count & 0xffff });
      }
      case 'virtio_notify':
      case 'virtio_notify_irqfd': {
        const q = this.scan.vqs.get(it.vq)?.[1] ?? 0xff;
        return one({ kind: 'vring.irq', actor: 'vmm', cause: 0, q: q & 0xff });
      }
      case 'vhost_iotlb_miss':
        return out; // see vhost()
      case 'vhost_user_write':
        if (it.req === VHOST_USER_IOTLB_MSG && this.scan.vhostIotlb > 0) return out; // see vhost()
        break;
      case 'vhost_region_add_section':
        this.regions.set(it.gpa, { size: it.size, host: it.host });
        break;
      case 'vhost_vdpa_dma_map':
        // vhost_vdpa_dma_map: VHOST_IOTLB_UPDATE on the vhost-vdpa fd (without a vIOMMU the IOVA is the GPA)
        return one({ kind: 'iotlb.update', actor: 'vmm', cause: 0, dev: DEV_UNKNOWN, iova: it.iova, size: it.size, uaddr: it.uaddr, perm: PERM_OF_BITS[it.perm & 3]!, result: 'ok' });
      case 'vhost_vdpa_dma_unmap':
        return one({ kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: DEV_UNKNOWN, iova: it.iova, size: it.size, result: 'ok' });
      case 'vtd_inv_desc': {
        // intel_iommu.c vtd_process_device_iotlb_desc: a Device-TLB invalidation (ATS) is what reaches
        // vhost (its IOMMU notifier is IOMMU_NOTIFIER_DEVIOTLB_UNMAP in QEMU 5.2–8.0) → VHOST_IOTLB_INVALIDATE
        if (it.type !== 'device' || this.scan.vhostIotlb === 0) break;
        const sid = Number((it.lo >> 32n) & 0xffffn);
        if (!this.scan.devices.has(sid)) break;
        let addr = it.hi & 0xffff_ffff_ffff_f000n;
        let size = 0x1000n;
        if (it.hi & 1n) {
          // S bit: the size is encoded by the trailing 1 bits of the address above bit 12
          let ones = 0n;
          while ((addr >> (12n + ones)) & 1n) ones++;
          size = 0x2000n << ones;
          addr &= ~(size - 1n);
        }
        return one({ kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: sid, iova: addr, size, result: 'ok' });
      }
      case 'pci_cfg_write': {
        const n = qemuPhaseMarker(it);
        if (n === null) break;
        out.push({ ev: { kind: 'marker', actor: 'vmm', cause: 0, n, name: this.guestNames.get(n) ?? '', side: 'host' }, t, markerIdx: this.markerIdx++ });
        return out;
      }
      default:
        // amd_iommu.c amdvi_inval_all (INVALIDATE_IOMMU_ALL): amdvi_iotlb_reset, every IOTLB entry dropped
        if (it.event === 'amdvi_all_inval') return one({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: DEV_UNKNOWN, iova: 0n, size: 0n, gran: 'global' });
        break;
    }
    return one(opaque('host', it.event, raw(it)));
  }

  /** A lookup line followed by the translate line of the same access → one iommu.translate. */
  private pair(p: PendingLookup, it: QemuRecord, t: number): TimedEvent | null {
    const r = p.rec;
    if (it.kind === 'vtd_dmar_translate' && (r.kind === 'vtd_iotlb_page_hit' || r.kind === 'vtd_iotlb_page_update')) {
      if (sidOf(it) !== r.sid || it.iova !== (r.iova & ~it.mask)) return null;
      // the translate line is what QEMU returned: its gpa wins if the two ever disagree
      // (mask: a large page translates with its offset inside the large page)
      return { ev: { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: r.sid, iova: r.iova, gpa: (it.gpa & ~it.mask) | (r.iova & it.mask), perm: PERM_OF_BITS[r.perm & 3]!, cache: r.kind === 'vtd_iotlb_page_hit' ? 'hit' : 'miss' }, t };
    }
    if (it.kind === 'amdvi_translation_result' && (r.kind === 'amdvi_iotlb_hit' || r.kind === 'amdvi_cache_update')) {
      if (sidOf(it) !== sidOf(r) || it.iova !== r.iova) return null;
      return { ev: { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: sidOf(it), iova: it.iova, gpa: it.gpa, perm: 'RW', cache: r.kind === 'amdvi_iotlb_hit' ? 'hit' : 'miss' }, t };
    }
    return null;
  }
}

/** The guest's DMA mode as far as the traces tell, and why. */
export interface DmaMode {
  path: 'iommu' | 'iommu-lazy' | 'passthrough' | 'swiotlb' | 'swiotlb-force' | 'dma-direct';
  why: string;
}

/**
 * Strict vs lazy (flush queue) vs passthrough: from the guest command line (`iommu.strict=`, `iommu=pt`,
 * `intel_iommu=…strict`), overridden by what the host saw: page-selective IOTLB invalidations mean the
 * guest invalidates per unmap (strict; a vIOMMU with caching mode forces that whatever the command
 * line says). With neither, x86 kernels default to lazy (CONFIG_IOMMU_DEFAULT_DMA_LAZY), which is the
 * weaker requirement, so that is assumed.
 */
export function dmaMode(guest: GuestScan | null, host: HostScan | null): DmaMode {
  const cmd = guest?.cmdline ?? '';
  const tok = (re: RegExp) => cmd.split(/\s+/).some((t) => re.test(t));
  if (tok(/^iommu=pt$/) || tok(/^iommu\.passthrough=(1|y|on)$/)) return { path: 'passthrough', why: 'guest command line: iommu=pt (identity domains)' };
  const maps = guest?.iommuMaps ?? 0;
  if (maps === 0 && (guest?.bounces ?? 0) > 0)
    return guest!.forcedBounces > 0 ? { path: 'swiotlb-force', why: 'guest bounces every mapping through swiotlb (FORCE)' } : { path: 'swiotlb', why: 'guest bounces through swiotlb' };
  if (host && host.pageInvalidations > 0) return { path: 'iommu', why: `strict: the host shows ${host.pageInvalidations} page-selective IOTLB invalidations (strict unmap, or a vIOMMU in caching mode)` };
  if (guest?.strictHint) return { path: 'iommu', why: `strict: the guest's dmesg says "${guest.strictHint}"` };
  if (tok(/^iommu\.strict=(1|y|on)$/) || tok(/^intel_iommu=(.*,)?strict(,.*)?$/)) return { path: 'iommu', why: 'strict: guest command line iommu.strict=1' };
  if (tok(/^iommu\.strict=(0|n|off)$/)) return { path: 'iommu-lazy', why: 'lazy (flush queue): guest command line iommu.strict=0' };
  // AMD-Vi invalidations name only the domain (QEMU 7.2 amdvi_pages_inval), so the page-selective
  // rule above never applies: a strict guest (amd_iommu_init: "Using strict mode due to
  // virtualization") flushes once per unmap, a lazy one once per flush-queue batch (up to 256 unmaps)
  const unmaps = guest?.iommuUnmaps ?? 0;
  if (host && unmaps >= 16 && host.invalidations >= unmaps / 2)
    return { path: 'iommu', why: `strict: the host shows ${host.invalidations} IOTLB invalidations for ${unmaps} guest unmaps (one per unmap; a flush queue would batch them)` };
  if (maps > 0 || (host?.iommuEvents ?? 0) > 0) return { path: 'iommu-lazy', why: 'lazy assumed: nothing says strict (x86 kernels default to the flush queue), the weaker requirement' };
  return { path: 'dma-direct', why: 'no IOMMU or swiotlb activity in the traces' };
}
