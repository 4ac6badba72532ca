// swiotlb: what bounce buffering can get wrong.
// - swiotlb-leak (CVE-2022-0854): copying back slot bytes this mapping never filled (no map-time
//   copy, the device wrote only part) hands the guest a previous user's data;
// - swiotlb-stale-read: the CPU reads a FROM_DEVICE buffer whose bounce slot the device wrote, before
//   dma_sync_single_for_cpu or the unmap copied it back;
// - swiotlb-offset-lost (S2, 1f221a0d0dbf): the bounce address drops the buffer's low bits under the
//   device's min_align_mask;
// - swiotlb-overflow (S3, daf9514fd5eb): an unmap/sync copy larger than the slot's alloc_size.
import type { EventOf, NewEvent } from '../events/schema.js';
import { mappingAt, mappingOfOrig, slotAddr } from '../model/swiotlb.js';
import type { World } from '../model/world.js';
import { finding, hex, NONE } from './finding.js';

export function checkBounce(w: World, ev: EventOf<'swiotlb.bounce'>): NewEvent[] {
  const hit = mappingAt(w.swiotlb, ev.tlb);
  if (!hit) return [];
  const [index, m] = hit;
  const out: NewEvent[] = [];
  const start = Number(ev.tlb - slotAddr(index));
  if (start - m.offset + ev.size > m.size)
    out.push(finding(ev.seq, 'swiotlb-overflow', `swiotlb ${ev.trigger} copies ${ev.size} B at ${hex(ev.tlb)} but the slot was allocated for ${m.size} B (orig ${hex(m.orig)}): ${start - m.offset + ev.size - m.size} B beyond it`, [ev.seq], ev.tlb, m.orig));
  if (!ev.toTlb) {
    const n = Math.min(ev.size, m.init.length - start);
    let stale = 0;
    for (let i = 0; i < n; i++) if (!m.init[start + i]) stale++;
    if (stale)
      out.push(finding(ev.seq, 'swiotlb-leak', `swiotlb ${ev.trigger} copies ${stale} of ${ev.size} B back to ${hex(ev.orig)} that this mapping never filled: a previous user's slot data reaches the guest (CVE-2022-0854)`, [ev.seq], ev.tlb, ev.orig));
  }
  return out;
}

export function checkMap(w: World, ev: EventOf<'dma.map'>): NewEvent[] {
  if (ev.path !== 'swiotlb') return NONE;
  const mask = BigInt(w.variants.minAlignMask);
  if (mask === 0n || (ev.dma & mask) === (ev.phys & mask)) return NONE;
  return [finding(ev.seq, 'swiotlb-offset-lost', `bounce address ${hex(ev.dma)} does not keep the buffer's offset ${hex(ev.phys & mask)} under min_align_mask ${hex(mask)} (orig ${hex(ev.phys)}); the device will use the wrong bytes`, [ev.seq], ev.dma, ev.phys)];
}

export function checkCpuRead(w: World, ev: EventOf<'cpu.read'>): NewEvent[] {
  const hit = mappingOfOrig(w.swiotlb, ev.dev, ev.gpa, ev.len);
  if (!hit || !hit[1].dirty) return [];
  const m = hit[1];
  return [finding(ev.seq, 'swiotlb-stale-read', `CPU read ${ev.len} B at ${hex(ev.gpa)} while the device's data is still in the bounce slot at ${hex(slotAddr(hit[0]) + BigInt(m.offset))} (no sync for cpu or unmap yet): the guest sees stale bytes`, [ev.seq], 0n, ev.gpa)];
}
