/**
 * Parser for Linux ftrace text output (`/sys/kernel/tracing/trace`, `trace_pipe`, Linux 6.x):
 *
 *     TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: ARGS
 *               dd-120     [000] d..1.     3.612881: map: IOMMU: iova=0x… - 0x… paddr=0x… size=4096
 *
 * Typed records exist for the `iommu:*`, `swiotlb:swiotlb_bounced`, `dma:*` (6.12+) events and the
 * `tracing_mark_write` marker; every other well-formed event line becomes an `opaque` record.
 * Discriminate records on `kind`: it equals `event` for typed records and is `'opaque'` otherwise.
 * Addresses and sizes are `bigint`; the timestamp is kept as printed (`ts`) and as exact nanoseconds
 * (`tNs`, no float rounding).
 *
 * Besides event records, {@link parseFtraceLine} recognises the `=====RT-TRACE-BEGIN …=====` /
 * `=====RT-TRACE-END=====` framing written by the dmareplay trace workload and ftrace's
 * `CPU:N [LOST M EVENTS]` lines, and skips `#` header/comment lines (returns null).
 */
import { fieldRangeError } from './fields.js';
import { type LineSource, lineBatches, newLineStreamState } from './lines.js';

// ---------------------------------------------------------------------------------------------
// Record types
// ---------------------------------------------------------------------------------------------

export interface FtraceBase {
  /** 1-based line number in the input. */
  line: number;
  /** Task comm (may contain spaces), e.g. `kworker/0:1H`, `<idle>`. */
  task: string;
  pid: number;
  cpu: number;
  /**
   * Latency-format flags as printed (irqs-off, need-resched, hardirq/softirq, preempt-depth and,
   * on 6.x, migrate-disable), e.g. `d.h2.`; '' when the trace has no irq-info column.
   */
  flags: string;
  /** Timestamp as printed, e.g. `3.612881` (seconds since boot for the `local` clock). */
  ts: string;
  /**
   * `ts` in exact nanoseconds. For counter clocks that print a bare integer (no '.'), this is that
   * integer unchanged.
   */
  tNs: bigint;
  /** Event name as printed. */
  event: string;
}

/** Distributes over a union K, so each event name gets its own member (precise narrowing on `kind`). */
type Rec<K extends string, F> = K extends string ? FtraceBase & { kind: K; event: K } & F : never;

// iommu ----------------------------------------------------------------------------------------
/** `IOMMU: iova=0x%016llx - 0x%016llx paddr=0x%016llx size=%zu` — one per iommu_map() chunk; end exclusive. */
export type IommuMapRecord = Rec<'map', { iova: bigint; end: bigint; paddr: bigint; size: bigint }>;
/** `IOMMU: iova=0x%016llx - 0x%016llx size=%zu unmapped_size=%zu` */
export type IommuUnmapRecord = Rec<'unmap', { iova: bigint; end: bigint; size: bigint; unmappedSize: bigint }>;
/** `IOMMU:%s %s iova=0x%016llx flags=0x%04x` (driver, device; `flags` → `faultFlags`, IOMMU_FAULT_READ 0 / WRITE 1) */
export type IoPageFaultRecord = Rec<'io_page_fault', { driver: string; device: string; iova: bigint; faultFlags: number }>;
/** `IOMMU: groupID=%d device=%s` */
export type AddDeviceToGroupRecord = Rec<'add_device_to_group', { groupId: number; device: string }>;
export type RemoveDeviceFromGroupRecord = Rec<'remove_device_from_group', { groupId: number; device: string }>;
/** `IOMMU: device=%s` */
export type AttachDeviceToDomainRecord = Rec<'attach_device_to_domain', { device: string }>;
export type DetachDeviceFromDomainRecord = Rec<'detach_device_from_domain', { device: string }>;

// swiotlb --------------------------------------------------------------------------------------
export type SwiotlbForce = 'NORMAL' | 'FORCE' | 'NO_FORCE';
/**
 * `dev_name: %s dma_mask=%llx dev_addr=%llx size=%zu %s` (≤ 6.1, last token NORMAL|FORCE|NO_FORCE) or
 * the same without the last token (newer kernels; `force` is then null). `devAddr` is the original
 * buffer's bus address, not the bounce slot's.
 */
export type SwiotlbBouncedRecord = Rec<
  'swiotlb_bounced',
  { device: string; dmaMask: bigint; devAddr: bigint; size: bigint; force: SwiotlbForce | null }
>;

// dma (include/trace/events/dma.h, 6.12+) ------------------------------------------------------
export type DmaDir = 'BIDIRECTIONAL' | 'TO_DEVICE' | 'FROM_DEVICE' | 'NONE';
const DMA_DIRS: ReadonlySet<string> = new Set<DmaDir>(['BIDIRECTIONAL', 'TO_DEVICE', 'FROM_DEVICE', 'NONE']);

