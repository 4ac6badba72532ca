// How the device touches guest memory during a handler pass: every ring, table and buffer access
// resolves through the device's translation (translate.ts) and is emitted as a dev.access; a hole
// sends the MISS and ends the pass; a translation failure stops the queue with vhost's vq_err text.
//
// This is the simulation's hot path (most events are device accesses), so a pass that ends early
// unwinds by return value (false, null or -1: "the pass ended, its events are emitted"), not by
// throwing; ring reads that lie in one page are read in place, without copying them out.
import type { Desc } from '../events/schema.js';
import { fnv1aAt, pageFor, pageOff, readMemInto } from '../model/memory.js';
import { descAt, packedAt } from '../model/vring.js';
import type { DeviceState, RingState } from '../model/world.js';
import type { Sim } from './sim.js';
import { type Piece, resolve } from './translate.js';

export type QActor = 'vq0' | 'vq1' | 'vq2' | 'vq3';

export interface Pass {
  sim: Sim;
  d: DeviceState;
  r: RingState;
  actor: QActor;
  begin: number;
  /**
   * the pass's one-piece translation of a ring access, used before the next one (translate.ts
   * resolve). One per pass, not per Sim: a pass is young, and each resolve stores new bigints (GPA,
   * HVA) into it; stored into a long-lived (old-generation) object, every such store took the write
   * barrier's slow path (Builtins_RecordWrite from resolve, ~0.9% of the simulation's perf samples)
   */
  one: [Piece];
}

export const EMPTY = new Uint8Array(0);

/**
 * Resolve, or end the pass (null): a hole sends the MISS (vhost_iotlb_miss) and parks the vq; any
 * other failure stops it. `where` completes vhost's message: translate_desc's callers say
 * "Translation failure %d descriptor idx %d" (vhost_get_vq_desc), "... indirect idx %d" and
 * "... in indirect." (get_indirect); QEMU's virtqueue_map_desc says "virtio: bogus descriptor or
 * out of resources". `idx`, when given, ends the message (the descriptor's index): the text is
 * built only on a failure, not as a template on every descriptor walked (a number-to-string
 * conversion and a concatenation per descriptor, ~1% of the simulation in a perf profile).
 */
export function need(p: Pass, addr: bigint, len: number, access: 'RO' | 'WO', where = 'in descriptor', one?: [Piece], idx = -1): Piece[] | null {
  const { sim, d, r } = p;
  const res = resolve(sim.world, d, addr, len, access, one, sim.xlate);
  if (Array.isArray(res)) return res;
  if (res.err === 'EAGAIN') sim.emit({ kind: 'iotlb.miss', actor: p.actor, cause: p.begin, dev: d.dev, q: r.q, iova: res.addr, perm: access, seq: 0 });
  else if (res.err === 'FAULT') {
    sim.emit({ kind: 'iommu.fault', actor: 'iommu', cause: p.begin, dev: d.dev, iova: res.addr, write: access === 'WO' ? 1 : 0, reason: access === 'WO' ? 5 : 6, seq: 0 });
    vqError(p, `DMA ${access === 'WO' ? 'write' : 'read'} fault at 0x${res.addr.toString(16)}`);
  } else if (where === 'qemu') vqError(p, 'virtio: bogus descriptor or out of resources');
  else vqError(p, `Translation failure ${res.err === 'EPERM' ? -1 : -14} ${where}${idx >= 0 ? ` ${idx}` : ''}`);
  return null;
}

/** vq_err() (QEMU: virtio_error()): the queue stops; so does the pass (always false). */
export function vqError(p: Pass, msg: string): false {
  p.sim.emit({ kind: 'vq.error', actor: p.actor, cause: p.begin, q: p.r.q, msg, seq: 0 });
  return false;
}

/** A 2-byte ring read (avail.idx, avail.ring[i], used_event, flags): the value, or -1 if the pass ended. */
export function ringU16(p: Pass, addr: bigint): number {
  const pieces = need(p, addr, 2, 'RO', undefined, p.one); // used before the next resolve
  if (!pieces) return -1;
  const page = pieces.length === 1 ? pageFor(p.sim.world.mem, pieces[0]!.gpa, 2) : null;
  if (page) {
    const off = pageOff(pieces[0]!.gpa);
    const v = page[off]! | (page[off + 1]! << 8);
    emitAccess(p, pieces[0]!, 2, 'read', 'ring', fnv1aAt(page, off, 2), EMPTY);
    return v;
  }
  const b = readPieces(p, pieces, 2, 'ring');
  return b[0]! | (b[1]! << 8);
}

