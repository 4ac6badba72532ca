// The device side of a virtqueue: a vhost worker (or QEMU's own device model) running handler
// passes. A pass holds vq->mutex, so IOTLB messages land only between passes. In IOTLB mode it first
// checks the ring areas are translatable (vq_meta_prefetch). For each available chain it reads the
// descriptors, translates every buffer before touching any (vhost_get_vq_desc → translate_desc), then
// moves the data and publishes the used entry. A hole sends a MISS and ends the pass with the chain
// left available; the VMM's UPDATE wakes the vq. Ring errors stop the queue (vq_err) with the
// kernel's message.
import type { Desc } from '../events/schema.js';
import { fnv1a, readMem } from '../model/memory.js';
import { lookup } from '../model/device-iotlb.js';
import {
  availBytes,
  decodeDesc,
  decodePacked,
  descBytes,
  needEvent,
  packedRingBytes,
  usedBytes,
  VRING_DESC_F_INDIRECT,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_PACKED_DESC_F_AVAIL,
  VRING_PACKED_DESC_F_USED,
} from '../model/vring.js';
import type { DeviceState, RingState } from '../model/world.js';
import { opBytes } from './data.js';
import type { Sim } from './sim.js';
import { type Piece, resolve } from './translate.js';

// Thrown to leave a pass early (a MISS, a fault, a ring error). A plain object: no stack to capture.
const END_PASS = { endPass: true } as const;

type QActor = 'vq0' | 'vq1' | 'vq2' | 'vq3';

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
  const actor = `vq${q}` as QActor;
  const begin = sim.emit({ kind: 'dev.pass', actor, cause: 0, q, begin: 1 });
  const p: Pass = { sim, d, r, actor, begin };
  try {
    if (d.translate === 'iova' && d.backend.startsWith('vhost')) {
      // B6: at the 2048-entry cap the oldest entry goes; the fault makes it happen at small scale
      if (d.iotlb.entries.length && sim.faultHit('evict-iotlb', 'passes'))
        sim.emit({ kind: 'fault', actor, cause: begin, what: 'evict-iotlb', arg: 0, dev: d.dev, iova: d.iotlb.entries[0]!.start, size: d.iotlb.entries[0]!.last - d.iotlb.entries[0]!.start + 1n });
      prefetch(p);
    }
    const oldUsed = r.usedIdx;
    let completed = 0;
    if (r.packed) {
      while (packedAvailable(p)) {
        processChain(p, r.lastAvail);
        completed++;
      }
    } else {
      const availIdx = u16(read(p, r.avail + 2n, 2));
      if (((availIdx - r.lastAvail) & 0xffff) > r.num) vqError(p, `Guest moved used index from ${r.lastAvail} to ${availIdx}`);
      for (let last = r.lastAvail; last !== availIdx; last = (last + 1) & 0xffff) {
        const head = u16(read(p, r.avail + BigInt(4 + 2 * (last % r.num)), 2));
        if (head >= r.num) vqError(p, `Guest says index ${head} > ${r.num} is available`);
        processChain(p, head);
        completed++;
      }
    }
    if (completed) signal(p, oldUsed);
    if (r.eventIdx && !r.packed) {
      // vhost_update_avail_event: kick me once avail.idx passes what I have consumed
      const at = r.used + BigInt(4 + 8 * r.num);
      const gpa = need(p, at, 2, 'WO')[0]!.gpa;
      sim.emit({ kind: 'vq.event', actor, cause: begin, q, idx: r.lastAvail, device: 1, gpa });
    }
  } catch (e) {
    if (e !== END_PASS) throw e;
  }
  sim.emit({ kind: 'dev.pass', actor, cause: begin, q, begin: 0 });
}

function prefetch(p: Pass): void {
  const { r, sim, d } = p;
  const areas: [keyof RingState['meta'], bigint, number, 'RO' | 'WO'][] = r.packed
    ? [
        ['desc', r.desc, packedRingBytes(r.num), 'RO'],
        ['used', r.desc, packedRingBytes(r.num), 'WO'],
      ]
    : [
        ['desc', r.desc, descBytes(r.num), 'RO'],
        ['avail', r.avail, availBytes(r.num), 'RO'],
        ['used', r.used, usedBytes(r.num), 'WO'],
      ];
  const meta = { desc: 0, avail: 0, used: 0 };
  for (const [name, addr, len, access] of areas) {
    const first = lookup(d.iotlb, addr);
    if (first && ((first.last - first.start + 1n) & 0xffff_ffff_ffff_ffffn) === 0n)
      // B1: a size-0 entry [0, ULONG_MAX] makes iotlb_access_ok() add 0 to its progress forever
      vqError(p, `iotlb_access_ok: no progress through zero-size IOTLB entry [0x${first.start.toString(16)}, 0x${first.last.toString(16)}] (worker hung)`);
    const res = resolve(sim.world, d, addr, len, access);
    if (!res.ok) {
      if (res.err === 'EAGAIN') sim.emit({ kind: 'iotlb.miss', actor: p.actor, cause: p.begin, dev: d.dev, q: r.q, iova: res.addr, perm: access });
      throw END_PASS; // EPERM: vq_meta_prefetch fails without a message
    }
    if (res.pieces.length === 1) meta[name] = res.pieces[0]!.entry;
  }
  if (meta.desc !== r.meta.desc || meta.avail !== r.meta.avail || meta.used !== r.meta.used)
    sim.emit({ kind: 'vq.prefetch', actor: p.actor, cause: p.begin, q: r.q, ...meta });
}

