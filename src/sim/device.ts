// The device side of a virtqueue: a vhost worker (or QEMU's own device model) running handler
// passes. A pass holds vq->mutex, so IOTLB messages land only between passes. In IOTLB mode it first
// checks the ring areas are translatable (vq_meta_prefetch). For each available chain it reads the
// descriptors, translates every buffer before touching any (vhost_get_vq_desc → translate_desc), then
// moves the data and publishes the used entry. A hole sends a MISS and ends the pass with the chain
// left available; the VMM's UPDATE wakes the vq. Ring errors stop the queue (vq_err) with the
// kernel's message.
//
// Event suppression: an interrupt is sent unless the driver asked not to (EVENT_IDX: used_event;
// else avail.flags VRING_AVAIL_F_NO_INTERRUPT; packed: the driver event structure); without
// EVENT_IDX the device sets VRING_USED_F_NO_NOTIFY while it works (vhost_disable_notify) and clears
// it when the ring is empty (vhost_enable_notify); a pass that ends on a MISS or an error leaves it
// set, as vhost's handlers do, so the guest does not kick a queue that is not listening.
//
// The memory accesses are in device-io.ts, the chain walk (vhost's and QEMU's rules) in chain-walk.ts.
import { fnv1aAt, fromNum, readU16, readU32, toNum } from '../model/memory.js';
import { type IotlbEntry, lookup } from '../model/device-iotlb.js';
import {
  availBytes,
  availPending,
  descBytes,
  needEvent,
  packedNeedEvent,
  packedRingBytes,
  ringSizeOk,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  usedBytes,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_PACKED_DESC_F_AVAIL,
  VRING_PACKED_DESC_F_USED,
  VRING_USED_F_NO_NOTIFY,
  VRING_DESC_F_WRITE,
} from '../model/vring.js';
import { queueEnabled } from '../model/queue-life.js';
import { permBits } from '../model/types.js';
import { opBytesInto } from './data.js';
import { payloadFor } from './scenario.js';
import { ringRules, walkChain } from './chain-walk.js';
import { emitAccess, need, type Pass, type QActor, readPiece, ringPut16, ringU16, vqError } from './device-io.js';
import type { Sim } from './sim.js';
import { entryXlate, type Piece, resolve } from './translate.js';

const Q_ACTORS: readonly QActor[] = ['vq0', 'vq1', 'vq2', 'vq3'];
const M64 = 0xffff_ffff_ffff_ffffn;

export function deviceRunnable(sim: Sim, q: number): boolean {
  const r = sim.world.rings[q];
  if (!r || !r.kicked || !queueEnabled(r) || r.parked || r.broken) return false;
  const d = sim.world.devices.get(r.dev)!;
  return d.probed && ringSizeOk(r.num, r.packed, ringRules(sim.world, d));
}

export function devicePass(sim: Sim, q: number): void {
  const w = sim.world;
  const r = w.rings[q]!;
  const d = w.devices.get(r.dev)!;
  const actor = Q_ACTORS[q] ?? (`vq${q}` as QActor);
  const begin = sim.emit({ kind: 'dev.pass', actor, cause: 0, q, begin: 1, seq: 0 });
  runPass({ sim, d, r, actor, begin, one: [{ dma: 0n, len: 0, gpa: 0n, hva: 0n, via: 'gpa', entry: 0 }] });
  sim.emit({ kind: 'dev.pass', actor, cause: begin, q, begin: 0, seq: 0 });
}

