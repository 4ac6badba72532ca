// Rules for vhost's device IOTLB (drivers/vhost/vhost.c, iotlb.c; see ../device-iotlb.ts): a MISS
// parks the vq, an UPDATE inserts an entry and wakes the misses it covers, an INVALIDATE deletes
// every overlapping entry; both reset the ring metadata cache.
import { addRange, delRange, iotlbEntry, QUEUE_UNKNOWN, wakeCovered } from '../device-iotlb.js';
import { removeAt } from '../list.js';
import { deviceOf, ringOf } from '../world.js';
import { resetMeta } from './ring.js';
import type { RulesFor } from './rule.js';
import { markRead } from './vmm.js';

const U64 = (1n << 64n) - 1n;

/** The last byte of [iova, iova + size) mod 2^64 (vhost's u64 arithmetic); the AND, a bigint op that allocates, only when it wraps. */
export function lastOf(iova: bigint, size: bigint): bigint {
  const end = iova + size - 1n;
  return end >= 0n && end <= U64 ? end : end & U64;
}

export const IOTLB_RULES: RulesFor<'iotlb.miss' | 'iotlb.update' | 'iotlb.invalidate' | 'iotlb.batch'> = {
  'iotlb.miss': {
    models: 'vhost_iotlb_miss: VHOST_IOTLB_MISS queued for the VMM, the vq parked on the pending list',
    evolve(w, ev) {
      deviceOf(w, ev.dev, ev.seq).iotlb.pending.push({ q: ev.q, iova: ev.iova, perm: ev.perm, seq: ev.seq });
      w.vmm.toRead.push(ev.seq);
      // an imported miss names no vq (QUEUE_UNKNOWN): there is no ring to park
      if (ev.q !== QUEUE_UNKNOWN) ringOf(w, ev.q, ev.seq).parked = true;
    },
  },
  'iotlb.update': {
    models: 'vhost_process_iotlb_msg VHOST_IOTLB_UPDATE: vhost_iotlb_add_range, vhost_vq_meta_reset, vhost_iotlb_notify_vq',
    evolve(w, ev) {
      markRead(w, ev.cause);
      const held = w.vmm.held.length ? w.vmm.held.findIndex((h) => h.miss === ev.cause) : -1;
      if (held >= 0) removeAt(w.vmm.held, held);
      if (ev.result !== 'ok') return;
      const d = deviceOf(w, ev.dev, ev.seq);
      resetMeta(w, ev.dev);
      addRange(d.iotlb, iotlbEntry(ev.iova, lastOf(ev.iova, ev.size), ev.uaddr, ev.perm, ev.seq));
      // vhost_iotlb_notify_vq: wake each pending miss the entry covers ('gt': the off-by-one before the fix, B2)
      if (!d.iotlb.pending.length) return;
      const last = w.variants.wakeRule === 'gt' ? ev.iova + ev.size - 2n : ev.iova + ev.size - 1n;
      for (const m of wakeCovered(d.iotlb, ev.iova, last - ev.iova + 1n))
        if (m.q !== QUEUE_UNKNOWN && !d.iotlb.pending.some((p) => p.q === m.q)) ringOf(w, m.q, ev.seq).parked = false;
    },
  },
  'iotlb.invalidate': {
    models: 'vhost_process_iotlb_msg VHOST_IOTLB_INVALIDATE: vhost_iotlb_del_range (whole entries), vhost_vq_meta_reset',
    evolve(w, ev) {
      // (a loop, not findIndex with a closure: every strict unmap's INVALIDATE comes here)
      const invals = w.vmm.invals;
      for (let i = 0; i < invals.length; i++)
        if (invals[i]!.req === ev.cause) {
          removeAt(invals, i);
          break;
        }
      if (ev.result !== 'ok') return;
      resetMeta(w, ev.dev);
      delRange(deviceOf(w, ev.dev, ev.seq).iotlb, ev.iova, lastOf(ev.iova, ev.size), ev.seq);
    },
  },
  'iotlb.batch': {
    models: 'VHOST_IOTLB_BATCH_BEGIN / BATCH_END (vhost_vdpa_process_iotlb_msg)',
    evolve(w, ev) {
      if (ev.result === 'ok') deviceOf(w, ev.dev, ev.seq).inBatch = !!ev.begin;
    },
  },
};
