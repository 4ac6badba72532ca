// How a device turns a dma address into memory, by what it does with desc.addr:
// - gpa: vhost's memory table (no IOMMU in the path: desc.addr is a GPA);
// - iova through kernel vhost: the device IOTLB (a hole is a MISS, a permission mismatch EPERM);
// - iova in QEMU itself: the vIOMMU's page tables directly (address_space_rw through the IOMMU MR);
// - shadow: a vfio device's host IOMMU, programmed from MAP/UNMAP notifications.
// One request may resolve to several pieces, like translate_desc's iovecs.
//
// Every device access resolves here, so the success path allocates only the pieces and their array
// (a failure, rare, gets its own object).
import { type IotlbEntry, lookup } from '../model/device-iotlb.js';
import { guestTranslate } from '../model/virtio-iommu.js';
import { hvaOf, hvaToGpa, type Region } from '../model/memtable.js';
import { PAGE_MASK, pageOff, pfnOf, toNum } from '../model/memory.js';
import { permBits } from '../model/types.js';
import type { DeviceState, World } from '../model/world.js';
import type { VIA } from '../events/schema.js';

export interface Piece {
  dma: bigint;
  len: number;
  gpa: bigint;
  hva: bigint;
  via: (typeof VIA)[number];
  /** seq of the UPDATE (or IOMMU map / shadow MAP) whose translation resolved it; 0 on the GPA path */
  entry: number;
}

export interface Failure {
  err: 'EAGAIN' | 'EPERM' | 'EFAULT' | 'FAULT';
  addr: bigint;
}

/** The pieces of [addr, addr+len), or why it cannot be accessed (tell them apart with Array.isArray). */
export type Resolution = Piece[] | Failure;

const fail = (err: Failure['err'], addr: bigint): Failure => ({ err, addr });
/** 2^53: below it a nonnegative integer is exact as a double */
const EXACT = 2 ** 53;
/** kernel vhost (vhost, vhost-vdpa, ...): the common exact name first, no substring test */
const isVhost = (backend: string) => backend === 'vhost' || backend.startsWith('vhost');

/**
 * The device-IOTLB path's translation of one entry, kept by the simulation between accesses (most
 * hit the few entries of the ring pages): for every address a of entry `e`, hva = a + hvaK and
 * gpa = a + gpaK, when the entry's whole HVA range lies in one memory region that no earlier region
 * overlaps (hvaToGpa then picks that region for each of them). Derived, never state: valid while
 * the entry and the memory table are the same ones (entries are never changed; the table only
 * grows, so its length tells).
 */
export class EntryXlate {
  e: IotlbEntry | null = null;
  regions: readonly Region[] | null = null;
  n = 0;
  /** false: the entry spans regions (or none); take the general path */
  ok = false;
  hvaK = 0n;
  gpaK = 0n;
}

export function entryXlate(x: EntryXlate, e: IotlbEntry, regions: readonly Region[]): EntryXlate {
  if (x.e === e && x.regions === regions && x.n === regions.length) return x;
  x.e = e;
  x.regions = regions;
  x.n = regions.length;
  x.ok = false;
  const first = e.uaddr;
  const last = e.uaddr + (e.last - e.start);
  for (let i = 0; i < regions.length; i++) {
    const r = regions[i]!;
    const end = r.hva + r.size; // exclusive
    if (first >= r.hva && first < end) {
      if (last < end) {
        x.ok = true;
        x.hvaK = e.uaddr - e.start;
        x.gpaK = r.gpa - r.hva + x.hvaK;
      }
      return x;
    }
    if (r.hva <= last && first < end) return x; // an earlier region holds part of the range
  }
  return x;
}

/**
 * `one`: a caller that uses the pieces before it resolves anything else (a ring read) passes a
 * one-piece array it owns; the first piece is written into one[0], and a one-piece answer is `one`
 * itself, so the common access allocates no piece and no array. `x`: the caller's EntryXlate (the
 * simulation's), for the device-IOTLB path.
 */
