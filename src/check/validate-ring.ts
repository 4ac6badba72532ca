// The model validates the ring results a trace records:
// - ring-size-invalid: vhost_vring_set_num (VHOST_SET_VRING_NUM) refuses a size that is 0, above
//   0xffff or not a power of two (-EINVAL), so the largest split ring is 32768, as the virtio spec
//   says ("Queue Size ... a power of 2 ... maximum 32768"); QEMU's vhost_dev_start fails and the device
//   never starts the queue. A packed ring needs no power of two, only 1..32768 (virtio 1.1 §2.7).
// - ring-id-out-of-range / ring-used-not-head at the used entry itself: the device may only return
//   the head of a chain it took from the avail ring and has not returned yet (vhost_add_used writes
//   whatever head it is given; the driver's BAD_RING checks in virtqueue_get_buf_ctx_split/_packed,
//   "id %u out of range" and "id %u is not a head!", mark the queue broken when it reaps it).
// - a reap (vring.getbuf) of an id that no used entry returned and that is not outstanding: the
//   driver would have hit the same BAD_RING instead of reaping it.
import type { EventOf, NewEvent } from '../events/schema.js';
import { readMem } from '../model/memory.js';
import type { RingState, World } from '../model/world.js';
import { finding, NONE } from './finding.js';

const MAX_QUEUE = 32768;

export function validateSetup(_w: World, ev: EventOf<'vring.setup'>): NewEvent[] {
  const n = ev.num;
  const bad = ev.packed ? n === 0 || n > MAX_QUEUE : n === 0 || n > 0xffff || (n & (n - 1)) !== 0;
  if (!bad) return NONE;
  const rule = ev.packed
    ? 'a packed virtqueue holds 1 to 32768 descriptors (virtio 1.1)'
    : 'VHOST_SET_VRING_NUM (vhost_vring_set_num) refuses a size that is 0, above 0xffff or not a power of two with -EINVAL, so at most 32768';
  return [finding(ev.seq, 'ring-size-invalid', `vq ${ev.q} of device 0x${ev.dev.toString(16)} set up with ${n} descriptors: ${rule}; vhost_dev_start fails and the device never starts the queue`, [ev.seq])];
}

function outstanding(r: RingState): string {
  const heads = [...r.extra.keys()];
  return heads.length ? `outstanding heads: ${heads.slice(0, 8).join(', ')}${heads.length > 8 ? ', …' : ''}` : 'no chain is outstanding';
}

/** Pre-check of a vring.used: the id must be an outstanding head (the world before it is applied). */
export function validateUsed(w: World, ev: EventOf<'vring.used'>): NewEvent[] {
  const r = w.rings[ev.q];
  // a trace without the driver side of this queue (no chain ever posted) says nothing about which heads are outstanding
  if (!r || (r.availIdx === 0 && r.extra.size === 0)) return NONE;
  if (ev.id >= r.num)
    return [finding(ev.seq, 'ring-id-out-of-range', `vq ${ev.q}: the device returned used id ${ev.id} (slot ${ev.slot}), but the queue has ${r.num} descriptors; the driver's virtqueue_get_buf hits BAD_RING "id ${ev.id} out of range" and marks the queue broken`, [ev.seq])];
  const posted = r.extra.get(ev.id);
  if (!posted)
    return [finding(ev.seq, 'ring-used-not-head', `vq ${ev.q}: the device returned used id ${ev.id} (slot ${ev.slot}), which is not the head of an outstanding chain (${outstanding(r)}); the driver's virtqueue_get_buf hits BAD_RING "id ${ev.id} is not a head!"`, [ev.seq])];
  return NONE;
}

/** The id the driver finds in the used ring where it reaps next (split: used.ring[last_used % num]; packed: the descriptor's id). */
function usedIdAt(w: World, r: RingState): number {
  if (r.packed) {
    const b = readMem(w.mem, r.descGpa + BigInt(16 * r.lastUsed) + 12n, 2);
    return b[0]! | (b[1]! << 8);
  }
  const b = readMem(w.mem, r.usedGpa + BigInt(4 + 8 * (r.lastUsed % r.num)), 4);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 0x1000000;
}

/** Pre-check of a vring.getbuf of an id that is not outstanding, unless the used entry it came from was already judged. */
export function validateGetbuf(w: World, ev: EventOf<'vring.getbuf'>): NewEvent[] {
  const r = w.rings[ev.q];
  if (!r || r.extra.has(ev.id)) return NONE;
  if (usedIdAt(w, r) === ev.id) return NONE; // a used entry returned it: judged there (validateUsed)
  const cls = ev.id >= r.num ? 'ring-id-out-of-range' : 'ring-used-not-head';
  const msg = ev.id >= r.num ? `id ${ev.id} out of range` : `id ${ev.id} is not a head!`;
  return [finding(ev.seq, cls, `vq ${ev.q}: the driver reaped id ${ev.id}, which no used entry returned and which is not outstanding (${outstanding(r)}); virtqueue_get_buf would have hit BAD_RING "${msg}" instead`, [ev.seq])];
}
