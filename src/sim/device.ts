// The device side of a virtqueue: a vhost worker (or QEMU's own device model) running handler
// passes. A pass holds vq->mutex, so IOTLB messages land only between passes. In IOTLB mode it first
// checks the ring areas are translatable (vq_meta_prefetch). For each available chain it reads the
// descriptors, translates every buffer before touching any (vhost_get_vq_desc → translate_desc), then
// moves the data and publishes the used entry. A hole sends a MISS and ends the pass with the chain
// left available; the VMM's UPDATE wakes the vq. Ring errors stop the queue (vq_err) with the
// kernel's message.
//
// This is the simulation's hot path (most events are device accesses), so:
// - a pass that ends early (a MISS, a fault, a ring error) unwinds by return value (false, null or -1:
//   "the pass ended, its events are emitted"), not by throwing, which costs far more per pass;
// - ring reads (indices, descriptors) are read where they lie in guest memory, without copying them
//   out, when the access is one piece within one page; everything else takes the general path.
import type { Desc } from '../events/schema.js';
import { fnv1aAt, PAGE_MASK, pageFor, readMemInto, readU32 } from '../model/memory.js';
import { lookup } from '../model/device-iotlb.js';
import {
  availBytes,
  descAt,
  descBytes,
  needEvent,
  packedAt,
  packedRingBytes,
  usedBytes,
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_PACKED_DESC_F_AVAIL,
  VRING_PACKED_DESC_F_USED,
} from '../model/vring.js';
import type { DeviceState, RingState } from '../model/world.js';
import { opBytesInto } from './data.js';
import type { Sim } from './sim.js';
import { type Piece, resolve } from './translate.js';

type QActor = 'vq0' | 'vq1' | 'vq2' | 'vq3';
const Q_ACTORS: readonly QActor[] = ['vq0', 'vq1', 'vq2', 'vq3'];
const M64 = 0xffff_ffff_ffff_ffffn;

export function deviceRunnable(sim: Sim, q: number): boolean {
  const r = sim.world.rings[q];
  return !!r && r.kicked && !r.parked && !r.broken && sim.world.devices.get(r.dev)!.probed;
}

interface Pass {
  sim: Sim;
  d: DeviceState;
  r: RingState;
  actor: QActor;
  begin: number;
}

export function devicePass(sim: Sim, q: number): void {
  const w = sim.world;
  const r = w.rings[q]!;
  const d = w.devices.get(r.dev)!;
  const actor = Q_ACTORS[q] ?? (`vq${q}` as QActor);
  const begin = sim.emit({ kind: 'dev.pass', actor, cause: 0, q, begin: 1 });
  runPass({ sim, d, r, actor, begin });
  sim.emit({ kind: 'dev.pass', actor, cause: begin, q, begin: 0 });
}

/** The body of a pass; false if it ended early. */
function runPass(p: Pass): boolean {
  const { sim, d, r, actor, begin } = p;
  if (d.translate === 'iova' && d.backend.startsWith('vhost')) {
    // B6: at the 2048-entry cap the oldest entry goes; the fault makes it happen at small scale
    if (d.iotlb.entries.length && sim.faultHit('evict-iotlb', 'passes')) {
      const e = d.iotlb.entries[0]!;
      sim.emit({ kind: 'fault', actor, cause: begin, what: 'evict-iotlb', arg: 0, dev: d.dev, iova: e.start, size: e.last - e.start + 1n });
    }
    if (!prefetch(p)) return false;
  }
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
    if (((availIdx - r.lastAvail) & 0xffff) > r.num) return vqError(p, `Guest moved used index from ${r.lastAvail} to ${availIdx}`);
    for (let last = r.lastAvail; last !== availIdx && completed < weight; last = (last + 1) & 0xffff) {
      const head = ringU16(p, r.avail + BigInt(4 + 2 * (last % r.num)));
      if (head < 0) return false;
      if (head >= r.num) return vqError(p, `Guest says index ${head} > ${r.num} is available`);
      if (!processChain(p, head)) return false;
      completed++;
    }
  }
  const requeued = completed >= weight && r.lastAvail !== r.availIdx;
  if (completed && !signal(p, oldUsed)) return false;
  if (requeued) return true; // avail_event is updated once a later pass drains the ring
  if (r.eventIdx && !r.packed) {
    // vhost_update_avail_event: kick me once avail.idx passes what I have consumed
    const at = need(p, r.used + BigInt(4 + 8 * r.num), 2, 'WO');
    if (!at) return false;
    sim.emit({ kind: 'vq.event', actor, cause: begin, q: r.q, idx: r.lastAvail, device: 1, gpa: at[0]!.gpa });
  }
  return true;
}

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
    p.sim.emit({ kind: 'vq.prefetch', actor: p.actor, cause: p.begin, q: r.q, desc, avail, used });
  return true;
}

