// The guest: virtio drivers (drivers/virtio/virtio_ring.c) over the DMA API. Each intent becomes a
// scatter-gather list (virtio-net: a 12-byte virtio_net_hdr + the packet's frags; virtio-blk: a
// 16-byte request header, the data segments, a status byte), each element mapped with the DMA API
// and checked with dma_mapping_error, then posted: in an indirect table when INDIRECT_DESC is
// negotiated and the list has more than one element, else as a chain in the ring. Completions are
// reaped from the used ring; unmaps read the driver's shadow (desc_extra), never the ring.
import type { Desc, Seg } from '../events/schema.js';
import { fromNum, readMem, readU16, readU16Off, readU32 } from '../model/memory.js';
import { DMA_MAPPING_ERROR, type DirName } from '../model/types.js';
import {
  decodePacked,
  encodeDescAt,
  encodePacked,
  needEvent,
  packedDeviceEventOff,
  packedNeedEvent,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_PACKED_DESC_F_AVAIL,
  VRING_PACKED_DESC_F_USED,
  VRING_USED_F_NO_NOTIFY,
} from '../model/vring.js';
import type { DeviceState, Posted, RingState } from '../model/world.js';
import { opBytesInto } from './data.js';
import { dmaMap, dmaSync, dmaUnmap, flushQueue } from './dma-api.js';
import type { Sim } from './sim.js';
import type { Request } from './workload.js';
import { deviceRunnable } from './device.js';
import { SCENARIO_LINE, scenarioStep } from './scenario.js';
import { vmmRunnable, vmmUnmapNotify } from './vmm.js';

/** The guest's payload bytes of op from offset `from` (data.ts opBytes), in an array from the Sim's slab. */
function payload(sim: Sim, op: number, from: number, len: number): Uint8Array {
  const out = sim.bytes(len);
  opBytesInto(out, 0, sim.dataKey, 1, op, from, len);
  return out;
}

/** Driver-private memory: request headers, status bytes and indirect tables (kmalloc'd in Linux). */
const HDR_BASE = 0x0a00_0000n;
const TABLE_BASE = 0x0900_0000n;
/** iommu-lazy flushes once this many unmaps are queued (Linux: 256 per CPU, or after 10 ms; the timer is the guest going idle here) */
export const FQ_SIZE = 32;

// one cacheline per request, so no two in-flight headers share one (dma-debug's cacheline tracking)
const hdrGpa = (op: number) => HDR_BASE + fromNum((op % 8192) * 64);
/**
 * Linux kmallocs every indirect table on its own (alloc_indirect_split: total_sg * 16 bytes), so two
 * in-flight tables never share bytes. Here each (queue, head) owns a 16 KiB slot: room for 1024
 * entries, more than any workload posts (virtio-blk: 64 segments + header + status). A smaller
 * slot (it was 1 KiB) let a 66-entry table of head h overwrite the first entries of head h+1's
 * table while that one was in flight: the device then read a status (in) descriptor followed by
 * data (out) ones, "Descriptor has out after in", in a clean run.
 */
export const TABLE_SLOT = 0x4000;
export const MAX_TABLE_ENTRIES = TABLE_SLOT / 16;
const tableGpa = (q: number, head: number) => TABLE_BASE + fromNum(q * 256 * TABLE_SLOT + head * TABLE_SLOT);

// The scheduler asks driverRunnable before every step and driverStep runs it: plain loops, no
// closures or spread copies (this is per step).

/**
 * The queue of the guest's next operation: virtio-net's rx or tx queue of a pair, virtio-blk's
 * request queue; with several (knob queues) the operations go round-robin over them, as flows and
 * CPUs spread over queue pairs (XPS) and blk-mq hardware queues.
 */
export function queueFor(sim: Sim, dev: number, what: string, op: number): RingState | undefined {
  const n = sim.config.knobs?.queues ?? 1;
  const pair = n > 1 ? op % n : 0;
  const want = sim.world.devices.get(dev)?.name === 'virtio-net' ? 2 * pair + (what === 'tx' ? 1 : 0) : pair;
  let i = 0;
  for (const r of sim.world.rings) if (r.dev === dev && i++ === want) return r;
  return undefined;
}