/** `%s dir=%s dma_addr=%llx size=%zu phys_addr=%llx attrs=%s`; attrs split on '|' ([] when empty). */
export type DmaMapRecord = Rec<
  'dma_map_phys' | 'dma_map_page' | 'dma_map_resource',
  { device: string; dir: DmaDir; dmaAddr: bigint; size: bigint; physAddr: bigint; attrs: string[] }
>;
/** `%s dir=%s dma_addr=%llx size=%zu attrs=%s` */
export type DmaUnmapRecord = Rec<
  'dma_unmap_phys' | 'dma_unmap_page' | 'dma_unmap_resource',
  { device: string; dir: DmaDir; dmaAddr: bigint; size: bigint; attrs: string[] }
>;
/** `%s dir=%s dma_addr=%llx size=%zu` */
export type DmaSyncSingleRecord = Rec<
  'dma_sync_single_for_cpu' | 'dma_sync_single_for_device',
  { device: string; dir: DmaDir; dmaAddr: bigint; size: bigint }
>;
/** `%s dir=%s dma_addrs=%s sizes=%s` (arrays printed `{0x…,0x…}`) */
export type DmaSyncSgRecord = Rec<
  'dma_sync_sg_for_cpu' | 'dma_sync_sg_for_device',
  { device: string; dir: DmaDir; dmaAddrs: bigint[]; sizes: number[] }
>;
/** Traced/total entry counts of a capped sg array (`nents=%d/%d`). */
export interface SgCount {
  traced: number;
  full: number;
}
/**
 * `%s dir=%s [nents=%d/%d ents=%d/%d[ [TRUNCATED]] ]dma_addrs=%s sizes=%s phys_addrs=%s attrs=%s` —
 * newer kernels cap the arrays at 128 entries and print the counts (null when absent).
 */
export type DmaMapSgRecord = Rec<
  'dma_map_sg',
  {
    device: string;
    dir: DmaDir;
    nents: SgCount | null;
    ents: SgCount | null;
    truncated: boolean;
    dmaAddrs: bigint[];
    sizes: number[];
    physAddrs: bigint[];
    attrs: string[];
  }
>;
/** `%s dir=%s phys_addrs=%s attrs=%s` */
export type DmaUnmapSgRecord = Rec<'dma_unmap_sg', { device: string; dir: DmaDir; physAddrs: bigint[]; attrs: string[] }>;
/**
 * `%s dir=%s dma_addr=%llx size=%zu virt_addr=%p flags=%s attrs=%s` (`dir=` absent in the first
 * release: null). `virtAddr` is the (usually hashed) `%p` value, null if unprintable; `flags=` (GFP) →
 * `gfpFlags` (the record's own `flags` are the ftrace latency flags).
 */
export type DmaAllocRecord = Rec<
  'dma_alloc' | 'dma_alloc_pages',
  {
    device: string;
    dir: DmaDir | null;
    dmaAddr: bigint;
    size: bigint;
    virtAddr: bigint | null;
    gfpFlags: string[];
    attrs: string[];
  }
>;
/** `%s dir=%s dma_addr=%llx size=%zu virt_addr=%p attrs=%s` */
export type DmaFreeRecord = Rec<
  'dma_free' | 'dma_free_pages',
  { device: string; dir: DmaDir | null; dmaAddr: bigint; size: bigint; virtAddr: bigint | null; attrs: string[] }
>;

// markers --------------------------------------------------------------------------------------
/** A `trace_marker` write; `text` is what was written (see {@link rtMark}). */
export type TracingMarkWriteRecord = Rec<'tracing_mark_write', { text: string }>;

export type FtraceTypedRecord =
  | IommuMapRecord
  | IommuUnmapRecord
  | IoPageFaultRecord
  | AddDeviceToGroupRecord
  | RemoveDeviceFromGroupRecord
  | AttachDeviceToDomainRecord
  | DetachDeviceFromDomainRecord
  | SwiotlbBouncedRecord
  | DmaMapRecord
  | DmaUnmapRecord
  | DmaSyncSingleRecord
  | DmaSyncSgRecord
  | DmaMapSgRecord
  | DmaUnmapSgRecord
  | DmaAllocRecord
  | DmaFreeRecord
  | TracingMarkWriteRecord;

export type FtraceTypedKind = FtraceTypedRecord['kind'];

/** A well-formed event line without a typed parser; `args` is the text after `EVENT: `. */
export interface FtraceOpaqueRecord extends FtraceBase {
  kind: 'opaque';
  args: string;
}

export type FtraceRecord = FtraceTypedRecord | FtraceOpaqueRecord;

/** `=====RT-TRACE-BEGIN case=… kernel=… cmdline=…=====` */
export interface FtraceFrameBegin {
  kind: 'frame-begin';
  line: number;
  case: string | null;
  kernel: string | null;
  /** The guest kernel command line (everything after `cmdline=`). */
  cmdline: string | null;
  /** All `key=value` fields before `cmdline=`. */
  fields: Record<string, string>;
}