function packedAvailable(p: Pass): boolean {
  const { r } = p;
  const flags = u16(read(p, r.desc + BigInt(16 * r.lastAvail) + 14n, 2));
  const avail = flags & VRING_PACKED_DESC_F_AVAIL ? 1 : 0;
  const used = flags & VRING_PACKED_DESC_F_USED ? 1 : 0;
  return avail === r.usedWrap && used !== r.usedWrap;
}

/** Walk, translate, move data, publish used. `head` is the split head or the packed ring position. */
function processChain(p: Pass, head: number): void {
  const { sim, r, d, actor, begin } = p;
  const chain: Desc[] = [];
  let id = head;
  if (r.packed) {
    for (let pos = head, n = 0; ; n++) {
      if (n >= r.num) vqError(p, 'Loop detected');
      const pd = decodePacked(read(p, r.desc + BigInt(16 * pos), 16));
      id = pd.id;
      chain.push({ idx: pos, addr: pd.addr, len: pd.len, flags: pd.flags & 0x7f, next: 0 });
      if (!(pd.flags & VRING_DESC_F_NEXT)) break;
      pos = (pos + 1) % r.num;
    }
  } else {
    for (let idx = head, n = 0; ; n++) {
      if (n >= r.num) vqError(p, 'Loop detected');
      const desc = decodeDesc(read(p, r.desc + BigInt(16 * idx), 16), idx);
      chain.push(desc);
      if (!(desc.flags & VRING_DESC_F_NEXT)) break;
      idx = desc.next;
      if (idx >= r.num) vqError(p, `Desc next is ${idx} > ${r.num}`);
    }
  }
  const ringEntries = chain.length;
  let descs = chain;
  if (chain.length === 1 && chain[0]!.flags & VRING_DESC_F_INDIRECT) {
    const t = chain[0]!;
    if (t.len % 16 !== 0) vqError(p, `Invalid length in indirect descriptor: len 0x${t.len.toString(16)} not multiple of 0x10`);
    const table = read(p, t.addr, t.len, 'table');
    descs = [];
    for (let i = 0; i < t.len / 16; i++) {
      const x = decodeDesc(table.subarray(16 * i, 16 * i + 16), i);
      if (x.flags & VRING_DESC_F_INDIRECT) vqError(p, 'Nested indirect descriptor');
      descs.push(x);
    }
  }
  let sawIn = false;
  for (const x of descs) {
    if (x.flags & VRING_DESC_F_WRITE) sawIn = true;
    else if (sawIn) vqError(p, 'Descriptor has out after in');
  }
  // translate every buffer before touching any
  const pieces = descs.map((x) => need(p, x.addr, x.len, x.flags & VRING_DESC_F_WRITE ? 'WO' : 'RO'));
  if (sim.world.variants.dirtyLog) {
    // vhost get_vq_desc: one log entry per writable descriptor; before 060423bfdee3 even for len 0,
    // which produces no iovec, so log_num could exceed in_num (CVE-2019-14835)
    const writable = descs.filter((x) => x.flags & VRING_DESC_F_WRITE);
    const inNum = pieces.filter((_, i) => descs[i]!.flags & VRING_DESC_F_WRITE).reduce((n, ps) => n + ps.filter((q) => q.len > 0).length, 0);
    const logNum = sim.world.variants.logNumFix ? inNum : writable.length + Math.max(0, inNum - writable.length);
    sim.emit({ kind: 'vq.log', actor, cause: begin, q: r.q, logNum, inNum });
  }
  // move the data
  const outBytes: Uint8Array[] = [];
  descs.forEach((x, i) => {
    if (!(x.flags & VRING_DESC_F_WRITE)) for (const piece of pieces[i]!) outBytes.push(access(p, piece, 'read', 'buf'));
  });
  const writable = descs.map((x, i) => (x.flags & VRING_DESC_F_WRITE ? i : -1)).filter((i) => i >= 0);
  const total = writable.reduce((n, i) => n + descs[i]!.len, 0);
  const data = deviceData(p, outBytes, total);
  const limit = sim.fault('partial-write') ? Math.floor(total / 2) : total;
  let off = 0;
  let written = 0;
  for (const i of writable)
    for (const piece of pieces[i]!) {
      const n = Math.max(0, Math.min(piece.len, limit - off));
      if (n > 0) {
        access(p, { ...piece, len: n }, 'write', 'buf', data.subarray(off, off + n));
        written += n;
      }
      off += piece.len;
    }
  // publish
  const slot = r.packed ? r.usedIdx : r.usedIdx % r.num;
  const base = r.packed ? r.desc : r.used;
  const gpa = need(p, base, 4, 'WO')[0]!.gpa;
  const usedIdx = r.packed ? (r.usedIdx + ringEntries) % r.num : (r.usedIdx + 1) & 0xffff;
  sim.emit({ kind: 'vring.used', actor, cause: begin, q: r.q, slot, id, len: written, usedIdx, wrap: r.usedWrap, gpa });
}