function firstWithUsed(sim: Sim): RingState | undefined {
  for (const r of sim.world.rings) if (hasUsed(sim, r)) return r;
  return undefined;
}

function firstWithFlushQueue(sim: Sim, atLeast: number): DeviceState | undefined {
  for (const d of sim.world.devices.values()) if (d.fq.length >= atLeast) return d;
  return undefined;
}

/**
 * A scenario's guest (scenario.ts) has a step left and nothing else can run: it waits after each step
 * until the devices and the VMM are done, so every kick is served before the next line.
 */
function scenarioRunnable(sim: Sim): boolean {
  if ((sim.counters[SCENARIO_LINE] ?? 0) >= (sim.config.scenario?.length ?? 0)) return false;
  for (const r of sim.world.rings) if (deviceRunnable(sim, r.q)) return false;
  return !vmmRunnable(sim);
}

export function driverRunnable(sim: Sim): boolean {
  if (sim.config.workload === 'scenario') return scenarioRunnable(sim);
  const w = sim.world;
  if (firstWithUsed(sim)) return true;
  if (w.guest.ops < sim.config.ops && canSubmit(sim)) return true;
  return !!firstWithFlushQueue(sim, 1);
}

export function driverStep(sim: Sim): void {
  if (sim.config.workload === 'scenario') return scenarioStep(sim);
  const w = sim.world;
  const r = firstWithUsed(sim);
  if (r) return reap(sim, r);
  if (w.guest.ops < sim.config.ops && canSubmit(sim)) return submit(sim);
  const d = firstWithFlushQueue(sim, 1);
  if (d) flushQueue(sim, d); // idle: the flush-queue timer fires
}

function hasUsed(sim: Sim, r: RingState): boolean {
  if (r.broken || r.extra.size === 0) return false;
  // (the ring field's offset as a number: this runs on every scheduler step)
  if (!r.packed) return readU16Off(sim.world.mem, r.usedGpa, 2) !== r.lastUsed;
  const flags = readU16Off(sim.world.mem, r.descGpa, 16 * r.lastUsed + 14);
  const avail = flags & VRING_PACKED_DESC_F_AVAIL ? 1 : 0;
  const used = flags & VRING_PACKED_DESC_F_USED ? 1 : 0;
  return avail === used && used === r.lastUsedWrap;
}

function canSubmit(sim: Sim): boolean {
  const w = sim.world;
  const req = sim.request(w.guest.ops);
  const r = queueFor(sim, req.dev, req.what, w.guest.ops);
  if (!r || r.broken || !w.devices.get(r.dev)!.probed) return true; // it will fail at once
  if (sim.workload.maxInflight === 1) for (const x of w.rings) if (x.extra.size > 0) return false;
  if (r.extra.size >= sim.workload.maxInflight) return false;
  const need = hasIndirect(sim, r) ? 1 : req.segs.length + 2;
  if (need <= r.num && ringFree(r) < need) return false; // longer than the ring: it fails at once
  if (r.packed && r.free.length === 0) return false;
  // a buffer is not reused while a request that owns one of its cachelines is in flight
  return !cachelineBusy(sim, w.guest.ops, req);
}

/**
 * The driver's look-ahead, kept between scheduler steps (derived from the world, never state: a
 * fresh one gives the same answers). canSubmit asks on every step whether the next request shares a
 * cacheline with one in flight; the answer changes only when that request or the set of posted
 * chains does, so it is kept with the posted chains it was computed against (by identity: the
 * rules create a Posted per vring.post and drop it at vring.getbuf).
 */
export class DriverScratch {
  op = -1;
  posted: Posted[] = [];
  busy = false;
  /** the next request's cachelines as numbers: [first, last] per segment */
  reqLines = new Float64Array(0);
  reqExact = true;
  /** hasIndirect: the device features it was computed from */
  features = -1n;
  indirect = false;
}