export function resolve(w: World, d: DeviceState, addr: bigint, len: number, access: 'RO' | 'WO', one?: [Piece], x?: EntryXlate): Resolution {
  if (len === 0) return []; // translate_desc: nothing to translate, no iovec
  let pieces: Piece[] | null = null;
  const mode = d.translate === 'gpa' ? 0 : d.translate === 'iova' && isVhost(d.backend) ? 1 : 2;
  const need = permBits(access);
  let done = 0;
  let a = addr;
  do {
    const want = len - done;
    let n: number;
    let piece: Piece;
    if (mode === 0) {
      // gpaToHva, without its result object
      let hva: bigint | null = null;
      let left = 0n;
      const regions = w.memTable;
      for (let i = 0; i < regions.length; i++) {
        const r = regions[i]!;
        if (a < r.gpa) continue;
        const off = a - r.gpa;
        if (off < r.size) {
          hva = r.hva + off;
          left = r.size - off;
          break;
        }
      }
      if (hva === null) return fail('EFAULT', a);
      n = left < BigInt(want) ? toNum(left) : want;
      piece = at(one, done, a, n, a, hva, 'gpa', 0);
    } else if (mode === 1) {
      // translate_desc through the device IOTLB: the entry covering a, and how much of the rest it covers
      const e = lookup(d.iotlb, a);
      if (!e) return fail('EAGAIN', a);
      if (!(permBits(e.perm) & need)) return fail('EPERM', a);
      // min(last - a + 1, want), in numbers once the bigint difference is known to be small
      // (converting the room costs less than BigInt(want - 1), which allocates its bigint in the
      // runtime here: perf showed Runtime_ToBigIntConvertNumber from resolve)
      // (in doubles when a and the entry's last are below 2^53: exact there, see lookup)
      const an = toNum(a);
      if (an < EXACT && e.lastNum < EXACT) {
        const room = e.lastNum - an;
        n = room >= 0xffff_ffff ? want : Math.min(room + 1, want);
      } else {
        const room = e.last - a;
        n = room >= 0xffff_ffffn ? want : Math.min(toNum(room) + 1, want);
      }
      const c = x && entryXlate(x, e, w.memTable);
      if (c && c.ok) piece = at(one, done, a, n, a + c.gpaK, a + c.hvaK, 'iotlb', e.seq);
      else {
        const hva = e.uaddr + (a - e.start);
        const gpa = hvaToGpa(w.memTable, hva);
        if (gpa === null) return fail('EFAULT', a);
        piece = at(one, done, a, n, gpa, hva, 'iotlb', e.seq);
      }
    } else {
      let gpa: bigint;
      let seq: number;
      let mapLeft = 4096; // a virtio-iommu mapping may end inside the page
      if (d.translate === 'shadow') {
        const s = d.shadow.get(pfnOf(a));
        if (!s) return fail('FAULT', a); // shadow entries are RW
        gpa = s.gpa | (a & PAGE_MASK);
        seq = s.seq;
      } else {
        // the vIOMMU's page tables, or the device's virtio-iommu domain
        const t = guestTranslate(w, d, a);
        if (!t || t.perm === 'NONE' || !(permBits(t.perm) & need)) return fail('FAULT', a);
        gpa = t.gpa;
        seq = t.seq;
        if (t.left !== undefined && t.left < BigInt(want)) mapLeft = Number(t.left);
      }
      const hva = hvaOf(w.memTable, gpa);
      if (hva === null) return fail('EFAULT', a);
      const inPage = Math.min(4096 - pageOff(a), mapLeft);
      n = inPage < want ? inPage : want;
      piece = at(one, done, a, n, gpa, hva, d.translate === 'shadow' ? 'shadow' : 'iommu', seq);
    }
    done += n;
    // most accesses are one piece: that array is allocated at its size
    if (done === len) {
      if (!pieces) return one ?? [piece];
      pieces.push(piece);
      return pieces;
    }
    (pieces ??= []).push(piece);
    a += BigInt(n);
  } while (done < len);
  return pieces!;
}

/** The piece at offset `done` of a resolution: the caller's own first piece, or a new one. */
function at(one: [Piece] | undefined, done: number, dma: bigint, len: number, gpa: bigint, hva: bigint, via: Piece['via'], entry: number): Piece {
  if (!one || done !== 0) return { dma, len, gpa, hva, via, entry };
  const p = one[0];
  p.dma = dma;
  p.len = len;
  p.gpa = gpa;
  p.hva = hva;
  p.via = via;
  p.entry = entry;
  return p;
}
