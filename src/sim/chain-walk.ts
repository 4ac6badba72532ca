// Walking one available chain, as the device back-end does, into the buffers it will use: each
// descriptor translated as it is reached (a hole ends the pass with a MISS), the order of readable
// and writable buffers checked, loops bounded. Where vhost and QEMU differ, both are modelled
// (variant backend=vhost|qemu); every error is the back-end's own message.
//
// vhost (drivers/vhost/vhost.c vhost_get_vq_desc + get_indirect, as vringh.c __vringh_iov):
// - an INDIRECT descriptor may sit anywhere in a chain; its table is walked and then the chain goes on
//   with the INDIRECT descriptor's own NEXT ("weird (but legal!)" in tools/virtio/vringh_test.c);
// - the table is read in order (copy_from_iter_full), the walk stops at the first entry without
//   NEXT; the entries' next fields are only used in messages;
// - len % 16 → "Invalid length in indirect descriptor", more than 65536 entries → "Indirect buffer
//   length too big", more entries read than the table holds (len 0 included) → "Loop detected";
// - out after in counts iovecs: a zero-length writable buffer produces none, so it does not count.
//
// QEMU (hw/virtio/virtio.c virtqueue_split_pop, virtqueue_split_read_next_desc, virtqueue_map_desc):
// - only the head may be INDIRECT (the flag elsewhere is not looked at); len 0 or not a multiple of
//   16 → "Invalid size for indirect buffer table";
// - the table is walked by its next fields, bounded by its size ("Desc next is %u", "Looped
//   descriptor"); zero-sized buffers are refused.
//
// Packed rings (QEMU virtqueue_packed_pop; kernel vhost has no packed ring): descriptors in ring
// order while NEXT; an INDIRECT head's table (packed-format entries) is read whole, in order.
import type { Desc } from '../events/schema.js';
import { descAt, packedAt, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE } from '../model/vring.js';
import type { DeviceState, World } from '../model/world.js';
import { emitPrefixReads, need, type Pass, peekPieces, readDesc, readPacked, vqError } from './device-io.js';
import type { Piece } from './translate.js';
import { fromNum } from '../model/memory.js';

export interface Walked {
  /** the buffers, in chain order (table entries in place of their INDIRECT descriptor) */
  descs: Desc[];
  /** each buffer's translation */
  pieces: Piece[][];
  /** the id published in the used ring: the split head, or the packed buffer id */
  id: number;
  /** packed: ring slots the chain occupies */
  ringEntries: number;
}

/** USHRT_MAX + 1: "Buffers are chained via a 16 bit next field, so we can have at most 2^16 of these." */
const MAX_INDIRECT = 0x10000;

export type RingRules = 'vhost' | 'qemu';

export function ringRules(w: World, d: DeviceState): RingRules {
  return w.variants.backend === 'qemu' || d.backend === 'qemu' ? 'qemu' : 'vhost';
}

export function walkChain(p: Pass, head: number): Walked | null {
  if (p.r.packed) return walkPacked(p, head);
  return ringRules(p.sim.world, p.d) === 'qemu' ? walkSplitQemu(p, head) : walkSplitVhost(p, head);
}

interface Acc {
  descs: Desc[];
  pieces: Piece[][];
  /** iovecs of writable buffers so far (vhost's *in_num) */
  inNum: number;
}