function cachelineBusy(sim: Sim, op: number, req: Request): boolean {
  const c = sim.driverScratch;
  let same = c.op === op;
  let n = 0;
  for (const x of sim.world.rings)
    for (const p of x.extra.values()) {
      if (c.posted[n] !== p) (same = false), (c.posted[n] = p);
      n++;
    }
  if (c.posted.length !== n) (same = false), (c.posted.length = n);
  if (same) return c.busy;
  if (c.op !== op) {
    c.op = op;
    c.reqExact = req.segs.every(exactLines);
    c.reqLines = new Float64Array(2 * req.segs.length);
    if (c.reqExact) req.segs.forEach((b, i) => ((c.reqLines[2 * i] = firstLineN(b)), (c.reqLines[2 * i + 1] = lastLineN(b))));
  }
  c.busy = c.reqExact ? busyN(c.posted, c.reqLines) : busyBig(c.posted, req.segs);
  return c.busy;
}

/** GPAs of pool buffers are far below 2^53: their cacheline numbers are exact as numbers. */
const exactLines = (s: Seg) => s.gpa <= MAX_EXACT_GPA;
const MAX_EXACT_GPA = BigInt(Number.MAX_SAFE_INTEGER) - 0x1_0000_0000n; // room for any u32 length
const firstLineN = (s: Seg) => Math.floor(Number(s.gpa) / 64);
const lastLineN = (s: Seg) => Math.floor((Number(s.gpa) + Math.max(s.len, 1) - 1) / 64);

function busyN(posted: Posted[], lines: Float64Array): boolean {
  for (const p of posted)
    for (const a of p.sg) {
      if (!exactLines(a)) {
        for (let i = 0; i < lines.length; i += 2) if (sameCachelineBig(a, lines[i]!, lines[i + 1]!)) return true;
        continue;
      }
      const lo = firstLineN(a);
      const hi = lastLineN(a);
      for (let i = 0; i < lines.length; i += 2) if (lines[i]! <= hi && lo <= lines[i + 1]!) return true;
    }
  return false;
}

/** An in-flight segment beyond 2^53 against a request's (exact) lines. */
function sameCachelineBig(a: Seg, lo: number, hi: number): boolean {
  return fromNum(lo) <= lastLine(a) && a.gpa >> 6n <= fromNum(hi);
}

function busyBig(posted: Posted[], segs: Seg[]): boolean {
  for (const p of posted) for (const a of p.sg) for (const b of segs) if (sameCacheline(a, b)) return true;
  return false;
}

function sameCacheline(a: Seg, b: Seg): boolean {
  return a.gpa >> 6n <= lastLine(b) && b.gpa >> 6n <= lastLine(a);
}
const lastLine = (s: Seg) => (s.gpa + fromNum(Math.max(s.len, 1)) - 1n) >> 6n;

/** Free descriptors: split, the free list; packed, ring slots not held by an outstanding chain. */
function ringFree(r: RingState): number {
  if (!r.packed) return r.free.length;
  let held = 0;
  for (const p of r.extra.values()) held += p.table ? 1 : p.chain.length;
  return r.num - held;
}

const VIRTIO_RING_F_INDIRECT_DESC = 1n << 28n;
/** INDIRECT_DESC negotiated (asked on every step: the bigint test is redone only when the features change) */
function hasIndirect(sim: Sim, r: RingState): boolean {
  const f = sim.world.devices.get(r.dev)!.features;
  const c = sim.driverScratch;
  if (f !== c.features) (c.features = f), (c.indirect = !!(f & VIRTIO_RING_F_INDIRECT_DESC));
  return c.indirect;
}