/** One ring area for vq_meta_prefetch: the seq of the one IOTLB entry translating it (0 if it takes several), -1 if the pass ended. */
function metaEntry(p: Pass, addr: bigint, len: number, access: 'RO' | 'WO'): number {
  const { sim, d, r } = p;
  const first = lookup(d.iotlb, addr);
  if (first && ((first.last - first.start + 1n) & M64) === 0n)
    // B1: a size-0 entry [0, ULONG_MAX] makes iotlb_access_ok() add 0 to its progress forever
    return vqError(p, `iotlb_access_ok: no progress through zero-size IOTLB entry [0x${first.start.toString(16)}, 0x${first.last.toString(16)}] (worker hung)`), -1;
  const res = resolve(sim.world, d, addr, len, access);
  if (!Array.isArray(res)) {
    if (res.err === 'EAGAIN') sim.emit({ kind: 'iotlb.miss', actor: p.actor, cause: p.begin, dev: d.dev, q: r.q, iova: res.addr, perm: access });
    return -1; // EPERM: vq_meta_prefetch fails without a message
  }
  return res.length === 1 ? res[0]!.entry : 0;
}

/** 1 if the packed descriptor at lastAvail is available, 0 if not, -1 if the pass ended. */
function packedAvailable(p: Pass): number {
  const { r } = p;
  const flags = ringU16(p, r.desc + BigInt(16 * r.lastAvail) + 14n);
  if (flags < 0) return -1;
  const avail = flags & VRING_PACKED_DESC_F_AVAIL ? 1 : 0;
  const used = flags & VRING_PACKED_DESC_F_USED ? 1 : 0;
  return avail === r.usedWrap && used !== r.usedWrap ? 1 : 0;
}