/** `=====RT-TRACE-END=====` */
export interface FtraceFrameEnd {
  kind: 'frame-end';
  line: number;
}

/** `CPU:N [LOST M EVENTS]`: the ring buffer overwrote or dropped events here. */
export interface FtraceLostEvents {
  kind: 'lost-events';
  line: number;
  cpu: number;
  count: number;
}

export type FtraceMeta = FtraceFrameBegin | FtraceFrameEnd | FtraceLostEvents;

export interface FtraceMalformed {
  kind: 'malformed';
  line: number;
  malformed: string;
  text: string;
}

/** Last item of {@link readFtrace}: how the input ended. */
export interface FtraceEndOfInput {
  kind: 'end-of-input';
  lines: number;
  /** False if the last line had no `\n` (it is then reported malformed). */
  finalNewline: boolean;
  records: number;
  malformed: number;
  /** The first `RT-TRACE-BEGIN` frame, if any. */
  begin: FtraceFrameBegin | null;
  /** Number of `RT-TRACE-BEGIN` lines seen. */
  frames: number;
  /** A BEGIN was not followed by an END before the input ended. */
  unterminatedFrame: boolean;
  /** `unterminatedFrame || !finalNewline`: the trace was cut off. */
  truncated: boolean;
  /** Lines after an `RT-TRACE-END` (and before any further BEGIN), not parsed. */
  ignoredAfterEnd: number;
  /**
   * A dmesg line after the trace (a raw serial capture) saying the IOMMU driver invalidates per unmap:
   * "AMD-Vi: Using strict mode due to virtualization" / "DMAR: IOMMU batching disallowed due to
   * virtualization" (amd_iommu_init / intel-iommu in a VM with caching mode), else null.
   */
  strictHint?: string | null;
}

export type FtraceItem = FtraceRecord | FtraceMeta | FtraceMalformed | FtraceEndOfInput;

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/** The printk formats of the typed events (for error messages and documentation). */
export const FTRACE_FORMATS: Readonly<Record<FtraceTypedKind, string>> = {
  map: 'IOMMU: iova=0x%016llx - 0x%016llx paddr=0x%016llx size=%zu',
  unmap: 'IOMMU: iova=0x%016llx - 0x%016llx size=%zu unmapped_size=%zu',
  io_page_fault: 'IOMMU:%s %s iova=0x%016llx flags=0x%04x',
  add_device_to_group: 'IOMMU: groupID=%d device=%s',
  remove_device_from_group: 'IOMMU: groupID=%d device=%s',
  attach_device_to_domain: 'IOMMU: device=%s',
  detach_device_from_domain: 'IOMMU: device=%s',
  swiotlb_bounced: 'dev_name: %s dma_mask=%llx dev_addr=%llx size=%zu[ NORMAL|FORCE|NO_FORCE]',
  dma_map_phys: '%s dir=%s dma_addr=%llx size=%zu phys_addr=%llx attrs=%s',
  dma_map_page: '%s dir=%s dma_addr=%llx size=%zu phys_addr=%llx attrs=%s',
  dma_map_resource: '%s dir=%s dma_addr=%llx size=%zu phys_addr=%llx attrs=%s',
  dma_unmap_phys: '%s dir=%s dma_addr=%llx size=%zu attrs=%s',
  dma_unmap_page: '%s dir=%s dma_addr=%llx size=%zu attrs=%s',
  dma_unmap_resource: '%s dir=%s dma_addr=%llx size=%zu attrs=%s',
  dma_sync_single_for_cpu: '%s dir=%s dma_addr=%llx size=%zu',
  dma_sync_single_for_device: '%s dir=%s dma_addr=%llx size=%zu',
  dma_sync_sg_for_cpu: '%s dir=%s dma_addrs=%s sizes=%s',
  dma_sync_sg_for_device: '%s dir=%s dma_addrs=%s sizes=%s',
  dma_map_sg: '%s dir=%s [nents=%d/%d ents=%d/%d[ [TRUNCATED]] ]dma_addrs=%s sizes=%s phys_addrs=%s attrs=%s',
  dma_unmap_sg: '%s dir=%s phys_addrs=%s attrs=%s',
  dma_alloc: '%s [dir=%s ]dma_addr=%llx size=%zu virt_addr=%p flags=%s attrs=%s',
  dma_alloc_pages: '%s [dir=%s ]dma_addr=%llx size=%zu virt_addr=%p flags=%s attrs=%s',
  dma_free: '%s [dir=%s ]dma_addr=%llx size=%zu virt_addr=%p attrs=%s',
  dma_free_pages: '%s [dir=%s ]dma_addr=%llx size=%zu virt_addr=%p attrs=%s',
  tracing_mark_write: '%s',
};

/**
 * Hex digits → bigint, exactly. parseInt is exact below 2^53 (and rounds to ≥ 2^53 otherwise, so the
 * check is safe); that path avoids the slower string form of BigInt for the common small values.
 */