/** The body of a pass; false if it ended early. */
function runPass(p: Pass): boolean {
  const { sim, d, r, actor, begin } = p;
  if (d.translate === 'iova' && d.backend.startsWith('vhost')) {
    // B6: at the 2048-entry cap the oldest entry goes; the fault makes it happen at small scale
    if (d.iotlb.entries.length && sim.faultHit('evict-iotlb', 'passes')) {
      const e = d.iotlb.entries[0]!;
      sim.emit({ kind: 'fault', actor, cause: begin, what: 'evict-iotlb', arg: 0, dev: d.dev, iova: e.start, size: e.last - e.start + 1n, seq: 0 });
    }
    if (!prefetch(p)) return false;
  }
  if (!setNotify(p, false)) return false;
  const qemu = ringRules(sim.world, d) === 'qemu';
  const oldUsed = r.usedIdx;
  let completed = 0;
  // vhost_exceeds_weight: after `weight` chains the handler requeues itself and ends the pass (the
  // rest stays available, so the worker stays runnable)
  const weight = sim.config.knobs?.passChains ?? Infinity;
  if (r.packed) {
    while (completed < weight) {
      const avail = packedAvailable(p);
      if (avail < 0) return false;
      if (!avail) break;
      if (!processChain(p, r.lastAvail)) return false;
      completed++;
    }
  } else {
    const availIdx = ringU16(p, r.avail + 2n);
    if (availIdx < 0) return false;
    // vhost_get_avail_idx (QEMU: virtqueue_num_heads, which kept the old wording)
    if (((availIdx - r.lastAvail) & 0xffff) > r.num) return vqError(p, `Guest moved ${qemu ? 'used' : 'avail'} index from ${r.lastAvail} to ${availIdx}`);
    for (let last = r.lastAvail; last !== availIdx && completed < weight; last = (last + 1) & 0xffff) {
      const head = ringU16(p, r.avail + fromNum(4 + 2 * (last % r.num)));
      if (head < 0) return false;
      // vhost_get_vq_desc (QEMU: virtqueue_get_head)
      if (head >= r.num) return vqError(p, qemu ? `Guest says index ${head} is available` : `Guest says index ${head} > ${r.num} is available`);
      if (!processChain(p, head)) return false;
      completed++;
    }
  }
  const requeued = completed >= weight && availPending(sim.world.mem, r);
  if (completed && !signal(p, oldUsed)) return false;
  if (requeued) return true; // avail_event is updated once a later pass drains the ring
  if (r.eventIdx && !r.packed) {
    // vhost_update_avail_event: kick me once avail.idx passes what I have consumed
    const at = need(p, r.used + fromNum(4 + 8 * r.num), 2, 'WO', undefined, p.one);
    if (!at) return false;
    sim.emit({ kind: 'vq.event', actor, cause: begin, q: r.q, idx: r.lastAvail, device: 1, gpa: at[0]!.gpa, seq: 0 });
  }
  // vhost_enable_notify once the ring is empty (a handler that requeued itself returned above, with
  // notifications left disabled)
  return setNotify(p, true);
}

/**
 * vhost_disable_notify / vhost_enable_notify without EVENT_IDX: used.flags VRING_USED_F_NO_NOTIFY
 * while the handler works (QEMU: virtio_queue_set_notification; packed: the device event structure's
 * flags, RING_EVENT_FLAGS_DISABLE / ENABLE). Written only when it changes. With EVENT_IDX vhost leaves
 * used.flags alone (avail_event does the job).
 */
function setNotify(p: Pass, on: boolean): boolean {
  const { sim, r } = p;
  if (r.eventIdx && !r.packed) return true;
  const addr = r.packed ? r.used + fromNum(16 * r.num + 4 + 2) : r.used;
  const gpa = r.packed ? r.usedGpa + fromNum(16 * r.num + 4 + 2) : r.usedGpa;
  const want = on ? 0 : r.packed ? RING_EVENT_FLAGS_DISABLE : VRING_USED_F_NO_NOTIFY;
  if (readU16At(sim, gpa) === want) return true;
  return ringPut16(p, addr, want);
}

const readU16At = (sim: Sim, gpa: bigint) => readU16(sim.world.mem, gpa);

function prefetch(p: Pass): boolean {
  const { r } = p;
  let desc: number;
  let avail = 0;
  let used: number;
  if (r.packed) {
    const bytes = packedRingBytes(r.num);
    if ((desc = metaEntry(p, r.desc, bytes, 'RO')) < 0) return false;
    if ((used = metaEntry(p, r.desc, bytes, 'WO')) < 0) return false;
  } else {
    if ((desc = metaEntry(p, r.desc, descBytes(r.num), 'RO')) < 0) return false;
    if ((avail = metaEntry(p, r.avail, availBytes(r.num), 'RO')) < 0) return false;
    if ((used = metaEntry(p, r.used, usedBytes(r.num), 'WO')) < 0) return false;
  }
  if (desc !== r.meta.desc || avail !== r.meta.avail || used !== r.meta.used)
    p.sim.emit({ kind: 'vq.prefetch', actor: p.actor, cause: p.begin, q: r.q, desc, avail, used, seq: 0 });
  return true;
}

/**
 * room + 1 >= len for a bigint room and a length below 2^53, comparing numbers (a bigint-to-double
 * conversion is cheaper than BigInt(len), which allocates in the runtime on this path).
 */