function submit(sim: Sim): void {
  const w = sim.world;
  const op = w.guest.ops;
  const req = sim.request(op);
  const intent = sim.emit({ kind: 'intent', actor: 'cpu0', cause: 0, op, dev: req.dev, what: req.what, sector: req.sector, segs: req.segs, seq: 0 });
  const d = w.devices.get(req.dev);
  const r = queueFor(sim, req.dev, req.what, op);
  if (!d || !d.probed || !r || r.broken) return; // the driver has no such queue: the request fails
  // the guest fills what the device will read
  const sg: Seg[] = [];
  if (d.name === 'virtio-blk') {
    const hdr = new Uint8Array(16);
    const v = new DataView(hdr.buffer);
    v.setUint32(0, req.what === 'write' ? 1 : 0, true); // VIRTIO_BLK_T_OUT / _IN
    v.setBigUint64(8, req.sector, true);
    sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: intent, gpa: hdrGpa(op), by: 'cpu', data: hdr, seq: 0 });
    sg.push({ gpa: hdrGpa(op), len: 16, write: 0 });
  } else sg.push({ gpa: hdrGpa(op), len: 12, write: req.what === 'rx' ? 1 : 0 });
  let off = 0;
  for (const s of req.segs) {
    if (!s.write) sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: intent, gpa: s.gpa, by: 'cpu', data: payload(sim, op, off, s.len), seq: 0 });
    sg.push(s);
    off += s.len;
  }
  if (sim.faultHit('zero-len-desc', 'chains')) sg.push({ gpa: hdrGpa(op) + 0x10_0000n, len: 0, write: 1 });
  if (d.name === 'virtio-blk') sg.push({ gpa: hdrGpa(op) + 16n, len: 1, write: 1 });
  if (!(hasIndirect(sim, r) && sg.length <= MAX_TABLE_ENTRIES) && sg.length > ringFree(r)) return; // -ENOSPC: the request is dropped
  // map every element (virtqueue_add_split: out sgs DMA_TO_DEVICE, in sgs DMA_FROM_DEVICE)
  // (a list longer than a table slot is posted as a plain chain; no workload builds one)
  const useIndirect = hasIndirect(sim, r) && sg.length > 1 && sg.length <= MAX_TABLE_ENTRIES;
  const head = r.free[r.free.length - 1]!;
  const dmas: bigint[] = [];
  for (const s of sg) {
    const m = dmaMap(sim, d, s.gpa, s.len, s.write ? 'FROM_DEVICE' : 'TO_DEVICE', 'page', intent);
    if (!m.ok) return unwind(sim, d, r, sg, dmas, useIndirect, head, intent);
    dmas.push(m.dma);
  }
  const chain: Desc[] = sg.map((s, i) => ({
    idx: 0,
    addr: dmas[i]!,
    len: s.len,
    flags: (s.write ? VRING_DESC_F_WRITE : 0) | (i < sg.length - 1 ? VRING_DESC_F_NEXT : 0),
    next: 0,
  }));
  let table = 0n;
  let tGpa = 0n;
  if (useIndirect) {
    chain.forEach((c, i) => ((c.idx = i), (c.next = i < chain.length - 1 ? i + 1 : 0)));
    tGpa = tableGpa(r.q, head);
    // the table is filled, then mapped ("we trust indirect descriptor table since it use stream DMA
    // mapping": dma_map_single, TO_DEVICE), so a bounce copies the filled table
    const bytes = new Uint8Array(16 * chain.length);
    // split: vring_desc entries chained by NEXT (alloc_indirect_split); packed: vring_packed_desc
    // entries {addr, len, id, flags} without NEXT, read in order (virtqueue_add_indirect_packed)
    if (r.packed) chain.forEach((c, i) => bytes.set(encodePacked(c.addr, c.len, 0, c.flags & VRING_DESC_F_WRITE), 16 * i));
    else chain.forEach((c, i) => encodeDescAt(bytes, 16 * i, c));
    sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: intent, gpa: tGpa, by: 'cpu', data: bytes, seq: 0 });
    const m = dmaMap(sim, d, tGpa, 16 * chain.length, 'TO_DEVICE', 'single', intent);
    if (!m.ok) return unwind(sim, d, r, sg, dmas, useIndirect, head, intent);
    table = m.dma;
  } else if (r.packed) chain.forEach((c, i) => ((c.idx = (r.availIdx + i) % r.num), (c.next = 0)));
  else {
    const ids = r.free.slice(-chain.length).reverse();
    chain.forEach((c, i) => ((c.idx = ids[i]!), (c.next = i < chain.length - 1 ? ids[i + 1]! : 0)));
  }
  const entries = table ? 1 : chain.length;
  const old = r.availIdx;
  const slot = r.packed ? r.availIdx : r.availIdx % r.num;
  const availIdx = r.packed ? (r.availIdx + entries) % r.num : (r.availIdx + 1) & 0xffff;
  const id = r.packed ? r.free[r.free.length - 1]! : chain[0]!.idx;
  sim.emit({ kind: 'vring.post', actor: 'cpu0', cause: intent, q: r.q, head: useIndirect && !r.packed ? head : id, slot, availIdx, wrap: r.availWrap, table, tableGpa: tGpa, chain, sg, seq: 0 });
  if (needsKick(sim, r, availIdx, old)) sim.emit({ kind: 'vring.kick', actor: 'cpu0', cause: intent, q: r.q, seq: 0 });
}