/** Walk, translate, move data, publish used. `head` is the split head or the packed ring position. */
function processChain(p: Pass, head: number): boolean {
  const { sim, r, actor, begin } = p;
  const chain: Desc[] = [];
  let id = head;
  if (r.packed) {
    for (let pos = head, n = 0; ; n++) {
      if (n >= r.num) return vqError(p, 'Loop detected');
      const pd = readPacked(p, r.desc + BigInt(16 * pos));
      if (!pd) return false;
      id = pd.id;
      chain.push({ idx: pos, addr: pd.addr, len: pd.len, flags: pd.flags & 0x7f, next: 0 });
      if (!(pd.flags & VRING_DESC_F_NEXT)) break;
      pos = (pos + 1) % r.num;
    }
  } else {
    for (let idx = head, n = 0; ; n++) {
      if (n >= r.num) return vqError(p, 'Loop detected');
      const desc = readDesc(p, r.desc + BigInt(16 * idx), idx);
      if (!desc) return false;
      chain.push(desc);
      if (!(desc.flags & VRING_DESC_F_NEXT)) break;
      idx = desc.next;
      if (idx >= r.num) return vqError(p, `Desc next is ${idx} > ${r.num}`);
    }
  }
  const ringEntries = chain.length;
  let descs = chain;
  if (chain.length === 1 && chain[0]!.flags & VRING_DESC_F_INDIRECT) {
    const t = chain[0]!;
    if (t.len % 16 !== 0) return vqError(p, `Invalid length in indirect descriptor: len 0x${t.len.toString(16)} not multiple of 0x10`);
    const table = readBytes(p, t.addr, t.len, 'table');
    if (!table) return false;
    descs = [];
    for (let i = 0; i < t.len / 16; i++) {
      const x = descAt(table, 16 * i, i);
      if (x.flags & VRING_DESC_F_INDIRECT) return vqError(p, 'Nested indirect descriptor');
      descs.push(x);
    }
  }
  let sawIn = false;
  for (const x of descs) {
    if (x.flags & VRING_DESC_F_WRITE) sawIn = true;
    else if (sawIn) return vqError(p, 'Descriptor has out after in');
  }
  // translate every buffer before touching any
  const pieces: Piece[][] = [];
  for (const x of descs) {
    const ps = need(p, x.addr, x.len, x.flags & VRING_DESC_F_WRITE ? 'WO' : 'RO');
    if (!ps) return false;
    pieces.push(ps);
  }
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
    sim.emit({ kind: 'vq.log', actor, cause: begin, q: r.q, logNum, inNum });
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
        emitAccess(p, piece, n, 'write', 'buf', fnv1aAt(data, off, n), data.subarray(off, off + n));
        written += n;
      }
      off += piece.len;
    }
  }
  // publish
  const slot = r.packed ? r.usedIdx : r.usedIdx % r.num;
  const at = need(p, r.packed ? r.desc : r.used, 4, 'WO');
  if (!at) return false;
  const usedIdx = r.packed ? (r.usedIdx + ringEntries) % r.num : (r.usedIdx + 1) & 0xffff;
  sim.emit({ kind: 'vring.used', actor, cause: begin, q: r.q, slot, id, len: written, usedIdx, wrap: r.usedWrap, gpa: at[0]!.gpa });
  return true;
}