const roomHolds = (room: bigint, len: number): boolean => room >= EXACT_BIG || toNum(room) + 1 >= len;
/** roomHolds(e.last - addr, len), in doubles when addr and e.last are below 2^53 (exact there) */
function entryHolds(e: IotlbEntry, addr: bigint, len: number): boolean {
  const a = toNum(addr);
  return a < EXACT && e.lastNum < EXACT ? e.lastNum - a + 1 >= len : roomHolds(e.last - addr, len);
}
const EXACT = 2 ** 53;
/** 2^53: a bigint below it converts to a double exactly */
const EXACT_BIG = 1n << 53n;

/** One ring area for vq_meta_prefetch: the seq of the one IOTLB entry translating it (0 if it takes several), -1 if the pass ended. */
function metaEntry(p: Pass, addr: bigint, len: number, access: 'RO' | 'WO'): number {
  const { sim, d, r } = p;
  const first = lookup(d.iotlb, addr);
  // (last - start + 1) mod 2^64 is 0: lookup's entry has start <= last, so only [0, 2^64-1] (no
  // bigint arithmetic for the ordinary entry, on every ring area of every pass)
  if (first && first.start === 0n && first.last === M64)
    // B1: a size-0 entry [0, ULONG_MAX] makes iotlb_access_ok() add 0 to its progress forever
    return vqError(p, `iotlb_access_ok: no progress through zero-size IOTLB entry [0x${first.start.toString(16)}, 0x${first.last.toString(16)}] (worker hung)`), -1;
  // the common case, what resolve() answers without building the piece: one entry covers the area
  // with the access's permission and translates all of it (its HVA range in one memory region)
  // (the room first.last - addr as a number: exact below 2^53, and 2^53 or more holds any area)
  if (first && len > 0 && permBits(first.perm) & (access === 'WO' ? 2 : 1) && entryHolds(first, addr, len) && entryXlate(sim.xlate, first, sim.world.memTable).ok) return first.seq;
  const res = resolve(sim.world, d, addr, len, access, p.one, sim.xlate);
  if (!Array.isArray(res)) {
    if (res.err === 'EAGAIN') sim.emit({ kind: 'iotlb.miss', actor: p.actor, cause: p.begin, dev: d.dev, q: r.q, iova: res.addr, perm: access, seq: 0 });
    return -1; // EPERM: vq_meta_prefetch fails without a message
  }
  return res.length === 1 ? res[0]!.entry : 0;
}

/** 1 if the packed descriptor at lastAvail is available, 0 if not, -1 if the pass ended. */
function packedAvailable(p: Pass): number {
  const { r } = p;
  const flags = ringU16(p, r.desc + fromNum(16 * r.lastAvail) + 14n);
  if (flags < 0) return -1;
  const avail = flags & VRING_PACKED_DESC_F_AVAIL ? 1 : 0;
  const used = flags & VRING_PACKED_DESC_F_USED ? 1 : 0;
  return avail === r.usedWrap && used !== r.usedWrap ? 1 : 0;
}

