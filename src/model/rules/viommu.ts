// Rules for the guest's IOMMU domain as the vIOMMU (QEMU hw/i386/intel_iommu.c) sees it: page-table
// maps and unmaps, invalidations (and the UNMAP notifications they send to vhost), translations,
// faults, and the MAP/UNMAP notifier a vfio-style device keeps shadow mappings from.
import { PAGE_SHIFT, pfnOf } from '../memory.js';
import { iommuMap, iommuUnmap } from '../viommu.js';
import { deviceOf } from '../world.js';
import type { RulesFor } from './rule.js';
import { markRead, removeIova } from './vmm.js';

type IommuKinds = 'iommu.map' | 'iommu.unmap' | 'iommu.inv' | 'iommu.fault' | 'iommu.translate' | 'iommu.notify';

export const IOMMU_RULES: RulesFor<IommuKinds> = {
  'iommu.map': {
    models: 'iommu_map (intel_iommu_map → the guest page tables the vIOMMU walks)',
    evolve(w, ev) {
      iommuMap(deviceOf(w, ev.dev, ev.seq).iommu, ev.iova, ev.gpa, ev.size, ev.perm, ev.seq);
    },
  },
  'iommu.unmap': {
    models: 'iommu_unmap: the pages leave the page tables (the IOTLB may still cache them until invalidated)',
    evolve(w, ev) {
      const d = deviceOf(w, ev.dev, ev.seq);
      for (const pfn of iommuUnmap(d.iommu, ev.iova, ev.size)) d.unmapSeq.set(pfn, ev.seq);
    },
  },
  'iommu.inv': {
    models: 'an IOTLB invalidation (vtd_iotlb_page_invalidate / domain / global); lazy mode: fq_flush_iotlb frees the queued IOVAs',
    evolve(w, ev) {
      const d = w.devices.get(ev.dev);
      if (!d) return;
      // The flush queue is emptied by a flush: its IOVAs may be handed out again.
      if (d.path === 'iommu-lazy' && ev.gran !== 'page' && d.fq.length) {
        for (const r of d.fq) removeIova(d, r.start);
        d.fq = [];
      }
      // The vIOMMU's UNMAP notifier reaches the VMM, which owes vhost an INVALIDATE (vhost_iommu_unmap_notify).
      if (d.translate === 'iova' && d.backend.startsWith('vhost')) w.vmm.invals.push({ dev: ev.dev, iova: ev.iova, size: ev.size, req: ev.seq, due: w.passes });
    },
  },
  'iommu.fault': {
    models: 'vtd_report_dmar_fault: a miss whose translation faulted has been read, and no UPDATE will come',
    evolve(w, ev) {
      markRead(w, ev.cause);
    },
  },
  'iommu.translate': {
    models: 'vtd_iommu_translate (the VMM answering a device-IOTLB miss: vhost_device_iotlb_miss)',
    evolve(w, ev) {
      if (ev.cache === 'miss' && ev.actor === 'vmm') w.vmm.lastTranslate = { dev: ev.dev, iova: ev.iova, gpa: ev.gpa, perm: ev.perm, miss: ev.cause };
    },
  },
  'iommu.notify': {
    models: 'memory_region_notify_iommu to a MAP-capable notifier (vfio_iommu_map_notify): shadow page tables',
    evolve(w, ev) {
      const d = deviceOf(w, ev.dev, ev.seq);
      if (ev.op === 'UNMAP' && ev.size >> PAGE_SHIFT > BigInt(d.shadow.size)) {
        // larger than the shadow table: walk the table (an UNMAP of [0, 2^64) must not step page by page)
        const first = pfnOf(ev.iova);
        const last = pfnOf(ev.iova + (((ev.size - 1n) >> PAGE_SHIFT) << PAGE_SHIFT)); // the loop's last page
        for (const pfn of [...d.shadow.keys()]) if (pfn >= first && pfn <= last) d.shadow.delete(pfn);
        return;
      }
      const pfn0 = pfnOf(ev.iova);
      let k = 0;
      for (let off = 0n; off < ev.size; off += 0x1000n) {
        const pfn = pfn0 + k++;
        if (ev.op === 'MAP') d.shadow.set(pfn, { gpa: ev.gpa + off, seq: ev.seq });
        else d.shadow.delete(pfn);
      }
    },
  },
};