const hx = (s: string): bigint => {
  const n = parseInt(s, 16);
  return n <= Number.MAX_SAFE_INTEGER ? BigInt(n) : BigInt('0x' + s);
};
const HEX_RE = /^(?:0x)?([0-9a-fA-F]+)$/;
const DEC_RE = /^\d+$/;

// Builders write each record as one object literal with the header fields listed explicitly (no
// object spread): records then get a fixed shape per event, which V8 allocates ~100x faster than a
// spread of a shared header into varying field sets. Shared builders take the event name as `k`.
type Builder = (args: string, h: FtraceBase, k: string) => FtraceTypedRecord | null;

const R_MAP = /^IOMMU: iova=0x([0-9a-fA-F]+) - 0x([0-9a-fA-F]+) paddr=0x([0-9a-fA-F]+) size=(\d+)\s*$/;
const R_UNMAP = /^IOMMU: iova=0x([0-9a-fA-F]+) - 0x([0-9a-fA-F]+) size=(\d+) unmapped_size=(\d+)\s*$/;
const R_FAULT = /^IOMMU:(\S*) (\S+) iova=0x([0-9a-fA-F]+) flags=0x([0-9a-fA-F]+)\s*$/;
const R_GROUP = /^IOMMU: groupID=(-?\d+) device=(.*?)\s*$/;
const R_DEVICE = /^IOMMU: device=(.*?)\s*$/;
const R_BOUNCED = /^dev_name: (.*?) dma_mask=([0-9a-fA-F]+) dev_addr=([0-9a-fA-F]+) size=(\d+)(?: (NORMAL|FORCE|NO_FORCE))?\s*$/;

function group(a: string, h: FtraceBase, k: string): FtraceTypedRecord | null {
  const m = R_GROUP.exec(a);
  if (m === null) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    groupId: parseInt(m[1]!, 10), device: m[2]!,
  } as AddDeviceToGroupRecord | RemoveDeviceFromGroupRecord;
}
function device(a: string, h: FtraceBase, k: string): FtraceTypedRecord | null {
  const m = R_DEVICE.exec(a);
  if (m === null) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: m[1]!,
  } as AttachDeviceToDomainRecord | DetachDeviceFromDomainRecord;
}

/** Tokenised `dma:*` args: leading device name, `key=value` pairs and bare flag tokens. */
interface DmaArgs {
  device: string;
  kv: Map<string, string>;
  bare: string[];
}

function dmaArgs(args: string): DmaArgs | null {
  const toks = args.trim().split(/\s+/);
  if (toks.length === 0 || toks[0] === '') return null;
  let i = 0;
  let dev = '';
  if (!toks[0]!.startsWith('dir=')) {
    dev = toks[0]!;
    i = 1;
  }
  const kv = new Map<string, string>();
  const bare: string[] = [];
  for (; i < toks.length; i++) {
    const t = toks[i]!;
    const eq = t.indexOf('=');
    if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    else bare.push(t);
  }
  return { device: dev, kv, bare };
}

const dmaHex = (v: string | undefined): bigint | null => {
  if (v === undefined) return null;
  const m = HEX_RE.exec(v);
  return m ? hx(m[1]!) : null;
};
const dmaDec = (v: string | undefined): bigint | null => (v !== undefined && DEC_RE.test(v) ? BigInt(v) : null);
const dmaDir = (v: string | undefined): DmaDir | null => (v !== undefined && DMA_DIRS.has(v) ? (v as DmaDir) : null);
const flagList = (v: string): string[] => (v === '' ? [] : v.split('|'));

/** `__print_array` output: `{0x1,0x2}` (`{}` when empty). */
function hexArray(v: string | undefined): bigint[] | null {
  if (v === undefined || v.length < 2 || v[0] !== '{' || v[v.length - 1] !== '}') return null;
  const body = v.slice(1, -1);
  if (body === '') return [];
  const out: bigint[] = [];
  for (const e of body.split(',')) {
    const m = HEX_RE.exec(e);
    if (!m) return null;
    out.push(hx(m[1]!));
  }
  return out;
}

function numArray(v: string | undefined): number[] | null {
  const a = hexArray(v);
  if (a === null) return null;
  const out: number[] = [];
  for (const x of a) {
    if (x > 0xffff_ffffn) return null;
    out.push(Number(x));
  }
  return out;
}

function sgCount(v: string | undefined): SgCount | null | undefined {
  if (v === undefined) return null;
  const m = /^(\d+)\/(\d+)$/.exec(v);
  return m ? { traced: parseInt(m[1]!, 10), full: parseInt(m[2]!, 10) } : undefined;
}

/** `%p` from the kernel: hashed hex without 0x (or raw with no_hash_pointers); `(____ptrval____)` etc. → null */
const kptr = (v: string | undefined): bigint | null | undefined => {
  if (v === undefined) return undefined;
  const m = HEX_RE.exec(v);
  return m ? hx(m[1]!) : null;
};

