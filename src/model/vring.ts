// Split virtqueue layout (include/uapi/linux/virtio_ring.h): 16-byte descriptors, avail
// {flags, idx, ring[num], used_event}, used {flags, idx, ring[num] of {id, len}, avail_event}.
// The ring lives in guest memory; these helpers give byte offsets and encode the guest-visible
// structures so that a vring.post really writes the descriptors where a device will read them.
import type { Desc } from '../events/schema.js';
import { type Pages, readU16 } from './memory.js';

export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_DESC_F_INDIRECT = 4;
/** avail.flags: the driver does not want an interrupt (honoured when EVENT_IDX is off) */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
/** used.flags: the device does not want a kick (set by vhost_disable_notify when EVENT_IDX is off) */
export const VRING_USED_F_NO_NOTIFY = 1;

export const descBytes = (num: number) => 16 * num;
export const availBytes = (num: number) => 4 + 2 * num + 2;
export const usedBytes = (num: number) => 4 + 8 * num + 2;

/** Legacy vring_size(): desc + avail, used aligned to `align`. */
export function vringLayout(num: number, align = 4096) {
  const availOff = descBytes(num);
  const usedOff = Math.ceil((availOff + availBytes(num)) / align) * align;
  return { availOff, usedOff, size: usedOff + usedBytes(num) };
}

// 64-bit fields go through this 8-byte scratch: no DataView (or temporary array) per descriptor.
const SCRATCH = new DataView(new ArrayBuffer(8));
const SCRATCH_BYTES = new Uint8Array(SCRATCH.buffer);

function getU64(b: Uint8Array, off: number): bigint {
  for (let i = 0; i < 8; i++) SCRATCH_BYTES[i] = b[off + i]!;
  return SCRATCH.getBigUint64(0, true);
}

function setU64(b: Uint8Array, off: number, v: bigint): void {
  SCRATCH.setBigUint64(0, v, true);
  for (let i = 0; i < 8; i++) b[off + i] = SCRATCH_BYTES[i]!;
}

const getU16 = (b: Uint8Array, off: number) => b[off]! | (b[off + 1]! << 8);
const getU32 = (b: Uint8Array, off: number) => (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16)) + b[off + 3]! * 0x1000000;
function setU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
function setU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

export function encodeDesc(d: Desc): Uint8Array {
  const b = new Uint8Array(16);
  encodeDescAt(b, 0, d);
  return b;
}

/** Writes the 16-byte split descriptor d at b[off]. */
export function encodeDescAt(b: Uint8Array, off: number, d: Desc): void {
  setU64(b, off, d.addr);
  setU32(b, off + 8, d.len);
  setU16(b, off + 12, d.flags);
  setU16(b, off + 14, d.next);
}

export function decodeDesc(b: Uint8Array, idx: number): Desc {
  return descAt(b, 0, idx);
}

/** The split descriptor at b[off] (descriptor index idx). */
export function descAt(b: Uint8Array, off: number, idx: number): Desc {
  return { idx, addr: getU64(b, off), len: getU32(b, off + 8), flags: getU16(b, off + 12), next: getU16(b, off + 14) };
}

// Packed ring (virtio 1.1; include/uapi/linux/virtio_ring.h): one array of 16-byte descriptors
// {addr, len, id, flags}. A descriptor is available when its AVAIL bit equals the driver's wrap
// counter and USED differs; used when AVAIL == USED == the device's wrap counter. The wrap counters
// start at 1 and flip each time the ring index wraps. Event suppression structures follow the ring.
export const VRING_PACKED_DESC_F_AVAIL = 1 << 7;
export const VRING_PACKED_DESC_F_USED = 1 << 15;

export function packedFlags(flags: number, availWrap: number): number {
  return (flags & 0x7f) | (availWrap ? VRING_PACKED_DESC_F_AVAIL : 0) | (availWrap ? 0 : VRING_PACKED_DESC_F_USED);
}

export function usedFlags(wrap: number): number {
  return wrap ? VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED : 0;
}

export function encodePacked(addr: bigint, len: number, id: number, flags: number): Uint8Array {
  const b = new Uint8Array(16);
  setU64(b, 0, addr);
  setU32(b, 8, len);
  setU16(b, 12, id);
  setU16(b, 14, flags);
  return b;
}

export function decodePacked(b: Uint8Array): { addr: bigint; len: number; id: number; flags: number } {
  return packedAt(b, 0);
}

/** The packed descriptor at b[off]. */
export function packedAt(b: Uint8Array, off: number): { addr: bigint; len: number; id: number; flags: number } {
  return { addr: getU64(b, off), len: getU32(b, off + 8), id: getU16(b, off + 12), flags: getU16(b, off + 14) };
}

/** The descriptor ring, then the driver event structure {off_wrap, flags} and the device event structure. */
export const packedRingBytes = (num: number) => 16 * num + 8;
/** Offsets of the two event suppression structures in the packed ring area (this model's layout). */
export const packedDriverEventOff = (num: number) => 16 * num;
export const packedDeviceEventOff = (num: number) => 16 * num + 4;

// struct pvirtq_event_suppress flags (virtio 1.1 2.8.10; include/uapi/linux/virtio_ring.h)
export const RING_EVENT_FLAGS_ENABLE = 0;
export const RING_EVENT_FLAGS_DISABLE = 1;
export const RING_EVENT_FLAGS_DESC = 2;

/**
 * QEMU vring_packed_need_event: off_wrap holds a ring position (bits 0..14) and the wrap counter it
 * refers to (bit 15); a position of the other lap is taken num slots back.
 */
export function packedNeedEvent(num: number, wrap: number, offWrap: number, newIdx: number, old: number): boolean {
  let off = offWrap & 0x7fff;
  if (wrap !== offWrap >> 15) off -= num;
  return needEvent(off & 0xffff, newIdx, old);
}

/** vring_need_event: should the other side be notified, given its event index? */
export function needEvent(eventIdx: number, newIdx: number, old: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - old) & 0xffff);
}

/**
 * Work left for the device after a pass, read where the device reads it: split, avail.idx in guest
 * memory differs from last_avail_idx (vhost_enable_notify re-reads it: vhost_get_avail_idx); packed,
 * the descriptor at the device's position is available for its wrap counter. Read from memory, not
 * from the driver's shadow, so a ring laid out by hand (a scenario, an import) behaves the same.
 */
export function availPending(mem: Pages, r: { packed: boolean; availGpa: bigint; descGpa: bigint; lastAvail: number; usedWrap: number }): boolean {
  if (!r.packed) return readU16(mem, r.availGpa + 2n) !== r.lastAvail;
  const flags = readU16(mem, r.descGpa + BigInt(16 * r.lastAvail) + 14n);
  return (flags & VRING_PACKED_DESC_F_AVAIL ? 1 : 0) === r.usedWrap && (flags & VRING_PACKED_DESC_F_USED ? 1 : 0) !== r.usedWrap;
}

/**
 * A size the back-end accepts: VHOST_SET_VRING_NUM (vhost_vring_set_num) refuses a split ring of 0
 * descriptors, more than 0xffff or not a power of two (-EINVAL; so at most 32768), and the device
 * never starts that queue; a packed ring holds 1..32768 (virtio 1.1). QEMU's own device model
 * (virtio_queue_set_num) checks only the maximum.
 */
export function ringSizeOk(num: number, packed: boolean, rules: 'vhost' | 'qemu'): boolean {
  if (num === 0 || num > 32768) return false;
  return packed || rules === 'qemu' || (num & (num - 1)) === 0;
}
