// What a device touched, judged against what the guest set up:
// - IOTLB coherence: an access resolved through a cached translation (vhost device IOTLB, its meta
//   cache, a vfio shadow) must agree with the guest's IOMMU page tables now. If the IOVA is unmapped
//   (use-after-unmap) or maps another GPA (stale-iotlb: the GPA changed under a constant IOVA), the
//   INVALIDATE that should have removed the entry was late, lost or rejected (dma-domain.md §6 R1, B1b).
// - the access must fall inside a live DMA-API mapping of the device, in the mapping's direction;
// - a protected guest's device may only touch memory the guest shared (bounce pool, coherent rings).
import { bdf } from '../events/format.js';
import type { EventOf, NewEvent } from '../events/schema.js';
import { PAGE_MASK, PAGE_SHIFT } from '../model/memory.js';
import { inPool } from '../model/swiotlb.js';
import type { DeviceState, World } from '../model/world.js';
import { finding, hex } from './finding.js';
import { liveEntries } from '../model/dma-live.js';

export function checkDeviceAccess(w: World, ev: EventOf<'dev.access'>): NewEvent[] {
  const r = w.rings[ev.q];
  const d = r && w.devices.get(r.dev);
  if (!d) return [];
  const out: NewEvent[] = [];
  const stale = ev.via === 'iotlb' || ev.via === 'meta' || ev.via === 'shadow' ? staleTranslation(w, d, ev) : null;
  if (stale) out.push(stale);
  else if (d.useDmaApi) {
    const m = mappingFor(d, ev.dma, ev.len);
    if (!m)
      out.push(finding(ev.seq, 'access-outside-mapping', `device ${ev.dir === 'read' ? 'read' : 'wrote'} ${ev.len} B at dma ${hex(ev.dma)}, outside every live DMA mapping of device ${bdf(d.dev)}`, [ev.seq], ev.dma, ev.gpa));
    else if ((ev.dir === 'write' && m.dir === 'TO_DEVICE') || (ev.dir === 'read' && m.dir === 'FROM_DEVICE'))
      out.push(finding(ev.seq, 'access-wrong-dir', `device ${ev.dir === 'read' ? 'read' : 'wrote'} dma ${hex(ev.dma)} mapped ${m.dir} at #${m.seq}`, [m.seq, ev.seq], ev.dma, ev.gpa));
  }
  if (w.protected && !inPool(ev.gpa) && !w.shared.some((s) => ev.gpa >= s.start && ev.gpa < s.start + s.size))
    out.push(finding(ev.seq, 'unshared-access', `protected guest: device ${ev.dir === 'read' ? 'read' : 'wrote'} private GPA ${hex(ev.gpa)} (neither the swiotlb pool nor a shared coherent allocation)`, [ev.seq], ev.dma, ev.gpa));
  return out;
}

function mappingFor(d: DeviceState, dma: bigint, len: number) {
  for (const [start, m] of liveEntries(d.dmaLive)) if (dma >= start && dma + BigInt(len) <= start + BigInt(Math.max(m.size, 1))) return m;
  return null;
}

function staleTranslation(w: World, d: DeviceState, ev: EventOf<'dev.access'>): NewEvent | null {
  const pfn = ev.dma >> PAGE_SHIFT;
  const pte = d.iommu.get(pfn);
  const pageGpa = ev.gpa & ~PAGE_MASK;
  if (pte && pte.gpa === pageGpa) return null;
  const unmap = d.unmapSeq.get(pfn) ?? 0;
  const owed = w.vmm.invals.find((i) => i.dev === d.dev && i.iova <= ev.dma && ev.dma - i.iova < i.size);
  const what = `device ${ev.dir === 'read' ? 'read' : 'wrote'} ${ev.len} B at IOVA ${hex(ev.dma)} through the ${ev.via === 'shadow' ? 'shadow mapping' : 'device-IOTLB entry'} filled by ${ev.via === 'shadow' ? 'MAP' : 'UPDATE'} #${ev.entry} → GPA ${hex(ev.gpa)}`;
  const inv = owed ? `the invalidation requested at #${owed.req} had not reached the device IOTLB` : 'no invalidation for it is pending';
  if (!pte)
    return finding(ev.seq, 'use-after-unmap', `${what}, but the IOMMU no longer maps that IOVA (unmapped at #${unmap}); ${inv}`, [ev.entry, unmap, owed?.req ?? 0, ev.seq], ev.dma, ev.gpa);
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
