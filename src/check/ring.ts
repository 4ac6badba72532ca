// Ring sanity and device-side errors: vq_err() messages from vhost and BAD_RING() from the guest
// become findings by what they mean; dirty logging must not produce more log entries than writable
// iovecs (CVE-2019-14835); a zero-length descriptor is flagged where the driver posts it.
import type { EventOf, NewEvent } from '../events/schema.js';
import { VRING_DESC_F_WRITE } from '../model/vring.js';
import type { World } from '../model/world.js';
import { finding, NONE } from './finding.js';

const CLASSES: [RegExp, string][] = [
  [/out of range/, 'ring-id-out-of-range'],
  [/is not a head/, 'ring-used-not-head'],
  [/zero-size IOTLB entry/, 'vhost-hang'],
  [/DMA (read|write) fault/, 'device-dma-fault'],
];

export function checkVqError(_w: World, ev: EventOf<'vq.error'>): NewEvent[] {
  const cls = CLASSES.find(([re]) => re.test(ev.msg))?.[1] ?? 'ring-error';
  return [finding(ev.seq, cls, `vq ${ev.q} stopped: ${ev.msg}`, [ev.cause, ev.seq])];
}

export function checkLog(_w: World, ev: EventOf<'vq.log'>): NewEvent[] {
  if (ev.logNum <= ev.inNum) return NONE;
  return [finding(ev.seq, 'log-overflow', `vq ${ev.q}: dirty log has ${ev.logNum} entries for ${ev.inNum} writable iovecs: zero-length descriptors overflow the log array (CVE-2019-14835)`, [ev.seq])];
}

export function checkPost(_w: World, ev: EventOf<'vring.post'>): NewEvent[] {
  if (!ev.chain.some((d) => d.len === 0)) return NONE; // every chain is posted: no list built for a good one
  const zero = ev.chain.filter((d) => d.len === 0);
  return [finding(ev.seq, 'ring-zero-len-desc', `vq ${ev.q}: chain ${ev.head} has ${zero.length} zero-length ${zero.some((d) => d.flags & VRING_DESC_F_WRITE) ? 'device-writable ' : ''}descriptor(s)`, [ev.seq])];
}