/** Walk, translate, move data, publish used. `head` is the split head or the packed ring position. */
function processChain(p: Pass, head: number): boolean {
  const { sim, r, actor, begin } = p;
  const walked = walkChain(p, head);
  if (!walked) return false;
  const { descs, pieces, id, ringEntries } = walked;
  if (sim.world.variants.dirtyLog) {
    // vhost get_vq_desc: one log entry per writable descriptor; before 060423bfdee3 even for len 0,
    // which produces no iovec, so log_num could exceed in_num (CVE-2019-14835)
    let writable = 0;
    let inNum = 0;
    descs.forEach((x, i) => {
      if (!(x.flags & VRING_DESC_F_WRITE)) return;
      writable++;
      for (const q of pieces[i]!) if (q.len > 0) inNum++;
    });
    const logNum = sim.world.variants.logNumFix ? inNum : writable + Math.max(0, inNum - writable);
    sim.emit({ kind: 'vq.log', actor, cause: begin, q: r.q, logNum, inNum, seq: 0 });
  }
  // move the data: the device reads what it is given (the first piece is a virtio-blk request's header)...
  let hdr: Piece | null = null;
  let total = 0;
  for (let i = 0; i < descs.length; i++) {
    if (descs[i]!.flags & VRING_DESC_F_WRITE) {
      total += descs[i]!.len;
      continue;
    }
    for (const piece of pieces[i]!) {
      hdr ??= piece;
      readPiece(p, piece, 'buf');
    }
  }
  // ...and writes what it produces into the writable ones
  const data = deviceData(p, hdr, total);
  const limit = sim.fault('partial-write') ? Math.floor(total / 2) : total;
  let off = 0;
  let written = 0;
  for (let i = 0; i < descs.length; i++) {
    if (!(descs[i]!.flags & VRING_DESC_F_WRITE)) continue;
    for (const piece of pieces[i]!) {
      const n = Math.max(0, Math.min(piece.len, limit - off));
      if (n > 0) {
        const bytes = data.subarray(off, off + n);
        const sum = fnv1aAt(data, off, n);
        emitAccess(p, piece, n, 'write', 'buf', sum, bytes);
        sim.deviceWrites.remember(piece.gpa, bytes, sum);
        written += n;
      }
      off += piece.len;
    }
  }
  // publish
  const slot = r.packed ? r.usedIdx : r.usedIdx % r.num;
  const at = need(p, r.packed ? r.desc : r.used, 4, 'WO', undefined, p.one);
  if (!at) return false;
  const usedIdx = r.packed ? (r.usedIdx + ringEntries) % r.num : (r.usedIdx + 1) & 0xffff;
  sim.emit({ kind: 'vring.used', actor, cause: begin, q: r.q, slot, id, len: written, usedIdx, wrap: r.usedWrap, gpa: at[0]!.gpa, seq: 0 });
  return true;
}

/** What the device writes: virtio-blk reads its header (type, sector) and returns disk bytes and a status; virtio-net fills a packet. */
function deviceData(p: Pass, hdr: Piece | null, total: number): Uint8Array {
  const { sim, d, r } = p;
  const all = sim.bytes(total);
  const given = sim.config.workload === 'scenario' ? payloadFor(sim, r.q, r.served) : undefined;
  if (given) {
    all.set(given.subarray(0, total)); // the scenario's payload, cut or zero-padded to the buffers
    return all;
  }
  if (d.name === 'virtio-blk') {
    // the sector is the u64's low word at byte 8 of a 16-byte header (0 without one); memory has not
    // changed since the device read it
    const sector = !hdr ? 0 : hdr.len >= 16 ? readU32(sim.world.mem, hdr.gpa + 8n) : 0;
    if (total > 1) opBytesInto(all, 0, sim.dataKey, 3, sector, 0, total - 1);
    return all; // last byte: VIRTIO_BLK_S_OK (0)
  }
  if (total > 12) opBytesInto(all, 12, sim.dataKey, 2, r.q * 0x100000 + r.served, 0, total - 12);
  return all;
}

/**
 * Interrupt or not (vhost_notify; QEMU virtio_split_should_notify / virtio_packed_should_notify):
 * EVENT_IDX, once used.idx passes used_event; without it, unless avail.flags has
 * VRING_AVAIL_F_NO_INTERRUPT; packed, as the driver event structure says (ENABLE, DISABLE, or DESC:
 * once the used position passes off_wrap, vring_packed_need_event).
 */
function signal(p: Pass, oldUsed: number): boolean {
  const { sim, r, actor, begin } = p;
  if (r.packed) {
    const ev = r.avail + fromNum(16 * r.num);
    const flags = ringU16(p, ev + 2n);
    if (flags < 0) return false;
    if (flags === RING_EVENT_FLAGS_DISABLE) return true;
    if (flags !== RING_EVENT_FLAGS_ENABLE) {
      // RING_EVENT_FLAGS_DESC (QEMU takes any other value the same way)
      const offWrap = ringU16(p, ev);
      if (offWrap < 0) return false;
      if (!packedNeedEvent(r.num, r.usedWrap, offWrap, r.usedIdx, oldUsed)) return true;
    }
  } else if (r.eventIdx) {
    const usedEvent = ringU16(p, r.avail + fromNum(4 + 2 * r.num));
    if (usedEvent < 0) return false;
    if (!needEvent(usedEvent, r.usedIdx, oldUsed)) return true;
  } else {
    const flags = ringU16(p, r.avail);
    if (flags < 0) return false;
    if (flags & VRING_AVAIL_F_NO_INTERRUPT) return true;
  }
  sim.emit({ kind: 'vring.irq', actor, cause: begin, q: r.q, seq: 0 });
  return true;
}