/** The device writes a 2-byte ring field (used.flags, the packed device event): false if the pass ended. */
export function ringPut16(p: Pass, addr: bigint, v: number): boolean {
  const pieces = need(p, addr, 2, 'WO', undefined, p.one);
  if (!pieces) return false;
  const data = new Uint8Array([v & 0xff, (v >>> 8) & 0xff]);
  let off = 0;
  for (const piece of pieces) {
    emitAccess(p, piece, piece.len, 'write', 'ring', fnv1aAt(data, off, piece.len), data.subarray(off, off + piece.len));
    off += piece.len;
  }
  return true;
}

/** The split descriptor idx at addr, or null if the pass ended. */
export function readDesc(p: Pass, addr: bigint, idx: number): Desc | null {
  const pieces = need(p, addr, 16, 'RO', undefined, p.one);
  if (!pieces) return null;
  const page = pieces.length === 1 ? pageFor(p.sim.world.mem, pieces[0]!.gpa, 16) : null;
  if (page) {
    const off = pageOff(pieces[0]!.gpa);
    const desc = descAt(page, off, idx);
    emitAccess(p, pieces[0]!, 16, 'read', 'ring', fnv1aAt(page, off, 16), EMPTY);
    return desc;
  }
  return descAt(readPieces(p, pieces, 16, 'ring'), 0, idx);
}

/** The packed descriptor at addr, or null if the pass ended. */
export function readPacked(p: Pass, addr: bigint): ReturnType<typeof packedAt> | null {
  const pieces = need(p, addr, 16, 'RO', undefined, p.one);
  if (!pieces) return null;
  return packedAt(readPieces(p, pieces, 16, 'ring'), 0);
}

/** len bytes at addr read by the device (one dev.access per piece). */
export function readPieces(p: Pass, pieces: Piece[], len: number, area: 'ring' | 'table'): Uint8Array {
  const out = new Uint8Array(len);
  let off = 0;
  for (const piece of pieces) {
    readMemInto(p.sim.world.mem, piece.gpa, piece.len, out, off);
    emitAccess(p, piece, piece.len, 'read', area, fnv1aAt(out, off, piece.len), EMPTY);
    off += piece.len;
  }
  return out;
}

/** The bytes behind pieces, copied without an access event (the caller emits what it consumed). */
export function peekPieces(p: Pass, pieces: Piece[], len: number): Uint8Array {
  const out = new Uint8Array(len);
  let off = 0;
  for (const piece of pieces) {
    readMemInto(p.sim.world.mem, piece.gpa, piece.len, out, off);
    off += piece.len;
  }
  return out;
}

/** dev.access reads for the first n bytes of pieces (whose bytes are `bytes`). */
export function emitPrefixReads(p: Pass, pieces: Piece[], bytes: Uint8Array, n: number, area: 'ring' | 'table'): void {
  let off = 0;
  for (const piece of pieces) {
    if (off >= n) break;
    const len = Math.min(piece.len, n - off);
    emitAccess(p, len === piece.len ? piece : { ...piece, len }, len, 'read', area, fnv1aAt(bytes, off, len), EMPTY);
    off += len;
  }
}

/** The device reads one piece of a buffer: only its fingerprint is recorded. */
export function readPiece(p: Pass, piece: Piece, area: 'buf'): void {
  const mem = p.sim.world.mem;
  const page = pageFor(mem, piece.gpa, piece.len);
  let sum: number;
  if (page) sum = fnv1aAt(page, pageOff(piece.gpa), piece.len);
  else {
    const bytes = new Uint8Array(piece.len);
    readMemInto(mem, piece.gpa, piece.len, bytes, 0);
    sum = fnv1aAt(bytes, 0, piece.len);
  }
  emitAccess(p, piece, piece.len, 'read', area, sum, EMPTY);
}

export function emitAccess(p: Pass, piece: Piece, len: number, dir: 'read' | 'write', area: 'ring' | 'table' | 'buf', sum: number, data: Uint8Array): void {
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
    seq: 0,
  });
}

const isMetaHit = (r: RingState, entry: number) => entry !== 0 && (r.meta.desc === entry || r.meta.avail === entry || r.meta.used === entry);