/**
 * virtqueue_kick_prepare_split: with EVENT_IDX, only when avail.idx passes the device's avail_event;
 * without, unless used.flags has VRING_USED_F_NO_NOTIFY. virtqueue_kick_prepare_packed: as the
 * device event structure says (DISABLE: no; DESC: once the avail position passes off_wrap).
 */
function needsKick(sim: Sim, r: RingState, availIdx: number, old: number): boolean {
  const mem = sim.world.mem;
  if (r.packed) {
    const ev = r.usedGpa + fromNum(packedDeviceEventOff(r.num));
    const flags = readU16(mem, ev + 2n);
    if (flags !== RING_EVENT_FLAGS_DESC) return flags !== RING_EVENT_FLAGS_DISABLE;
    return packedNeedEvent(r.num, r.availWrap, readU16(mem, ev), availIdx, old);
  }
  if (r.eventIdx) return needEvent(readU16Off(mem, r.usedGpa, 4 + 8 * r.num), availIdx, old);
  return !(readU16(mem, r.usedGpa) & VRING_USED_F_NO_NOTIFY);
}

/** A mapping failed: undo the ones made so far (virtqueue_add_split's unmap_release). */
function unwind(sim: Sim, d: DeviceState, r: RingState, sg: Seg[], dmas: bigint[], indirect: boolean, head: number, cause: number): void {
  if (indirect && !sim.world.variants.indirectUnmapFix) {
    // S4: the old error path walked the main ring from head instead of the indirect table: it unmaps
    // whatever the ring's descriptors hold and leaks the real mappings
    for (let i = 0, idx = head; i < dmas.length; i++) {
      const desc = readMem(sim.world.mem, r.descGpa + fromNum(16 * idx), 16);
      const v = new DataView(desc.buffer);
      const addr = v.getBigUint64(0, true);
      dmaUnmap(sim, d, addr, v.getUint32(8, true), v.getUint16(12, true) & VRING_DESC_F_WRITE ? 'FROM_DEVICE' : 'TO_DEVICE', 'page', cause);
      idx = v.getUint16(14, true);
    }
    return;
  }
  dmas.forEach((dma, i) => dmaUnmap(sim, d, dma, sg[i]!.len, sg[i]!.write ? 'FROM_DEVICE' : 'TO_DEVICE', 'page', cause));
}

function reap(sim: Sim, r: RingState): void {
  const w = sim.world;
  const d = w.devices.get(r.dev)!;
  while (hasUsed(sim, r)) {
    let id: number;
    let len: number;
    if (r.packed) {
      const pd = decodePacked(readMem(w.mem, r.descGpa + fromNum(16 * r.lastUsed), 16));
      id = pd.id;
      len = pd.len;
    } else {
      const at = r.usedGpa + fromNum(4 + 8 * (r.lastUsed % r.num));
      id = readU32(w.mem, at);
      len = readU32(w.mem, at + 4n);
    }
    // BAD_RING() in virtqueue_get_buf_ctx_split: the queue is marked broken
    if (id >= r.num) return void sim.emit({ kind: 'vq.error', actor: 'cpu0', cause: 0, q: r.q, msg: `id ${id} out of range`, seq: 0 });
    const posted = r.extra.get(id);
    if (!posted) return void sim.emit({ kind: 'vq.error', actor: 'cpu0', cause: 0, q: r.q, msg: `id ${id} is not a head!`, seq: 0 });
    const entries = posted.table ? 1 : posted.chain.length;
    const lastUsed = r.packed ? (r.lastUsed + entries) % r.num : (r.lastUsed + 1) & 0xffff;
    const got = sim.emit({ kind: 'vring.getbuf', actor: 'cpu0', cause: posted.op, q: r.q, id, len, lastUsed, seq: 0 });
    detach(sim, d, posted, got);
    sim.completions++;
    guestFaultsAfterCompletion(sim, d);
  }
  if (r.eventIdx && !r.packed) {
    // virtqueue_enable_cb_prepare: interrupt me once used.idx passes what I have consumed
    sim.emit({ kind: 'vq.event', actor: 'cpu0', cause: 0, q: r.q, idx: r.lastUsed, device: 0, gpa: r.availGpa + fromNum(4 + 2 * r.num), seq: 0 });
  }
  const lazy = firstWithFlushQueue(sim, FQ_SIZE);
  if (lazy) flushQueue(sim, lazy);
}