/** What the device writes: virtio-blk reads its header (type, sector) and returns disk bytes and a status; virtio-net fills a packet. */
function deviceData(p: Pass, outBytes: Uint8Array[], total: number): Uint8Array {
  const { sim, d, r } = p;
  if (d.name === 'virtio-blk') {
    const hdr = outBytes[0] ?? new Uint8Array(16);
    const sector = hdr.length >= 16 ? new DataView(hdr.buffer, hdr.byteOffset, 16).getUint32(8, true) : 0;
    const out = total > 1 ? opBytes(sim.dataKey, 3, sector, 0, total - 1) : new Uint8Array(0);
    const all = new Uint8Array(total);
    all.set(out.subarray(0, Math.max(0, total - 1)));
    return all; // last byte: VIRTIO_BLK_S_OK (0)
  }
  const all = new Uint8Array(total);
  all.set(opBytes(sim.dataKey, 2, r.q * 0x100000 + r.served, 0, Math.max(0, total - 12)).subarray(0, Math.max(0, total - 12)), Math.min(12, total));
  return all;
}

function signal(p: Pass, oldUsed: number): void {
  const { sim, r, actor, begin } = p;
  if (r.eventIdx && !r.packed) {
    const usedEvent = u16(read(p, r.avail + BigInt(4 + 2 * r.num), 2));
    if (!needEvent(usedEvent, r.usedIdx, oldUsed)) return;
  }
  sim.emit({ kind: 'vring.irq', actor, cause: begin, q: r.q });
}

/** Resolve or end the pass: a hole sends the MISS (vhost_iotlb_miss) and parks the vq. */
function need(p: Pass, addr: bigint, len: number, access: 'RO' | 'WO'): Piece[] {
  const { sim, d, r } = p;
  const res = resolve(sim.world, d, addr, len, access);
  if (res.ok) return res.pieces;
  if (res.err === 'EAGAIN') sim.emit({ kind: 'iotlb.miss', actor: p.actor, cause: p.begin, dev: d.dev, q: r.q, iova: res.addr, perm: access });
  else if (res.err === 'FAULT') {
    sim.emit({ kind: 'iommu.fault', actor: 'iommu', cause: p.begin, dev: d.dev, iova: res.addr, write: access === 'WO' ? 1 : 0, reason: access === 'WO' ? 5 : 6 });
    vqError(p, `DMA ${access === 'WO' ? 'write' : 'read'} fault at 0x${res.addr.toString(16)}`);
  } else vqError(p, `Translation failure ${res.err === 'EPERM' ? -1 : -14} in descriptor`);
  throw END_PASS;
}

function vqError(p: Pass, msg: string): never {
  p.sim.emit({ kind: 'vq.error', actor: p.actor, cause: p.begin, q: p.r.q, msg });
  throw END_PASS;
}

function read(p: Pass, addr: bigint, len: number, area: 'ring' | 'table' = 'ring'): Uint8Array {
  const out = new Uint8Array(len);
  let off = 0;
  for (const piece of need(p, addr, len, 'RO')) {
    out.set(access(p, piece, 'read', area), off);
    off += piece.len;
  }
  return out;
}

function access(p: Pass, piece: Piece, dir: 'read' | 'write', area: 'ring' | 'table' | 'buf', data?: Uint8Array): Uint8Array {
  const bytes = data ?? readMem(p.sim.world.mem, piece.gpa, piece.len);
  const meta = piece.via === 'iotlb' && isMetaHit(p.r, piece.entry);
  p.sim.emit({
    kind: 'dev.access',
    actor: p.actor,
    cause: p.begin,
    q: p.r.q,
    dma: piece.dma,
    len: piece.len,
    dir,
    area,
    via: meta ? 'meta' : piece.via,
    gpa: piece.gpa,
    hva: piece.hva,
    entry: piece.entry,
    sum: fnv1a(bytes),
    data: dir === 'write' ? bytes : EMPTY,
  });
  return bytes;
}

const isMetaHit = (r: RingState, entry: number) => entry !== 0 && (r.meta.desc === entry || r.meta.avail === entry || r.meta.used === entry);

const EMPTY = new Uint8Array(0);
const u16 = (b: Uint8Array) => b[0]! | (b[1]! << 8);