function onlyKeys(d: DmaArgs, allowed: readonly string[], allowBare: readonly string[] = []): boolean {
  for (const k of d.kv.keys()) if (!allowed.includes(k)) return false;
  for (const b of d.bare) if (!allowBare.includes(b)) return false;
  return true;
}

function dmaMap(args: string, h: FtraceBase, k: string): DmaMapRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'dma_addr', 'size', 'phys_addr', 'attrs'])) return null;
  const dir = dmaDir(d.kv.get('dir'));
  const dmaAddr = dmaHex(d.kv.get('dma_addr'));
  const size = dmaDec(d.kv.get('size'));
  const physAddr = dmaHex(d.kv.get('phys_addr'));
  const attrs = d.kv.get('attrs');
  if (dir === null || dmaAddr === null || size === null || physAddr === null || attrs === undefined) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, dmaAddr, size, physAddr, attrs: flagList(attrs),
  } as DmaMapRecord;
}

function dmaUnmap(args: string, h: FtraceBase, k: string): DmaUnmapRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'dma_addr', 'size', 'attrs'])) return null;
  const dir = dmaDir(d.kv.get('dir'));
  const dmaAddr = dmaHex(d.kv.get('dma_addr'));
  const size = dmaDec(d.kv.get('size'));
  const attrs = d.kv.get('attrs');
  if (dir === null || dmaAddr === null || size === null || attrs === undefined) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, dmaAddr, size, attrs: flagList(attrs),
  } as DmaUnmapRecord;
}

function dmaSyncSingle(args: string, h: FtraceBase, k: string): DmaSyncSingleRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'dma_addr', 'size'])) return null;
  const dir = dmaDir(d.kv.get('dir'));
  const dmaAddr = dmaHex(d.kv.get('dma_addr'));
  const size = dmaDec(d.kv.get('size'));
  if (dir === null || dmaAddr === null || size === null) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, dmaAddr, size,
  } as DmaSyncSingleRecord;
}

function dmaSyncSg(args: string, h: FtraceBase, k: string): DmaSyncSgRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'dma_addrs', 'sizes'])) return null;
  const dir = dmaDir(d.kv.get('dir'));
  const dmaAddrs = hexArray(d.kv.get('dma_addrs'));
  const sizes = numArray(d.kv.get('sizes'));
  if (dir === null || dmaAddrs === null || sizes === null) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, dmaAddrs, sizes,
  } as DmaSyncSgRecord;
}

function dmaMapSg(args: string, h: FtraceBase, k: string): DmaMapSgRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'nents', 'ents', 'dma_addrs', 'sizes', 'phys_addrs', 'attrs'], ['[TRUNCATED]'])) return null;
  const dir = dmaDir(d.kv.get('dir'));
  const nents = sgCount(d.kv.get('nents'));
  const ents = sgCount(d.kv.get('ents'));
  const dmaAddrs = hexArray(d.kv.get('dma_addrs'));
  const sizes = numArray(d.kv.get('sizes'));
  const physAddrs = hexArray(d.kv.get('phys_addrs'));
  const attrs = d.kv.get('attrs');
  if (dir === null || nents === undefined || ents === undefined) return null;
  if (dmaAddrs === null || sizes === null || physAddrs === null || attrs === undefined) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, nents, ents, truncated: d.bare.includes('[TRUNCATED]'), dmaAddrs, sizes, physAddrs,
    attrs: flagList(attrs),
  } as DmaMapSgRecord;
}

function dmaUnmapSg(args: string, h: FtraceBase, k: string): DmaUnmapSgRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'phys_addrs', 'attrs'])) return null;
  const dir = dmaDir(d.kv.get('dir'));
  const physAddrs = hexArray(d.kv.get('phys_addrs'));
  const attrs = d.kv.get('attrs');
  if (dir === null || physAddrs === null || attrs === undefined) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, physAddrs, attrs: flagList(attrs),
  } as DmaUnmapSgRecord;
}

function dmaAlloc(args: string, h: FtraceBase, k: string): DmaAllocRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'dma_addr', 'size', 'virt_addr', 'flags', 'attrs'])) return null;
  const rawDir = d.kv.get('dir');
  const dir = rawDir === undefined ? null : dmaDir(rawDir);
  const dmaAddr = dmaHex(d.kv.get('dma_addr'));
  const size = dmaDec(d.kv.get('size'));
  const virtAddr = kptr(d.kv.get('virt_addr'));
  const flags = d.kv.get('flags');
  const attrs = d.kv.get('attrs');
  if ((rawDir !== undefined && dir === null) || dmaAddr === null || size === null || virtAddr === undefined) return null;
  if (flags === undefined || attrs === undefined) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, dmaAddr, size, virtAddr, gfpFlags: flagList(flags), attrs: flagList(attrs),
  } as DmaAllocRecord;
}