/** What the device writes: virtio-blk reads its header (type, sector) and returns disk bytes and a status; virtio-net fills a packet. */
function deviceData(p: Pass, hdr: Piece | null, total: number): Uint8Array {
  const { sim, d, r } = p;
  const all = new Uint8Array(total);
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

function signal(p: Pass, oldUsed: number): boolean {
  const { sim, r, actor, begin } = p;
  if (r.eventIdx && !r.packed) {
    const usedEvent = ringU16(p, r.avail + BigInt(4 + 2 * r.num));
    if (usedEvent < 0) return false;
    if (!needEvent(usedEvent, r.usedIdx, oldUsed)) return true;
  }
  sim.emit({ kind: 'vring.irq', actor, cause: begin, q: r.q });
  return true;
}

/** Resolve, or end the pass (null): a hole sends the MISS (vhost_iotlb_miss) and parks the vq. */
function need(p: Pass, addr: bigint, len: number, access: 'RO' | 'WO'): Piece[] | null {
  const { sim, d, r } = p;
  const res = resolve(sim.world, d, addr, len, access);
  if (Array.isArray(res)) return res;
  if (res.err === 'EAGAIN') sim.emit({ kind: 'iotlb.miss', actor: p.actor, cause: p.begin, dev: d.dev, q: r.q, iova: res.addr, perm: access });
  else if (res.err === 'FAULT') {
    sim.emit({ kind: 'iommu.fault', actor: 'iommu', cause: p.begin, dev: d.dev, iova: res.addr, write: access === 'WO' ? 1 : 0, reason: access === 'WO' ? 5 : 6 });
    vqError(p, `DMA ${access === 'WO' ? 'write' : 'read'} fault at 0x${res.addr.toString(16)}`);
  } else vqError(p, `Translation failure ${res.err === 'EPERM' ? -1 : -14} in descriptor`);
  return null;
}

/** vq_err(): the queue stops; so does the pass (always false). */
function vqError(p: Pass, msg: string): false {
  p.sim.emit({ kind: 'vq.error', actor: p.actor, cause: p.begin, q: p.r.q, msg });
  return false;
}

/** A 2-byte ring read (avail.idx, avail.ring[i], used_event, packed flags): the value, or -1 if the pass ended. */
function ringU16(p: Pass, addr: bigint): number {
  const pieces = need(p, addr, 2, 'RO');
  if (!pieces) return -1;
  const page = pieces.length === 1 ? pageFor(p.sim.world.mem, pieces[0]!.gpa, 2) : null;
  if (page) {
    const off = Number(pieces[0]!.gpa & PAGE_MASK);
    const v = page[off]! | (page[off + 1]! << 8);
    emitAccess(p, pieces[0]!, 2, 'read', 'ring', fnv1aAt(page, off, 2), EMPTY);
    return v;
  }
  const b = readPieces(p, pieces, 2, 'ring');
  return b[0]! | (b[1]! << 8);
}

/** The split descriptor idx at addr, or null if the pass ended. */
function readDesc(p: Pass, addr: bigint, idx: number): Desc | null {
  const pieces = need(p, addr, 16, 'RO');
  if (!pieces) return null;
  const page = pieces.length === 1 ? pageFor(p.sim.world.mem, pieces[0]!.gpa, 16) : null;
  if (page) {
    const off = Number(pieces[0]!.gpa & PAGE_MASK);
    const desc = descAt(page, off, idx);
    emitAccess(p, pieces[0]!, 16, 'read', 'ring', fnv1aAt(page, off, 16), EMPTY);
    return desc;
  }
  return descAt(readPieces(p, pieces, 16, 'ring'), 0, idx);
}

/** The packed descriptor at addr, or null if the pass ended. */
function readPacked(p: Pass, addr: bigint): ReturnType<typeof packedAt> | null {
  const pieces = need(p, addr, 16, 'RO');
  if (!pieces) return null;
  return packedAt(readPieces(p, pieces, 16, 'ring'), 0);
}

/** len bytes at addr read by the device (one dev.access per piece), or null if the pass ended. */
function readBytes(p: Pass, addr: bigint, len: number, area: 'ring' | 'table'): Uint8Array | null {
  const pieces = need(p, addr, len, 'RO');
  return pieces && readPieces(p, pieces, len, area);
}

function readPieces(p: Pass, pieces: Piece[], len: number, area: 'ring' | 'table'): Uint8Array {
  const out = new Uint8Array(len);
  let off = 0;
  for (const piece of pieces) {
    readMemInto(p.sim.world.mem, piece.gpa, piece.len, out, off);
    emitAccess(p, piece, piece.len, 'read', area, fnv1aAt(out, off, piece.len), EMPTY);
    off += piece.len;
  }
  return out;
}

/** The device reads one piece of a buffer: only its fingerprint is recorded. */
function readPiece(p: Pass, piece: Piece, area: 'buf'): void {
  const mem = p.sim.world.mem;
  const page = pageFor(mem, piece.gpa, piece.len);
  let sum: number;
  if (page) sum = fnv1aAt(page, Number(piece.gpa & PAGE_MASK), piece.len);
  else {
    const bytes = new Uint8Array(piece.len);
    readMemInto(mem, piece.gpa, piece.len, bytes, 0);
    sum = fnv1aAt(bytes, 0, piece.len);
  }
  emitAccess(p, piece, piece.len, 'read', area, sum, EMPTY);
}

function emitAccess(p: Pass, piece: Piece, len: number, dir: 'read' | 'write', area: 'ring' | 'table' | 'buf', sum: number, data: Uint8Array): void {
  const meta = piece.via === 'iotlb' && isMetaHit(p.r, piece.entry);
  p.sim.emit({
    kind: 'dev.access',
    actor: p.actor,
    cause: p.begin,
    q: p.r.q,
    dma: piece.dma,
    len,
    dir,
    area,
    via: meta ? 'meta' : piece.via,
    gpa: piece.gpa,
    hva: piece.hva,
    entry: piece.entry,
    sum,
    data,
  });
}

const isMetaHit = (r: RingState, entry: number) => entry !== 0 && (r.meta.desc === entry || r.meta.avail === entry || r.meta.used === entry);

const EMPTY = new Uint8Array(0);