/** vhost_get_vq_desc. */
function walkSplitVhost(p: Pass, head: number): Walked | null {
  const { r } = p;
  const acc: Acc = { descs: [], pieces: [], inNum: 0 };
  let i = head;
  for (let found = 0; ; ) {
    if (i >= r.num) return vqError(p, `Desc index is ${i} > ${r.num}, head = ${head}`), null;
    if (++found > r.num) return vqError(p, `Loop detected: last one at ${i} vq size ${r.num} head ${head}`), null;
    const desc = readDesc(p, r.desc + fromNum(16 * i), i);
    if (!desc) return null;
    if (desc.flags & VRING_DESC_F_INDIRECT) {
      // get_indirect; on failure vhost_get_vq_desc adds "Failure detected in indirect descriptor at
      // idx %d": the first message is the cause, it is the one recorded
      if (!getIndirect(p, desc, acc)) return null;
    } else {
      const write = !!(desc.flags & VRING_DESC_F_WRITE);
      const ps = need(p, desc.addr, desc.len, write ? 'WO' : 'RO', 'descriptor idx', undefined, i);
      if (!ps) return null;
      if (write) acc.inNum += ps.length;
      else if (acc.inNum) return vqError(p, `Descriptor has out after in: idx ${i}`), null;
      acc.descs.push(desc);
      acc.pieces.push(ps);
    }
    // next_desc(): the INDIRECT descriptor's own NEXT continues the chain
    if (!(desc.flags & VRING_DESC_F_NEXT)) break;
    i = desc.next;
  }
  return { descs: acc.descs, pieces: acc.pieces, id: head, ringEntries: 1 };
}

/**
 * get_indirect: false if the pass ended. vhost reads an entry, checks it, translates its buffer, then
 * reads the next; within a pass memory does not change, so the entries are parsed first (up to the
 * first without NEXT, or the first that is an error by itself), the bytes consumed are recorded as
 * one table read, and the buffers are translated in order: the first failure in vhost's order wins.
 */
function getIndirect(p: Pass, ind: Desc, acc: Acc): boolean {
  const len = ind.len;
  if (len % 16) return vqError(p, `Invalid length in indirect descriptor: len 0x${len.toString(16)} not multiple of 0x10`);
  const tablePieces = need(p, ind.addr, len, 'RO', 'in indirect.');
  if (!tablePieces) return false;
  const count = len / 16;
  // printed with %d from the u32 indirect->len
  if (count > MAX_INDIRECT) return vqError(p, `Indirect buffer length too big: ${len | 0}`);
  const table = peekPieces(p, tablePieces, len);
  const entries: Desc[] = [];
  let stop = '';
  for (let i = 0, found = 0; ; ) {
    if (++found > count) {
      stop = `Loop detected: last one at ${i} indirect size ${count}`;
      break;
    }
    const x = descAt(table, 16 * entries.length, i);
    if (x.flags & VRING_DESC_F_INDIRECT) {
      stop = `Nested indirect descriptor: idx ${i}, ${(ind.addr + BigInt(i * 16)).toString(16)}`;
      entries.push(x); // it was read
      break;
    }
    entries.push(x);
    if (!(x.flags & VRING_DESC_F_NEXT)) break;
    i = x.next; // only its value in messages: the next entry read is the next in the table
  }
  emitPrefixReads(p, tablePieces, table, 16 * entries.length, 'table');
  for (const x of entries) {
    if (x.flags & VRING_DESC_F_INDIRECT) break;
    const write = !!(x.flags & VRING_DESC_F_WRITE);
    const ps = need(p, x.addr, x.len, write ? 'WO' : 'RO', 'indirect idx', undefined, x.idx);
    if (!ps) return false;
    if (write) acc.inNum += ps.length;
    else if (acc.inNum) return vqError(p, `Indirect descriptor has out after in: idx ${x.idx}`);
    acc.descs.push(x);
    acc.pieces.push(ps);
  }
  return stop ? vqError(p, stop) : true;
}