function dmaFree(args: string, h: FtraceBase, k: string): DmaFreeRecord | null {
  const d = dmaArgs(args);
  if (!d || !onlyKeys(d, ['dir', 'dma_addr', 'size', 'virt_addr', 'attrs'])) return null;
  const rawDir = d.kv.get('dir');
  const dir = rawDir === undefined ? null : dmaDir(rawDir);
  const dmaAddr = dmaHex(d.kv.get('dma_addr'));
  const size = dmaDec(d.kv.get('size'));
  const virtAddr = kptr(d.kv.get('virt_addr'));
  const attrs = d.kv.get('attrs');
  if ((rawDir !== undefined && dir === null) || dmaAddr === null || size === null || virtAddr === undefined) return null;
  if (attrs === undefined) return null;
  return {
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: k, event: k,
    device: d.device, dir, dmaAddr, size, virtAddr, attrs: flagList(attrs),
  } as DmaFreeRecord;
}

const BUILDERS: { readonly [K in FtraceTypedKind]: Builder } = {
  map: (a, h) => {
    const m = R_MAP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
      kind: 'map', event: 'map',
      iova: hx(m[1]!), end: hx(m[2]!), paddr: hx(m[3]!), size: BigInt(m[4]!),
    };
  },
  unmap: (a, h) => {
    const m = R_UNMAP.exec(a);
    if (m === null) return null;
    return {
      line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
      kind: 'unmap', event: 'unmap',
      iova: hx(m[1]!), end: hx(m[2]!), size: BigInt(m[3]!), unmappedSize: BigInt(m[4]!),
    };
  },
  io_page_fault: (a, h) => {
    const m = R_FAULT.exec(a);
    if (m === null) return null;
    return {
      line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
      kind: 'io_page_fault', event: 'io_page_fault',
      driver: m[1]!, device: m[2]!, iova: hx(m[3]!), faultFlags: parseInt(m[4]!, 16),
    };
  },
  add_device_to_group: group,
  remove_device_from_group: group,
  attach_device_to_domain: device,
  detach_device_from_domain: device,
  swiotlb_bounced: (a, h) => {
    const m = R_BOUNCED.exec(a);
    if (m === null) return null;
    const force = (m[5] as SwiotlbForce | undefined) ?? null;
    return {
      line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
      kind: 'swiotlb_bounced', event: 'swiotlb_bounced',
      device: m[1]!, dmaMask: hx(m[2]!), devAddr: hx(m[3]!), size: BigInt(m[4]!), force,
    };
  },
  dma_map_phys: dmaMap,
  dma_map_page: dmaMap,
  dma_map_resource: dmaMap,
  dma_unmap_phys: dmaUnmap,
  dma_unmap_page: dmaUnmap,
  dma_unmap_resource: dmaUnmap,
  dma_sync_single_for_cpu: dmaSyncSingle,
  dma_sync_single_for_device: dmaSyncSingle,
  dma_sync_sg_for_cpu: dmaSyncSg,
  dma_sync_sg_for_device: dmaSyncSg,
  dma_map_sg: dmaMapSg,
  dma_unmap_sg: dmaUnmapSg,
  dma_alloc: dmaAlloc,
  dma_alloc_pages: dmaAlloc,
  dma_free: dmaFree,
  dma_free_pages: dmaFree,
  tracing_mark_write: (a, h) => ({
    line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
    kind: 'tracing_mark_write', event: 'tracing_mark_write',
    text: a,
  }),
};

const BUILDER_MAP: ReadonlyMap<string, Builder> = new Map(Object.entries(BUILDERS));

export function isFtraceTypedEvent(event: string): event is FtraceTypedKind {
  return BUILDER_MAP.has(event);
}

/**
 * `TASK-PID [(TGID)] [CPU] [FLAGS] SEC[.FRAC]: EVENT: ARGS`, applied after the leading padding is cut.
 * The task is matched lazily (comm may contain spaces or dashes; the first `-PID [CPU]` wins).
 */
const LINE_RE =
  /^(\S.*?)-(\d+)\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(\d+)\]\s+(?:([.A-Za-z0-9]{4,6})\s+)?(\d+)(?:\.(\d+))?:\s+([A-Za-z_][A-Za-z0-9_]*):(?: (.*))?$/;
const LOST_RE = /^CPU:(\d+) \[LOST (\d+) EVENTS\]\s*$/;
const BEGIN_PREFIX = '=====RT-TRACE-BEGIN';
const END_LINE_RE = /^=====RT-TRACE-END=====\s*$/;
const STRICT_DMESG_RE = /AMD-Vi: Using strict mode due to virtualization|DMAR: IOMMU batching disallowed due to virtualization/;

/** Does the line look like an ftrace event line? (used by format detection) */
export function isFtraceEventLine(line: string): boolean {
  return LINE_RE.test(stripCr(line).trimStart());
}

