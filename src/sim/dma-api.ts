// The guest's DMA API, per path, as kernel/dma/ and drivers/iommu/dma-iommu.c do it:
// - dma-direct / passthrough: dma == phys if the device can reach it (dma_capable), else bounce
//   through swiotlb if active, else DMA_MAPPING_ERROR (dma_direct_map_page);
// - swiotlb-force: every streaming mapping bounced (is_swiotlb_force_bounce);
// - iommu: IOVA top-down below the dma mask, iommu_map, dma address = IOVA + offset in page;
//   unmap: iommu_unmap, then strict: an IOTLB invalidation now; lazy: the IOVA waits in the flush queue.
// swiotlb: copy orig→tlb at map (always since CVE-2022-0854), tlb→orig at unmap and sync_for_cpu for
// FROM_DEVICE/BIDIRECTIONAL, orig→tlb at sync_for_device for TO_DEVICE/BIDIRECTIONAL.
import type { DirName } from '../model/types.js';
import { PERM_FOR_DIR, usesIommu } from '../model/types.js';
import { allocIova, IOVA_LIMIT_32 } from '../model/iova.js';
import { PAGE_BASE, PAGE_MASK } from '../model/memory.js';
import { findSlots, IO_TLB_SIZE, mappingAt, slotAddr } from '../model/swiotlb.js';
import type { DeviceState } from '../model/world.js';
import { liveFind } from '../model/dma-live.js';
import { pageSpan } from '../engine/apply.js';
import type { Sim } from './sim.js';
import { shadowMap, vmmUnmapNotify } from './vmm.js';

export type MapType = 'page' | 'single' | 'coherent';
export type MapResult = { ok: true; dma: bigint } | { ok: false; reason: string };

export function dmaMap(sim: Sim, d: DeviceState, phys: bigint, size: number, dir: DirName, type: MapType, cause: number): MapResult {
  if (!d.useDmaApi) return { ok: true, dma: phys }; // vring_map_one_sg: sg_phys straight into desc.addr
  const r = mapOne(sim, d, phys, size, dir, type, cause);
  if (!r.ok) sim.emit({ kind: 'dma.map_error', actor: 'cpu0', cause, dev: d.dev, phys, size, dir, reason: r.reason, seq: 0 });
  else sim.emit({ kind: 'dma.check', actor: 'cpu0', cause, dev: d.dev, dma: r.dma, seq: 0 }); // vring_mapping_error()
  return r;
}

function mapOne(sim: Sim, d: DeviceState, phys: bigint, size: number, dir: DirName, type: MapType, cause: number): MapResult {
  if (usesIommu(d.path)) {
    const pages = pageSpan(phys, size);
    const limit = d.dmaMask < IOVA_LIMIT_32 - 1n ? d.dmaMask + 1n : IOVA_LIMIT_32;
    const iova = allocIova(d.iovas, pages, limit);
    if (iova === null) return { ok: false, reason: 'iova_alloc' };
    sim.emit({ kind: 'iommu.map', actor: 'cpu0', cause, dev: d.dev, iova, gpa: phys & PAGE_BASE, size: pages, perm: type === 'coherent' ? 'RW' : PERM_FOR_DIR[dir], seq: 0 });
    if (d.translate === 'shadow') shadowMap(sim, d, iova, phys & PAGE_BASE, pages, cause);
    return mapped(sim, d, phys, size, dir, type, cause, iova + (phys & PAGE_MASK), 'iommu');
  }
  const reachable = phys + BigInt(Math.max(size, 1)) - 1n <= d.dmaMask;
  if (type === 'coherent') return reachable ? mapped(sim, d, phys, size, dir, type, cause, phys, 'direct') : { ok: false, reason: 'mask_overflow' }; // decrypted pages when protected
  if (d.path === 'swiotlb-force' || (!reachable && d.path === 'swiotlb')) return bounceMap(sim, d, phys, size, dir, type, cause);
  if (!reachable) return { ok: false, reason: 'mask_overflow' };
  return mapped(sim, d, phys, size, dir, type, cause, phys, 'direct');
}

/** The mapping is made: dma.map records it; phys is now reachable at dma. */
function mapped(sim: Sim, d: DeviceState, phys: bigint, size: number, dir: DirName, type: MapType, cause: number, dma: bigint, path: 'direct' | 'iommu' | 'swiotlb'): MapResult {
  sim.emit({ kind: 'dma.map', actor: 'cpu0', cause, dev: d.dev, phys, dma, size, dir, type, path, seq: 0 });
  return { ok: true, dma };
}