/** virtqueue_split_pop. */
function walkSplitQemu(p: Pass, head: number): Walked | null {
  const { r } = p;
  let desc = readDesc(p, r.desc + fromNum(16 * head), head);
  if (!desc) return null;
  let max = r.num;
  let table: Uint8Array | null = null;
  let tablePieces: Piece[] = [];
  let read = 0;
  if (desc.flags & VRING_DESC_F_INDIRECT) {
    if (!desc.len || desc.len % 16) return vqError(p, 'Invalid size for indirect buffer table'), null;
    const ps = need(p, desc.addr, desc.len, 'RO', 'qemu');
    if (!ps) return null;
    tablePieces = ps;
    table = peekPieces(p, ps, desc.len);
    max = desc.len / 16;
    desc = descAt(table, 0, 0);
    read = 16;
  }
  const tableEnd = () => table && emitPrefixReads(p, tablePieces, table, read, 'table');
  const descs: Desc[] = [];
  const pieces: Piece[][] = [];
  let inNum = 0;
  for (let entries = 0; ; ) {
    const write = !!(desc.flags & VRING_DESC_F_WRITE);
    if (!write && inNum) return tableEnd(), vqError(p, 'Incorrect order for descriptors'), null;
    // virtqueue_map_desc
    if (!desc.len) return tableEnd(), vqError(p, 'virtio: zero sized buffers are not allowed'), null;
    const ps = need(p, desc.addr, desc.len, write ? 'WO' : 'RO', 'qemu');
    if (!ps) return tableEnd(), null;
    if (write) inNum += ps.length;
    descs.push(desc);
    pieces.push(ps);
    if (++entries > max) return tableEnd(), vqError(p, 'Looped descriptor'), null;
    // virtqueue_split_read_next_desc
    if (!(desc.flags & VRING_DESC_F_NEXT)) break;
    const next = desc.next;
    if (next >= max) return tableEnd(), vqError(p, `Desc next is ${next}`), null;
    if (table) {
      desc = descAt(table, 16 * next, next);
      read = Math.max(read, 16 * (next + 1));
    } else {
      const d = readDesc(p, r.desc + fromNum(16 * next), next);
      if (!d) return null;
      desc = d;
    }
  }
  tableEnd();
  return { descs, pieces, id: head, ringEntries: 1 };
}

/** virtqueue_packed_pop: `pos` is the ring position of the chain's first descriptor. */
function walkPacked(p: Pass, pos: number): Walked | null {
  const { r } = p;
  const ring: Desc[] = [];
  let id = 0;
  for (let at = pos, n = 0; ; n++) {
    if (n >= r.num) return vqError(p, 'Looped descriptor'), null;
    const pd = readPacked(p, r.desc + fromNum(16 * at));
    if (!pd) return null;
    id = pd.id;
    ring.push({ idx: at, addr: pd.addr, len: pd.len, flags: pd.flags & 0x7f, next: 0 });
    if (!(pd.flags & VRING_DESC_F_NEXT)) break;
    at = (at + 1) % r.num;
  }
  const descs: Desc[] = [];
  const pieces: Piece[][] = [];
  let inNum = 0;
  for (const x of ring) {
    if (x.flags & VRING_DESC_F_INDIRECT) {
      if (!x.len || x.len % 16) return vqError(p, 'Invalid size for indirect buffer table'), null;
      const tp = need(p, x.addr, x.len, 'RO', 'qemu');
      if (!tp) return null;
      const table = peekPieces(p, tp, x.len);
      emitPrefixReads(p, tp, table, x.len, 'table');
      for (let k = 0; k < x.len / 16; k++) {
        const e = packedAt(table, 16 * k);
        const entry: Desc = { idx: k, addr: e.addr, len: e.len, flags: e.flags & 0x7f, next: 0 };
        if (!pushBuffer(p, entry, descs, pieces, inNum)) return null;
        if (entry.flags & VRING_DESC_F_WRITE) inNum += pieces[pieces.length - 1]!.length;
      }
      continue;
    }
    if (!pushBuffer(p, x, descs, pieces, inNum)) return null;
    if (x.flags & VRING_DESC_F_WRITE) inNum += pieces[pieces.length - 1]!.length;
  }
  return { descs, pieces, id, ringEntries: ring.length };
}

function pushBuffer(p: Pass, x: Desc, descs: Desc[], pieces: Piece[][], inNum: number): boolean {
  const write = !!(x.flags & VRING_DESC_F_WRITE);
  if (!write && inNum) return vqError(p, 'Incorrect order for descriptors');
  const ps = need(p, x.addr, x.len, write ? 'WO' : 'RO', 'descriptor idx', undefined, x.idx);
  if (!ps) return false;
  descs.push(x);
  pieces.push(ps);
  return true;
}