function stripCr(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

let lastSecText = '';
let lastSecNs = 0n;

function nsOf(sec: string, frac: string | undefined): bigint {
  if (frac === undefined) return BigInt(sec);
  if (sec !== lastSecText) {
    // consecutive lines mostly share the second: convert it once
    lastSecText = sec;
    lastSecNs = BigInt(sec) * 1_000_000_000n;
  }
  const f = frac.length === 6 ? parseInt(frac, 10) * 1000 : parseInt(frac.length >= 9 ? frac.slice(0, 9) : frac.padEnd(9, '0'), 10);
  return lastSecNs + BigInt(f);
}

/** Parses `=====RT-TRACE-BEGIN case=… kernel=… cmdline=…=====` (null if the line is not one). */
export function parseFrameBegin(line: string, lineNo: number): FtraceFrameBegin | null {
  const text = stripCr(line).trimEnd();
  if (!text.startsWith(BEGIN_PREFIX) || !text.endsWith('=====') || text.length < BEGIN_PREFIX.length + 5) return null;
  let body = text.slice(BEGIN_PREFIX.length, text.length - 5).trim();
  let cmdline: string | null = null;
  const ci = body.startsWith('cmdline=') ? 0 : body.indexOf(' cmdline=');
  if (ci >= 0) {
    cmdline = body.slice(ci + (ci === 0 ? 8 : 9));
    body = body.slice(0, ci);
  }
  const fields: Record<string, string> = {};
  for (const tok of body.split(/\s+/)) {
    const eq = tok.indexOf('=');
    if (eq > 0) fields[tok.slice(0, eq)] = tok.slice(eq + 1);
  }
  return { kind: 'frame-begin', line: lineNo, case: fields['case'] ?? null, kernel: fields['kernel'] ?? null, cmdline, fields };
}

/**
 * Parses one line of ftrace text. Returns null for blank lines and `#` header/comment lines, a meta
 * item for the RT-TRACE framing and lost-events lines, a {@link FtraceMalformed} for anything that is
 * not an event line or a typed event whose args do not match its format, else a record.
 */
export function parseFtraceLine(line: string, lineNo: number): FtraceRecord | FtraceMeta | FtraceMalformed | null {
  const text = stripCr(line);
  if (text.length === 0) return null;
  const c0 = text.charCodeAt(0);
  if (c0 === 35 /* # */) return null;
  if (c0 === 61 /* = */) {
    const begin = parseFrameBegin(text, lineNo);
    if (begin) return begin;
    if (END_LINE_RE.test(text)) return { kind: 'frame-end', line: lineNo };
    return { kind: 'malformed', line: lineNo, malformed: 'unrecognised ===== framing line', text: line };
  }
  // skip the comm padding by hand (a leading \s* in the regex could backtrack against the lazy task)
  let i = 0;
  while (i < text.length && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  const m = LINE_RE.exec(i === 0 ? text : text.slice(i));
  if (m === null) {
    if (text.trim() === '') return null;
    const lost = LOST_RE.exec(text);
    if (lost) return { kind: 'lost-events', line: lineNo, cpu: parseInt(lost[1]!, 10), count: parseInt(lost[2]!, 10) };
    return {
      kind: 'malformed',
      line: lineNo,
      malformed: 'not an ftrace event line (expected TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: ARGS)',
      text: line,
    };
  }
  const event = m[7]!;
  const args = m[8] ?? '';
  const base: FtraceBase = {
    line: lineNo,
    task: m[1]!,
    pid: parseInt(m[2]!, 10),
    cpu: parseInt(m[3]!, 10),
    flags: m[4] ?? '',
    ts: m[6] === undefined ? m[5]! : `${m[5]!}.${m[6]}`,
    tNs: nsOf(m[5]!, m[6]),
    event,
  };
  const b = BUILDER_MAP.get(event);
  if (b === undefined) {
    const h = base;
    const bad = fieldRangeError(base);
    if (bad !== null) return { kind: 'malformed', line: lineNo, malformed: `${event}: ${bad}`, text: line };
    return {
      line: h.line, task: h.task, pid: h.pid, cpu: h.cpu, flags: h.flags, ts: h.ts, tNs: h.tNs,
      event, kind: 'opaque', args,
    };
  }
  const rec = b(args, base, event);
  if (rec === null) {
    return {
      kind: 'malformed',
      line: lineNo,
      malformed: `${event}: args do not match "${FTRACE_FORMATS[event as FtraceTypedKind]}"`,
      text: line,
    };
  }
  // out-of-range fields (fields.ts) make the line malformed, like args that do not match
  const bad = fieldRangeError(rec);
  if (bad !== null) return { kind: 'malformed', line: lineNo, malformed: `${event}: ${bad}`, text: line };
  return rec;
}

/** True for event records (typed or opaque), false for meta/malformed/end items. */
export function isFtraceRecord(item: FtraceItem | null): item is FtraceRecord {
  return item !== null && 'event' in item;
}

/** Options of the batch readers. */
export type { ReadOptions, WithText } from './lines.js';
import type { ReadOptions, WithText } from './lines.js';

/**
 * Streams an ftrace text file (path or readable stream). Yields records, meta items (frame
 * begin/end, lost events) and malformed-line reports in input order, then one
 * {@link FtraceEndOfInput} saying whether the trace was framed and whether it was cut off (BEGIN
 * without END, or no final newline). Lines after an `RT-TRACE-END` are skipped until the next BEGIN
 * (e.g. the `dmesg` that follows in a raw serial capture). If the input does not end with a newline,
 * the last line is reported as malformed instead of being parsed.
 */
export async function* readFtrace(source: LineSource): AsyncGenerator<FtraceItem> {
  for await (const batch of readFtraceBatches(source)) yield* batch;
}

/**
 * Same items as {@link readFtrace}, handed out in arrays (one per chunk of input, in order; the last
 * array ends with the {@link FtraceEndOfInput}). Cheaper per line: use it for very large traces.
 */
export async function* readFtraceBatches(source: LineSource, opts: ReadOptions = {}): AsyncGenerator<FtraceItem[]> {
  const state = newLineStreamState();
  let lineNo = 0;
  let records = 0;
  let malformed = 0;
  let frames = 0;
  let inFrame = false;
  let afterEnd = false;
  let ignoredAfterEnd = 0;
  let strictHint: string | null = null;
  let begin: FtraceFrameBegin | null = null;
  let pending: FtraceRecord | FtraceMeta | FtraceMalformed | null = null;
  let pendingText = '';

  const account = (it: FtraceRecord | FtraceMeta | FtraceMalformed): void => {
    if (it.kind === 'malformed') malformed++;
    else if ('event' in it) records++;
  };

  for await (const batch of lineBatches(source, state)) {
    const out: FtraceItem[] = [];
    for (const line of batch) {
      lineNo++;
      let item = parseFtraceLine(line, lineNo);
      if (afterEnd && (item === null || item.kind !== 'frame-begin')) {
        if (stripCr(line).trim() !== '') ignoredAfterEnd++;
        if (strictHint === null && STRICT_DMESG_RE.test(line)) strictHint = stripCr(line).replace(/^\[\s*[\d.]+\]\s*/, '');
        continue;
      }
      if (item !== null && item.kind === 'frame-begin') {
        frames++;
        if (begin === null) begin = item;
        inFrame = true;
        afterEnd = false;
      } else if (item !== null && item.kind === 'frame-end') {
        if (!inFrame) item = { kind: 'malformed', line: lineNo, malformed: 'RT-TRACE-END without RT-TRACE-BEGIN', text: line };
        else {
          inFrame = false;
          afterEnd = true;
        }
      }
      if (item === null) continue;
      if (opts.text && item.kind !== 'malformed') (item as (FtraceRecord | FtraceMeta) & WithText).rawText = line;
      if (pending !== null) {
        account(pending);
        out.push(pending);
      }
      pending = item;
      pendingText = line;
    }
    if (out.length > 0) yield out;
  }
  const out: FtraceItem[] = [];
  // A complete END line without a final newline is still an END; anything else cut off is suspect.
  const endedCleanly = pending !== null && pending.kind === 'frame-end' && pending.line === lineNo;
  if (pending !== null) {
    if (!state.finalNewline && pending.line === lineNo && 'event' in pending) {
      pending = {
        kind: 'malformed',
        line: lineNo,
        malformed: 'incomplete last line (no trailing newline): input truncated?',
        text: pendingText,
      };
    }
    account(pending);
    out.push(pending);
  }
  out.push({
    kind: 'end-of-input',
    lines: lineNo,
    finalNewline: state.finalNewline,
    records,
    malformed,
    begin,
    frames,
    unterminatedFrame: inFrame,
    truncated: inFrame || (!state.finalNewline && !endedCleanly),
    ignoredAfterEnd,
    strictHint,
  });
  yield out;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** `RT-MARK N name` written to trace_marker by the trace workload → {n, name}; else null. */
export function rtMark(rec: FtraceItem | null): { n: number; name: string } | null {
  if (rec === null || rec.kind !== 'tracing_mark_write') return null;
  const m = /^RT-MARK (\d+)(?: (\S+))?\s*$/.exec(rec.text);
  return m ? { n: parseInt(m[1]!, 10), name: m[2] ?? '' } : null;
}

/** PCI device name as the kernel prints it (`0000:00:02.0`) → numbers; null for other device names. */
export function parsePciDeviceName(name: string): { domain: number; bus: number; dev: number; fn: number } | null {
  const m = /^(?:([0-9a-fA-F]{4,}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(name);
  if (!m) return null;
  return {
    domain: m[1] === undefined ? 0 : parseInt(m[1], 16),
    bus: parseInt(m[2]!, 16),
    dev: parseInt(m[3]!, 16),
    fn: parseInt(m[4]!, 10),
  };
}
