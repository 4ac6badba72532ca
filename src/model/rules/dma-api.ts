// Rules for the guest's DMA API as kernel/dma/debug.c tracks it: each mapping by (device, dma
// address), checked with dma_mapping_error, removed by the unmap that matches it; and the IOVA
// allocations behind IOMMU mappings (iommu-dma: freed at unmap in strict mode, after the flush queue
// is flushed in lazy mode).
import { pageSpan } from '../iova.js';
import { liveAdd, liveFind, liveRemove } from '../dma-live.js';
import { PAGE_BASE } from '../memory.js';
import { usesIommu } from '../types.js';
import { deviceOf } from '../world.js';
import type { RulesFor } from './rule.js';
import { mappingAt, type SwiotlbCall } from '../swiotlb.js';
import type { EventOf } from '../../events/schema.js';
import { removeIova } from './vmm.js';

type DmaKinds = 'dma.map' | 'dma.map_error' | 'dma.check' | 'dma.unmap' | 'dma.sync';

export const DMA_RULES: RulesFor<DmaKinds> = {
  'dma.map': {
    models: 'dma_map_page / dma_map_single / dma_alloc_coherent (debug_dma_map_page adds the entry; iommu_dma_alloc_iova)',
    evolve(w, ev) {
      w.swiotlb.call = null; // the sync/unmap before it has been judged (its pre-check)
      const d = deviceOf(w, ev.dev, ev.seq);
      liveAdd(d.dmaLive, ev.dma, { phys: ev.phys, size: ev.size, dir: ev.dir, type: ev.type, seq: ev.seq, checked: false });
      if (ev.path === 'iommu') d.iovas.push({ start: ev.dma & PAGE_BASE, size: pageSpan(ev.dma, ev.size) });
      // a protected guest's coherent allocations are shared with the host (set_memory_decrypted)
      if (ev.type === 'coherent' && w.protected) w.shared.push({ start: ev.phys & PAGE_BASE, size: pageSpan(ev.phys, ev.size) });
    },
  },
  'dma.map_error': { models: 'DMA_MAPPING_ERROR returned (nothing was mapped)' },
  'dma.check': {
    models: 'dma_mapping_error → debug_dma_mapping_error: the first unchecked entry at that address is marked checked',
    evolve(w, ev) {
      const m = w.devices.get(ev.dev)?.dmaLive.get(ev.dma)?.find((x) => !x.checked);
      if (m) m.checked = true;
    },
  },
  'dma.unmap': {
    models: 'dma_unmap_page / dma_free_coherent (debug_dma_unmap_page; iommu_dma_free_iova, or queue_iova in lazy mode; swiotlb_tbl_unmap_single)',
    evolve(w, ev) {
      const d = deviceOf(w, ev.dev, ev.seq);
      // an unmap of a bounced mapping copies back (swiotlb_tbl_unmap_single): its copies follow, the checkers compare
      w.swiotlb.call = mappingAt(w.swiotlb, ev.dma) ? swiotlbCall('unmap', ev, true) : null;
      const m = liveFind(d.dmaLive, ev.dma, ev.size, ev.dir);
      if (!m) return; // dma-debug reports it; the kernel carries on
      liveRemove(d.dmaLive, ev.dma, m);
      if (usesIommu(d.path)) {
        // strict: the IOVA is free once the invalidation completed (same guest step); lazy: after the flush
        if (d.path === 'iommu-lazy') d.fq.push({ start: ev.dma & PAGE_BASE, size: pageSpan(ev.dma, m.size) });
        else removeIova(d, ev.dma & PAGE_BASE);
      }
    },
  },
  'dma.sync': {
    models: 'dma_sync_single_for_cpu / _for_device (its bounce copy, if any, is a swiotlb.bounce event)',
    evolve(w, ev) {
      // a sync of a bounced mapping: its copies follow; the checkers compare them with swiotlb_sync_single_for_*'s
      w.swiotlb.call = mappingAt(w.swiotlb, ev.dma) ? swiotlbCall('sync', ev, !!ev.forCpu) : null;
    },
  },
};

function swiotlbCall(op: SwiotlbCall['op'], ev: EventOf<'dma.sync' | 'dma.unmap'>, forCpu: boolean): SwiotlbCall {
  return { op, seq: ev.seq, dev: ev.dev, dma: ev.dma, size: ev.size, dir: ev.dir, forCpu, toTlb: 0, fromTlb: 0 };
}
