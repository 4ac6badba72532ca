// What a device touched, judged against what the guest set up:
// - IOTLB coherence: an access resolved through a cached translation (vhost device IOTLB, its meta
//   cache, a vfio shadow) must agree with the guest's IOMMU page tables now. If the IOVA is unmapped
//   (use-after-unmap) or maps another GPA (stale-iotlb: the GPA changed under a constant IOVA), the
//   INVALIDATE that should have removed the entry was late, lost or rejected (dma-domain.md §6 R1, B1b).
// - the access must fall inside a live DMA-API mapping of the device, in the mapping's direction;
// - a protected guest's device may only touch memory the guest shared (bounce pool, coherent rings).
import { bdf } from '../events/format.js';
import type { EventOf, NewEvent } from '../events/schema.js';
import { PAGE_MASK, pfnOfNum, toNum } from '../model/memory.js';
import { inPool } from '../model/swiotlb.js';
import type { DeviceState, World } from '../model/world.js';
import { finding, hex, NONE } from './finding.js';
import { liveEntries } from '../model/dma-live.js';
import { endpointTranslate, type EndpointTranslation } from '../model/virtio-iommu.js';

/** Every device access runs this: the common case (nothing wrong) allocates no array. */
const PAGE_BASE_MASK = ~PAGE_MASK;
/** 2^53: below it a nonnegative integer is exact as a double */
const EXACT = 2 ** 53;

export function checkDeviceAccess(w: World, ev: EventOf<'dev.access'>): NewEvent[] {
  const r = w.rings[ev.q];
  const d = r && w.devices.get(r.dev);
  return d ? deviceAccessChecks(w, d, ev) : NONE;
}

/**
 * checkDeviceAccess, given the device of the access's ring (the caller has found it), and the
 * access's dma and gpa as toNum gives them (converted once for every check of the access: a
 * conversion costs about two bigint comparisons).
 */
export function deviceAccessChecks(w: World, d: DeviceState, ev: EventOf<'dev.access'>, dmaN = toNum(ev.dma), gpaN = toNum(ev.gpa)): NewEvent[] {
  let out: NewEvent[] | null = null;
  const stale = ev.via === 'iotlb' || ev.via === 'meta' || ev.via === 'shadow' ? staleTranslation(w, d, ev, dmaN, gpaN) : null;
  if (stale) out = [stale];
  else if (d.useDmaApi) {
    const m = mappingFor(d, ev.dma, ev.len, dmaN);
    if (!m)
      out = [finding(ev.seq, 'access-outside-mapping', `device ${ev.dir === 'read' ? 'read' : 'wrote'} ${ev.len} B at dma ${hex(ev.dma)}, outside every live DMA mapping of device ${bdf(d.dev)}`, [ev.seq], ev.dma, ev.gpa)];
    else if ((ev.dir === 'write' && m.dir === 'TO_DEVICE') || (ev.dir === 'read' && m.dir === 'FROM_DEVICE'))
      out = [finding(ev.seq, 'access-wrong-dir', `device ${ev.dir === 'read' ? 'read' : 'wrote'} dma ${hex(ev.dma)} mapped ${m.dir} at #${m.seq}`, [m.seq, ev.seq], ev.dma, ev.gpa)];
  }
  if (w.protected && !inPool(ev.gpa) && !w.shared.some((s) => ev.gpa >= s.start && ev.gpa < s.start + s.size))
    (out ??= []).push(finding(ev.seq, 'unshared-access', `protected guest: device ${ev.dir === 'read' ? 'read' : 'wrote'} private GPA ${hex(ev.gpa)} (neither the swiotlb pool nor a shared coherent allocation)`, [ev.seq], ev.dma, ev.gpa));
  return out ?? NONE;
}

/** The first live mapping (in the order debug.c would list them) holding [dma, dma + len). */
export function mappingFor(d: DeviceState, dma: bigint, len: number, a = toNum(dma)) {
  const live = liveEntries(d.dmaLive);
  if (a < EXACT) {
    // in doubles: the entries' dmaNum and endNum compare with a as their dma and end do with dma
    // (±Infinity, for a value outside [0, 2^53), orders as the value does); the room end - dma is
    // exact when end is below 2^53, and taken in bigints otherwise
    for (let i = 0; i < live.length; i++) {
      const e = live[i]!;
      const end = e[5];
      if (a >= e[4] && a <= end && (end < EXACT ? end - a >= len : toNum(e[2] - dma) >= len)) return e[1];
    }
    return null;
  }
  for (let i = 0; i < live.length; i++) {
    const e = live[i]!;
    // dma + len <= end, compared as numbers for the entry that holds dma: end - dma is then at most
    // the mapping's size (a number), so it converts exactly. (BigInt(len) would allocate in the
    // runtime on every device access: ~30 ns, against ~5 ns for this one toNum.)
    if (dma >= e[0] && dma <= e[2] && toNum(e[2] - dma) >= len) return e[1];
  }
  return null;
}

