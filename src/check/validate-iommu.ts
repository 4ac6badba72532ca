// The model validates the guest's IOMMU mapping calls (drivers/iommu/dma-iommu.c):
// - iommu-unmap-unmapped: an iommu.unmap of IOVA pages the domain does not map (a double unmap):
//   __iommu_dma_unmap warns (WARN_ON(unmapped != size)) and frees the IOVA range a second time
//   (iommu_dma_free_iova → free_iova_fast or queue_iova), which corrupts the allocator;
// - iova-reuse-before-flush: in lazy (flush-queue) mode, iommu_dma_free_iova queues an unmapped IOVA
//   (queue_iova) instead of freeing it; only the flush queue's IOTLB flush (fq_flush_timeout, or a
//   full queue) frees it for alloc_iova_fast. An IOVA handed out again before that flush may still be
//   cached by the IOMMU's IOTLB for the old GPA: the flush queue exists to prevent exactly that.
// The imported guest logs' pseudo device (iommu:map/unmap lines name no device, and the merge order
// inside a phase is an estimate) is left to the real-trace checks.
import type { EventOf, NewEvent } from '../events/schema.js';
import { pfnBase, pfnOf } from '../model/memory.js';
import type { DeviceState, World } from '../model/world.js';
import { finding, hex, NONE } from './finding.js';

/** src/import/to-events.ts: the guest's IOMMU domains, whose iommu:map/unmap lines name no device. */
const DEV_UNKNOWN = 0xffff;
/** Page by page up to this many pages; beyond, the domain's entries are counted instead. */
const MAX_WALK = 4096;

function judged(w: World, dev: number): DeviceState | null {
  if (dev === DEV_UNKNOWN) return null;
  return w.devices.get(dev) ?? null;
}

/** Pre-check of an iommu.unmap: every page of the range must be mapped (the world before the unmap). */
export function validateIommuUnmap(w: World, ev: EventOf<'iommu.unmap'>): NewEvent[] {
  // a trace without trace.config is judged by the real-trace checks, whose double-unmap covers this
  if (w.workload === '') return NONE;
  const d = judged(w, ev.dev);
  if (!d || ev.size === 0n) return NONE;
  // page numbers: exact (below 2^53, memory.ts pfnOf), as the IOMMU table's keys
  const first = pfnOf(ev.iova);
  const pages = pfnOf(ev.iova + ev.size - 1n);
  const total = pages - first + 1;
  let mapped = 0;
  let missing: number | null = null;
  if (total <= MAX_WALK) {
    for (let p = first; p <= pages; p++) {
      if (d.iommu.has(p)) mapped++;
      else missing ??= p;
    }
  } else for (const p of d.iommu.keys()) if (p >= first && p <= pages) mapped++;
  if (mapped === total) return NONE;
  const at = missing !== null ? d.unmapSeq.get(missing) ?? 0 : 0;
  const before = at ? ` (IOVA ${hex(pfnBase(missing!))} was unmapped at #${at})` : '';
  return [
    finding(
      ev.seq,
      'iommu-unmap-unmapped',
      `guest unmapped IOVA [${hex(ev.iova)}, ${hex(ev.iova + ev.size - 1n)}] of device 0x${ev.dev.toString(16)}, but the domain maps only ${mapped} of its ${total} pages${before}: a double unmap; __iommu_dma_unmap warns (unmapped != size) and frees the IOVA range twice`,
      [at, ev.seq],
      ev.iova,
    ),
  ];
}

function queued(d: DeviceState, iova: bigint, size: bigint): { start: bigint; size: bigint } | null {
  const end = iova + (size > 0n ? size : 1n);
  return d.fq.find((r) => r.start < end && iova < r.start + r.size) ?? null;
}

function reuse(d: DeviceState, seq: number, what: string, iova: bigint, size: bigint, gpa: bigint): NewEvent[] {
  if (d.path !== 'iommu-lazy') return NONE;
  const q = queued(d, iova, size);
  if (!q) return NONE;
  const unmap = d.unmapSeq.get(pfnOf(q.start)) ?? 0;
  return [
    finding(
      seq,
      'iova-reuse-before-flush',
      `IOVA ${hex(iova)} handed out again by ${what} #${seq} (→ GPA ${hex(gpa)}) while [${hex(q.start)}, ${hex(q.start + q.size - 1n)}]${unmap ? `, unmapped at #${unmap},` : ''} still waits in the flush queue: in lazy mode iommu_dma_free_iova queues it (queue_iova) and only the flush queue's IOTLB flush frees it, so the IOMMU may still translate it to the old GPA`,
      [unmap, seq],
      iova,
      gpa,
    ),
  ];
}

/** Pre-check of an iommu.map on a lazy domain: none of its pages may still wait in the flush queue. */
export function validateLazyMap(w: World, ev: EventOf<'iommu.map'>): NewEvent[] {
  const d = judged(w, ev.dev);
  return d ? reuse(d, ev.seq, 'iommu.map', ev.iova, ev.size, ev.gpa) : NONE;
}

/** Pre-check of a dma.map through the IOMMU with no iommu.map before it (a trace of DMA-API calls only). */
export function validateLazyDmaMap(w: World, ev: EventOf<'dma.map'>): NewEvent[] {
  if (ev.path !== 'iommu') return NONE;
  const d = judged(w, ev.dev);
  if (!d || d.iommu.has(pfnOf(ev.dma))) return NONE; // its iommu.map was judged
  return reuse(d, ev.seq, 'dma.map', ev.dma, BigInt(Math.max(ev.size, 1)), ev.phys);
}
