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
