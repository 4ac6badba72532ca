// Split virtqueue layout (include/uapi/linux/virtio_ring.h): 16-byte descriptors, avail
// {flags, idx, ring[num], used_event}, used {flags, idx, ring[num] of {id, len}, avail_event}.
// The ring lives in guest memory; these helpers give byte offsets and encode the guest-visible
// structures so that a vring.post really writes the descriptors where a device will read them.
import { le16, le32, le64 } from './memory.js';
import type { Desc } from '../events/schema.js';

export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_DESC_F_INDIRECT = 4;

export const descBytes = (num: number) => 16 * num;
export const availBytes = (num: number) => 4 + 2 * num + 2;
export const usedBytes = (num: number) => 4 + 8 * num + 2;

/** Legacy vring_size(): desc + avail, used aligned to `align`. */
export function vringLayout(num: number, align = 4096) {
  const availOff = descBytes(num);
  const usedOff = Math.ceil((availOff + availBytes(num)) / align) * align;
  return { availOff, usedOff, size: usedOff + usedBytes(num) };
}

export function encodeDesc(d: Desc): Uint8Array {
  const b = new Uint8Array(16);
  b.set(le64(d.addr), 0);
  b.set(le32(d.len), 8);
  b.set(le16(d.flags), 12);
  b.set(le16(d.next), 14);
  return b;
}

export function decodeDesc(b: Uint8Array, idx: number): Desc {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { idx, addr: v.getBigUint64(0, true), len: v.getUint32(8, true), flags: v.getUint16(12, true), next: v.getUint16(14, true) };
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
  const v = new DataView(b.buffer);
  v.setBigUint64(0, addr, true);
  v.setUint32(8, len, true);
  v.setUint16(12, id, true);
  v.setUint16(14, flags, true);
  return b;
}

export function decodePacked(b: Uint8Array): { addr: bigint; len: number; id: number; flags: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { addr: v.getBigUint64(0, true), len: v.getUint32(8, true), id: v.getUint16(12, true), flags: v.getUint16(14, true) };
}

export const packedRingBytes = (num: number) => 16 * num + 8;

/** vring_need_event: should the other side be notified, given its event index? */
export function needEvent(eventIdx: number, newIdx: number, old: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - old) & 0xffff);
}
