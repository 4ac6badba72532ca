// IOTLB coherence: a device access resolved through a device-IOTLB entry must agree with what the
// guest's IOMMU page tables say now. If the IOVA is unmapped, or maps another GPA, the device used a
// stale translation: the GPA changed under a constant IOVA while the INVALIDATE that should have
// removed the entry had not reached vhost (dma-domain.md §7.1 invariant 1, §6 R1).
import type { EventOf, NewEvent } from '../events/schema.js';
import { PAGE_MASK, PAGE_SHIFT } from '../model/memory.js';
import type { World } from '../model/world.js';
import { hex } from '../events/json.js';

export function checkDeviceAccess(w: World, ev: EventOf<'dev.access'>): NewEvent | null {
  if (ev.via === 'gpa') return null;
  const pfn = ev.dma >> PAGE_SHIFT;
  const pte = w.iommu.get(pfn);
  const pageGpa = ev.gpa & ~PAGE_MASK;
  if (pte && pte.gpa === pageGpa) return null;
  const unmap = w.unmapSeq.get(pfn) ?? 0;
  const pendingInv = w.vmm.invals.find((i) => i.iova <= ev.dma && ev.dma - i.iova < i.size);
  const what = `device ${ev.dir === 'read' ? 'read' : 'wrote'} ${ev.len} B at IOVA ${hex(ev.dma)} through the device-IOTLB entry filled by UPDATE #${ev.entry} → GPA ${hex(ev.gpa)}`;
  const inv = pendingInv
    ? `the invalidation requested at #${pendingInv.req} had not reached the device IOTLB`
    : 'no invalidation for it is pending';
  if (!pte) {
    return {
      kind: 'finding',
      actor: 'check',
      cause: ev.seq,
      cls: 'use-after-unmap',
      message: `${what}, but the IOMMU no longer maps that IOVA (unmapped at #${unmap}); ${inv}`,
      iova: ev.dma,
      gpa: ev.gpa,
      chain: causal([ev.entry, unmap, pendingInv?.req ?? 0, ev.seq]),
    };
  }
  const now = pte.gpa | (ev.dma & PAGE_MASK);
  return {
    kind: 'finding',
    actor: 'check',
    cause: ev.seq,
    cls: 'stale-iotlb',
    message: `${what}, but the IOMMU maps it to GPA ${hex(now)} since #${pte.seq}${unmap ? ` (old mapping unmapped at #${unmap})` : ''}; ${inv}`,
    iova: ev.dma,
    gpa: ev.gpa,
    chain: causal([ev.entry, unmap, pte.seq, pendingInv?.req ?? 0, ev.seq]),
  };
}

/** The chain in the order things happened, without the absent (0) links. */
function causal(seqs: number[]): number[] {
  return [...new Set(seqs.filter((s) => s > 0))].sort((a, b) => a - b);
}