/** detach_buf: unmap from the shadow, then the CPU reads what the device wrote. */
function detach(sim: Sim, d: DeviceState, posted: Posted, cause: number): void {
  const skipSync = !!sim.fault('skip-sync');
  if (skipSync) cpuReads(sim, d, posted.sg, cause); // before the sync/unmap that makes it visible
  const skip = sim.faultHit('skip-unmap', 'unmaps');
  if (!skip) {
    const extra = sim.fault('unmap-size')?.arg ?? 0;
    for (const c of posted.chain) {
      const dir: DirName = c.flags & VRING_DESC_F_WRITE ? 'FROM_DEVICE' : 'TO_DEVICE';
      if (c.addr !== DMA_MAPPING_ERROR) dmaUnmap(sim, d, c.addr, c.len + extra, dir, 'page', cause);
    }
    if (posted.table) dmaUnmap(sim, d, posted.table, 16 * posted.chain.length, 'TO_DEVICE', 'single', cause);
  } else if (!skipSync && d.path.startsWith('swiotlb')) {
    // a driver that keeps the mapping must sync before reading
    for (const c of posted.chain) if (c.flags & VRING_DESC_F_WRITE && c.len > 0) dmaSync(sim, d, c.addr, c.len, 'FROM_DEVICE', true, cause);
  }
  if (!skipSync) cpuReads(sim, d, posted.sg, cause);
}

/** The CPU reads the device-writable segments with bytes in them, in list order. */
function cpuReads(sim: Sim, d: DeviceState, sg: readonly Seg[], cause: number): void {
  for (const s of sg) if (s.write && s.len > 0) cpuRead(sim, d, s, cause);
}

function cpuRead(sim: Sim, d: DeviceState, s: Seg, cause: number): void {
  // FNV-1a of what the guest sees, read in place (or the device's write's, when memory holds those bytes: written.ts)
  sim.emit({ kind: 'cpu.read', actor: 'cpu0', cause, dev: d.dev, gpa: s.gpa, len: s.len, sum: sim.deviceWrites.sumOf(sim.world.mem, s.gpa, s.len), seq: 0 });
}

/** Guest-side invalidations that only a fault asks for (Q2's device-IOTLB [0, ~0], Q1's domain resync). */
function guestFaultsAfterCompletion(sim: Sim, d: DeviceState): void {
  if (sim.faultHit('devtlb-inv-all', 'completions')) {
    const size = 0xffff_ffff_ffff_ffffn;
    const inv = sim.emit({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: d.dev, iova: 0n, size, gran: 'device', seq: 0 });
    if (!sim.world.variants.devIotlbClamp) return; // QEMU 5.2 aborts on the notifier range assertion
    vmmUnmapNotify(sim, d, inv, 0n, 1n << 48n, 'device'); // clamped to the notifier's range
  }
  if (sim.faultHit('resync', 'completions')) {
    const inv = sim.emit({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: d.dev, iova: 0n, size: 1n << 32n, gran: 'domain', seq: 0 });
    vmmUnmapNotify(sim, d, inv, 0n, 1n << 32n, 'domain');
  }
}
