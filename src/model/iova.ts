// IOVA allocation as Linux's iommu-dma does it for a PCI device: page-granular, top-down from the
// highest free range below the limit (32-bit first, which is why real traces show IOVAs just under
// 4 GiB, 0xffff_f000 downwards). A freed range is the first one handed out again.
import { PAGE_BIG } from './memory.js';

export const IOVA_LIMIT_32 = 0x1_0000_0000n;

export interface IovaRange {
  start: bigint;
  size: bigint;
}

export function allocIova(live: readonly IovaRange[], size: bigint, limit = IOVA_LIMIT_32): bigint | null {
  const pages = (size + PAGE_BIG - 1n) / PAGE_BIG;
  const bytes = pages * PAGE_BIG;
  const sorted = [...live].sort((a, b) => (a.start < b.start ? 1 : a.start > b.start ? -1 : 0));
  let top = limit;
  for (const r of sorted) {
    const end = r.start + r.size;
    if (end <= top && top - end >= bytes) return top - bytes;
    if (r.start < top) top = r.start;
  }
  return top >= bytes + PAGE_BIG ? top - bytes : null; // never hand out IOVA page 0
}