function bounceMap(sim: Sim, d: DeviceState, phys: bigint, size: number, dir: DirName, type: MapType, cause: number): MapResult {
  const v = sim.world.variants;
  const offset = v.swiotlbKeepOffset ? Number(phys & BigInt(v.minAlignMask & (IO_TLB_SIZE - 1))) : 0;
  const nslots = Math.ceil((offset + size) / IO_TLB_SIZE);
  const full = sim.faultHit('swiotlb-full', 'swiotlbMaps');
  const index = full ? -1 : findSlots(sim.world.swiotlb, nslots, phys, v.swiotlbKeepOffset ? v.minAlignMask : 0, Math.min(v.swiotlbSlots, 1024));
  if (index < 0) return { ok: false, reason: 'swiotlb_full' };
  const tlb = slotAddr(index) + BigInt(offset);
  sim.emit({ kind: 'swiotlb.slots', actor: 'cpu0', cause, dev: d.dev, op: 'alloc', index, nslots, orig: phys, size, offset, seq: 0 });
  // Before the CVE-2022-0854 fix the map copied only for TO_DEVICE/BIDIRECTIONAL.
  if (v.swiotlbMapCopy === 'always' || dir === 'TO_DEVICE' || dir === 'BIDIRECTIONAL')
    sim.emit({ kind: 'swiotlb.bounce', actor: 'cpu0', cause, dev: d.dev, orig: phys, tlb, size, toTlb: 1, trigger: 'map', seq: 0 });
  return mapped(sim, d, phys, size, dir, type, cause, tlb, 'swiotlb');
}

export function dmaUnmap(sim: Sim, d: DeviceState, dma: bigint, size: number, dir: DirName, type: MapType, cause: number): void {
  if (!d.useDmaApi) return;
  const live = liveFind(d.dmaLive, dma, size, dir);
  sim.emit({ kind: 'dma.unmap', actor: 'cpu0', cause, dev: d.dev, dma, size, dir, type, seq: 0 });
  if (!live) return;
  if (usesIommu(d.path)) {
    const page = dma & PAGE_BASE;
    const span = pageSpan(dma, live.size);
    sim.emit({ kind: 'iommu.unmap', actor: 'cpu0', cause, dev: d.dev, iova: page, size: span, seq: 0 });
    if (d.path === 'iommu') {
      // strict: iommu_iotlb_sync → a page-selective invalidation, processed by the vIOMMU at once
      const inv = sim.emit({ kind: 'iommu.inv', actor: 'iommu', cause, dev: d.dev, iova: page, size: span, gran: 'page', seq: 0 });
      vmmUnmapNotify(sim, d, inv, page, span, 'page');
    }
    return;
  }
  const hit = mappingAt(sim.world.swiotlb, dma);
  if (!hit) return;
  const [index, m] = hit;
  // daf9514fd5eb validates the size against alloc_size; before it, an oversized unmap copied past the slot.
  const copy = sim.world.variants.swiotlbValidateSize ? Math.min(size, m.size) : size;
  if (dir === 'FROM_DEVICE' || dir === 'BIDIRECTIONAL')
    sim.emit({ kind: 'swiotlb.bounce', actor: 'cpu0', cause, dev: d.dev, orig: m.orig, tlb: dma, size: copy, toTlb: 0, trigger: 'unmap', seq: 0 });
  sim.emit({ kind: 'swiotlb.slots', actor: 'cpu0', cause, dev: d.dev, op: 'release', index, nslots: m.nslots, orig: m.orig, size: m.size, offset: m.offset, seq: 0 });
}

export function dmaSync(sim: Sim, d: DeviceState, dma: bigint, size: number, dir: DirName, forCpu: boolean, cause: number): void {
  if (!d.useDmaApi) return;
  sim.emit({ kind: 'dma.sync', actor: 'cpu0', cause, dev: d.dev, dma, size, dir, forCpu: forCpu ? 1 : 0, seq: 0 });
  const hit = mappingAt(sim.world.swiotlb, dma);
  if (!hit) return;
  const m = hit[1];
  const copy = sim.world.variants.swiotlbValidateSize ? Math.min(size, m.size) : size;
  // swiotlb_sync_single_for_cpu bounces back only FROM_DEVICE/BIDIR; _for_device only TO_DEVICE/BIDIR (S1b: no copy for FROM_DEVICE)
  if (forCpu && dir !== 'TO_DEVICE') sim.emit({ kind: 'swiotlb.bounce', actor: 'cpu0', cause, dev: d.dev, orig: m.orig, tlb: dma, size: copy, toTlb: 0, trigger: 'sync_cpu', seq: 0 });
  if (!forCpu && dir !== 'FROM_DEVICE') sim.emit({ kind: 'swiotlb.bounce', actor: 'cpu0', cause, dev: d.dev, orig: m.orig, tlb: dma, size: copy, toTlb: 1, trigger: 'sync_dev', seq: 0 });
}

/** iommu-lazy: the flush queue's timer or high-water mark: one domain-wide invalidation frees the queued IOVAs. */
export function flushQueue(sim: Sim, d: DeviceState): void {
  const size = 1n << 48n;
  const inv = sim.emit({ kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: d.dev, iova: 0n, size, gran: 'domain', seq: 0 });
  vmmUnmapNotify(sim, d, inv, 0n, size, 'domain');
}
