// The virtqueue life cycle on the device side: the base index, enable, reset. vhost keeps
// last_avail_idx in the vq; the VMM sets it with VHOST_SET_VRING_BASE before starting the queue
// (and a live-migration destination restores the source's value this way), reads it back with
// VHOST_GET_VRING_BASE, and attaches a backend to start processing.
//
// - VHOST_SET_VRING_BASE (drivers/vhost/vhost.c vhost_vring_ioctl): refused with -EBUSY while a
//   backend is attached (vq->private_data: "Moving base with an active backend? You don't want to do
//   that."); split rings: num > 0xffff → -EINVAL, else last_avail_idx = num; packed rings:
//   last_avail_idx = num & 0xffff (its bit 15 the avail wrap counter), last_used_idx = num >> 16.
//   vhost_vq_init_access then reads last_used_idx of a split ring from used->idx in guest memory.
// - enable: the backend attached / queue_enable / VHOST_SET_VRING_ENABLE: the device processes a
//   queue only while enabled (a ring set up without any life-cycle event is enabled, as before).
// - reset (VIRTIO_F_RING_RESET queue_reset; QEMU virtio_queue_reset, __virtio_queue_reset): the
//   device forgets the queue: indices and wrap counters back to their start, not enabled, a stopped
//   queue (vq_err) runs again, cached ring translations dropped.
import type { EventOf } from '../events/schema.js';
import { readU16, type Pages } from './memory.js';
import type { RingState, World } from './world.js';

export type BaseResult = 'ok' | 'EINVAL' | 'EBUSY';

/** The device processes the queue (enabled is null until a life-cycle event: enabled). */
export const queueEnabled = (r: RingState) => r.enabled !== false;

/** What VHOST_SET_VRING_BASE answers for `num` on ring r. */
export function setBaseResult(r: RingState, num: number): BaseResult {
  if (queueEnabled(r)) return 'EBUSY';
  if (!r.packed && num > 0xffff) return 'EINVAL';
  return 'ok';
}

export function applyBase(mem: Pages, r: RingState, num: number): void {
  if (r.packed) {
    r.lastAvail = num & 0x7fff;
    r.usedWrap = (num >>> 15) & 1; // the device's avail wrap counter (it consumes in the driver's lap)
    r.usedIdx = (num >>> 16) & 0x7fff;
  } else {
    r.lastAvail = num & 0xffff;
    r.usedIdx = readU16(mem, r.usedGpa + 2n); // vhost_vq_init_access: last_used_idx = used->idx
  }
}

/** A kick that came while disabled stays pending (the kick eventfd keeps it) and is served once enabled. */
export function applyEnable(r: RingState, enable: boolean): void {
  r.enabled = enable;
}

export function applyReset(r: RingState): void {
  r.lastAvail = 0;
  r.usedIdx = 0;
  r.usedWrap = 1;
  r.served = 0;
  r.kicked = false;
  r.parked = false;
  r.broken = false;
  r.enabled = false;
  r.meta = { desc: 0, avail: 0, used: 0 };
}

// ---- world rules ------------------------------------------------------------------------------------

export function ruleVqBase(w: World, ev: EventOf<'vq.base'>): void {
  const r = w.rings[ev.q];
  if (r && ev.result === 'ok') applyBase(w.mem, r, ev.num);
}

export function ruleVqEnable(w: World, ev: EventOf<'vq.enable'>): void {
  const r = w.rings[ev.q];
  if (r) applyEnable(r, !!ev.enable);
}

export function ruleVqReset(w: World, ev: EventOf<'vq.reset'>): void {
  const r = w.rings[ev.q];
  if (r) applyReset(r);
}
