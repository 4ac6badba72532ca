// The VMM (QEMU) side of the device IOTLB: it reads MISS messages and answers each with one UPDATE
// covering one IOMMU page, clipped to the memory region (vhost_device_iotlb_miss); it forwards the
// vIOMMU's UNMAP notifications as INVALIDATEs (vhost_iommu_unmap_notify). MAPs are never forwarded:
// vhost is filled lazily, by misses only.
import { PAGE_BIG } from '../model/memory.js';
import { gpaToHva } from '../model/memtable.js';
import { iommuTranslate } from '../model/viommu.js';
import type { Sim } from './sim.js';

export function vmmRunnable(sim: Sim): boolean {
  const w = sim.world;
  return w.vmm.toRead.length > 0 || w.vmm.invals.some((i) => i.due <= w.passes);
}

export function vmmStep(sim: Sim): void {
  const w = sim.world;
  const due = w.vmm.invals.find((i) => i.due <= w.passes);
  if (due) {
    sim.emit({ kind: 'iotlb.invalidate', actor: 'vmm', cause: due.req, iova: due.iova, size: due.size });
    return;
  }
  const missSeq = w.vmm.toRead[0]!;
  const miss = w.iotlb.pending.find((m) => m.seq === missSeq)!;
  vmmFill(sim, miss.iova, missSeq);
}

/** Translate iova through the vIOMMU and send the page-sized UPDATE (no UPDATE on a vIOMMU fault). */
export function vmmFill(sim: Sim, iova: bigint, cause: number): boolean {
  const w = sim.world;
  const t = iommuTranslate(w.iommu, iova);
  if (!t) return false;
  const h = gpaToHva(w.memTable, t.pageGpa);
  if (!h) return false;
  const size = h.left < PAGE_BIG ? h.left : PAGE_BIG;
  sim.emit({ kind: 'iotlb.update', actor: 'vmm', cause, iova: t.pageIova, size, uaddr: h.hva, perm: t.perm });
  return true;
}

/**
 * The vIOMMU fired its UNMAP notifier (iommu.inv at invSeq). With kernel vhost, QEMU's write() of the
 * INVALIDATE blocks on the vq mutexes and returns before the guest's invalidation wait completes, so
 * it is delivered now; a delay-invalidate fault holds it for K device passes instead.
 */
export function vmmUnmapNotify(sim: Sim, invSeq: number, iova: bigint, size: bigint): void {
  if (sim.world.path !== 'iommu') return;
  const delay = sim.fault('delay-invalidate');
  if (delay && delay.arg > 0) {
    sim.emit({ kind: 'fault', actor: 'vmm', cause: invSeq, what: 'delay-invalidate', arg: delay.arg, iova, size });
    return;
  }
  sim.emit({ kind: 'iotlb.invalidate', actor: 'vmm', cause: invSeq, iova, size });
}