function staleTranslation(w: World, d: DeviceState, ev: EventOf<'dev.access'>, dmaN: number, gpaN: number): NewEvent | null {
  // a virtio-iommu endpoint: its domain's byte-granular mapping decides, exactly
  const vt = endpointTranslate(w.virtioIommu, d.dev, ev.dma);
  if (vt !== undefined) return vt && vt.gpa === ev.gpa ? null : virtioStale(w, d, ev, vt);
  const pfn = pfnOfNum(ev.dma, dmaN);
  const pte = d.iommu.get(pfn);
  if (pte && samePage(pte.gpa, ev.gpa, gpaN)) return null;
  const unmap = d.unmapSeq.get(pfn) ?? 0;
  const owed = w.vmm.invals.find((i) => i.dev === d.dev && i.iova <= ev.dma && ev.dma - i.iova < i.size);
  const what = `device ${ev.dir === 'read' ? 'read' : 'wrote'} ${ev.len} B at IOVA ${hex(ev.dma)} through the ${ev.via === 'shadow' ? 'shadow mapping' : 'device-IOTLB entry'} filled by ${ev.via === 'shadow' ? 'MAP' : 'UPDATE'} #${ev.entry} → GPA ${hex(ev.gpa)}`;
  const inv = owed ? `the invalidation requested at #${owed.req} had not reached the device IOTLB` : 'no invalidation for it is pending';
  if (!pte)
    return finding(ev.seq, 'use-after-unmap', `${what}, but the IOMMU no longer maps that IOVA (unmapped at #${unmap}); ${afterUnmap(d, ev.dma, inv)}`, [ev.entry, unmap, owed?.req ?? 0, ev.seq], ev.dma, ev.gpa);
  const now = pte.gpa | (ev.dma & PAGE_MASK);
  return finding(
    ev.seq,
    'stale-iotlb',
    `${what}, but the IOMMU maps it to GPA ${hex(now)} since #${pte.seq}${unmap ? ` (old mapping unmapped at #${unmap})` : ''}; ${inv}`,
    [ev.entry, unmap, pte.seq, owed?.req ?? 0, ev.seq],
    ev.dma,
    ev.gpa,
  );
}

/**
 * pte === gpa & ~0xfff: in doubles below 2^53 (exact there: the page base of g is floor(g / 4096) *
 * 4096), else in bigints (whose & allocates its result).
 */
export function samePage(pte: bigint, gpa: bigint, g = toNum(gpa)): boolean {
  if (g < EXACT) {
    const p = toNum(pte);
    if (p < EXACT) return p === Math.floor(g / 4096) * 4096;
  }
  return pte === (gpa & PAGE_BASE_MASK);
}

/**
 * What the IOMMU itself would have done with an access after unmap (drivers/iommu/dma-iommu.c):
 * strict mode invalidates the IOTLB before dma_unmap returns (iommu_iotlb_sync in
 * __iommu_dma_unmap), so it faults; lazy mode queues the IOVA and its IOTLB flush (queue_iova,
 * fq_flush_timeout), so until that flush a cached translation lets the access through silently.
 */
function afterUnmap(d: DeviceState, dma: bigint, inv: string): string {
  if (d.path === 'iommu-lazy') {
    const waiting = d.fq.some((r) => dma >= r.start && dma < r.start + r.size);
    if (waiting) return 'lazy mode: the IOTLB flush for the unmapped IOVA still waits in the flush queue, so no invalidation has been sent yet, and until the flush the IOMMU would let this access through silently';
    return `lazy mode: the flush queue has been flushed since, so the IOMMU would fault this access; ${inv}`;
  }
  if (d.path === 'iommu') return `strict mode: the IOMMU invalidated it at the unmap and would fault this access; ${inv}`;
  return inv;
}

/** A device access through a cached translation that the endpoint's virtio-iommu domain no longer gives. */
function virtioStale(w: World, d: DeviceState, ev: EventOf<'dev.access'>, now: EndpointTranslation | null): NewEvent {
  const owed = w.vmm.invals.find((i) => i.dev === d.dev && i.iova <= ev.dma && ev.dma - i.iova < i.size);
  const what = `device ${ev.dir === 'read' ? 'read' : 'wrote'} ${ev.len} B at IOVA ${hex(ev.dma)} through the entry filled by #${ev.entry} → GPA ${hex(ev.gpa)}`;
  const inv = owed ? `the invalidation requested at #${owed.req} had not reached the device IOTLB` : 'no invalidation for it is pending';
  if (!now) return finding(ev.seq, 'use-after-unmap', `${what}, but no virtio-iommu mapping of the endpoint's domain holds that IOVA; ${inv}`, [ev.entry, owed?.req ?? 0, ev.seq], ev.dma, ev.gpa);
  return finding(ev.seq, 'stale-iotlb', `${what}, but the endpoint's virtio-iommu mapping (#${now.seq}) gives GPA ${hex(now.gpa)}; ${inv}`, [ev.entry, now.seq, owed?.req ?? 0, ev.seq], ev.dma, ev.gpa);
}
