// IOVA allocation as Linux's iommu-dma does it for a PCI device: page-granular, top-down from the
// highest free range below the limit (32-bit first, which is why real traces show IOVAs just under
// 4 GiB, 0xffff_f000 downwards). A freed range is the first one handed out again.
import { big, type Infer, obj } from './codec.js';
import { insertAt } from './list.js';
import { PAGE_BASE, PAGE_BIG, PAGE_MASK, fromNum } from './memory.js';

export const IOVA_LIMIT_32 = 0x1_0000_0000n;

export const IOVA_RANGE = obj({ __proto__: null, start: big, size: big });
export type IovaRange = Infer<typeof IOVA_RANGE>;

/** The page-aligned span of [addr, addr+size) (at least one page), as iommu-dma allocates it. */
export function pageSpan(addr: bigint, size: number): bigint {
  const start = addr & PAGE_BASE;
  const end = (addr + fromNum(Math.max(size, 1)) + PAGE_MASK) & PAGE_BASE;
  return end - start;
}

export function allocIova(live: readonly IovaRange[], size: bigint, limit = IOVA_LIMIT_32): bigint | null {
  const bytes = (size + PAGE_MASK) & PAGE_BASE; // whole pages: ceil(size / 4096) * 4096 (size >= 0)
  const sorted = byStartDescending(live);
  let top = limit;
  for (const r of sorted) {
    const end = r.start + r.size;
    if (end <= top && top - end >= bytes) return top - bytes;
    if (r.start < top) top = r.start;
  }
  return top >= bytes + PAGE_BIG ? top - bytes : null; // never hand out IOVA page 0
}

// The live list is short (the mappings in flight) and is walked on every map: a stable insertion
// sort into a reused array instead of a copy and a comparator sort each time (same order: highest
// start first, equal starts in list order).
const scratch: IovaRange[] = [];
function byStartDescending(live: readonly IovaRange[]): IovaRange[] {
  scratch.length = 0;
  for (const r of live) {
    let i = scratch.length;
    while (i > 0 && scratch[i - 1]!.start < r.start) i--;
    insertAt(scratch, i, r);
  }
  return scratch;
}
