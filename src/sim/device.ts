// The device: a vhost worker processing one virtqueue. A handler pass holds vq->mutex, so IOTLB
// messages land only between passes; the pass first checks the ring areas are translatable
// (vq_meta_prefetch), then for each available chain translates every descriptor's buffer before
// touching any (vhost_get_vq_desc → translate_desc). A hole sends a MISS and ends the pass with
// the chain left available; the VMM's UPDATE wakes the vq.
import { decodeDesc, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, availBytes, descBytes, usedBytes } from '../model/vring.js';
import { fnv1a, readMem } from '../model/memory.js';
import type { Desc } from '../events/schema.js';
import type { Sim } from './sim.js';
import { type Piece, resolve } from './translate.js';

export function deviceRunnable(sim: Sim, q: number): boolean {
  const r = sim.world.rings[q];
  return !!r && r.kicked && !r.parked;
}

// Thrown to leave a pass early (a MISS or a fault). A plain object: no stack to capture on a hot path.
const END_PASS = { endPass: true } as const;

export function devicePass(sim: Sim, q: number): void {
  const w = sim.world;
  const r = w.rings[q]!;
  const begin = sim.emit({ kind: 'dev.pass', actor: 'vq0', cause: 0, q, begin: 1 });
  try {
    if (w.path === 'iommu') {
      need(sim, q, r.desc, descBytes(r.num), 'RO', begin);
      need(sim, q, r.avail, availBytes(r.num), 'RO', begin);
      need(sim, q, r.used, usedBytes(r.num), 'WO', begin);
    }
    const availIdx = u16(read(sim, q, r.avail + 2n, 2, begin));
    let last = r.lastAvail;
    let completed = 0;
    while (last !== availIdx) {
      const head = u16(read(sim, q, r.avail + BigInt(4 + 2 * (last % r.num)), 2, begin));
      const chain: Desc[] = [];
      for (let idx = head, n = 0; n < r.num; n++) {
        const d = decodeDesc(read(sim, q, r.desc + BigInt(16 * idx), 16, begin), idx);
        chain.push(d);
        if (!(d.flags & VRING_DESC_F_NEXT)) break;
        idx = d.next;
      }
      const pieces = chain.map((d) => need(sim, q, d.addr, d.len, d.flags & VRING_DESC_F_WRITE ? 'WO' : 'RO', begin));
      let written = 0;
      chain.forEach((d, i) => {
        for (const p of pieces[i]!) {
          if (d.flags & VRING_DESC_F_WRITE) {
            access(sim, q, p, 'write', begin, sim.rng.bytes(p.len));
            written += p.len;
          } else access(sim, q, p, 'read', begin);
        }
      });
      const usedBase = need(sim, q, r.used, 4, 'WO', begin)[0]!;
      const slot = r.usedIdx % r.num;
      sim.emit({ kind: 'vring.used', actor: 'vq0', cause: begin, q, slot, id: head, len: written, usedIdx: (r.usedIdx + 1) & 0xffff, gpa: usedBase.gpa });
      last = (last + 1) & 0xffff;
      completed++;
    }
    if (completed) sim.emit({ kind: 'vring.irq', actor: 'vq0', cause: begin, q });
  } catch (e) {
    if (e !== END_PASS) throw e;
  }
  sim.emit({ kind: 'dev.pass', actor: 'vq0', cause: begin, q, begin: 0 });
}

/** Resolve or end the pass: a hole sends the MISS (vhost_iotlb_miss) and parks the vq. */
function need(sim: Sim, q: number, addr: bigint, len: number, access: 'RO' | 'WO', cause: number): Piece[] {
  const res = resolve(sim.world, addr, len, access);
  if (res.ok) return res.pieces;
  if (res.err === 'EAGAIN') sim.emit({ kind: 'iotlb.miss', actor: 'vq0', cause, q, iova: res.addr, perm: access });
  throw END_PASS;
}

function read(sim: Sim, q: number, addr: bigint, len: number, cause: number): Uint8Array {
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of need(sim, q, addr, len, 'RO', cause)) {
    out.set(access(sim, q, p, 'read', cause), off);
    off += p.len;
  }
  return out;
}

function access(sim: Sim, q: number, p: Piece, dir: 'read' | 'write', cause: number, data?: Uint8Array): Uint8Array {
  const bytes = data ?? readMem(sim.world.mem, p.gpa, p.len);
  sim.emit({
    kind: 'dev.access',
    actor: 'vq0',
    cause,
    q,
    dma: p.dma,
    len: p.len,
    dir,
    via: p.entry ? 'iotlb' : 'gpa',
    gpa: p.gpa,
    hva: p.hva,
    entry: p.entry,
    sum: fnv1a(bytes),
    data: dir === 'write' ? bytes : EMPTY,
  });
  return bytes;
}

const EMPTY = new Uint8Array(0);
const u16 = (b: Uint8Array) => b[0]! | (b[1]! << 8);
