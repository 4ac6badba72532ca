// The guest-visible IOMMU page tables, at 4 KiB granularity: IOVA page → GPA page and permission,
// with the seq of the iommu.map that installed it. QEMU's translate returns one page-sized entry
// (addr_mask 0xfff), which is what the VMM puts into a device-IOTLB UPDATE.
import { PAGE, PAGE_BASE, PAGE_BIG, PAGE_MASK, PAGE_SHIFT, pfnOf, toNum } from './memory.js';
import { big, type Infer, mapList, num, obj, pfnAddr, str } from './codec.js';
import type { PermName } from './types.js';

export const IOMMU_PTE = obj({ __proto__: null,
  /** page base */
  gpa: big,
  perm: str<PermName>(),
  seq: num,
});
export type IommuPte = Infer<typeof IOMMU_PTE>;

/** IOVA page number (a number: exact below 2^53, see memory.ts pfnOf) → page table entry */
export const IOMMU_TABLE = mapList('iova', pfnAddr, IOMMU_PTE);
export type IommuTable = Map<number, IommuPte>;

export function iommuMap(t: IommuTable, iova: bigint, gpa: bigint, size: bigint, perm: PermName, seq: number): void {
  // (iova + off) >> 12 is pfnOf(iova) + k for off = k pages, aligned or not
  const pfn0 = pfnOf(iova);
  let k = 0;
  for (let off = 0n; off < size; off += PAGE_BIG) t.set(pfn0 + k++, { gpa: gpa + off, perm, seq });
}

/** Removes the pages of [iova, iova+size); returns the IOVA page numbers that were mapped. */
export function iommuUnmap(t: IommuTable, iova: bigint, size: bigint): number[] {
  const gone: number[] = [];
  // a range larger than the table: walk the table instead, so an unmap costs at most what was mapped
  // (an unmap of 2^64 bytes must not step through 2^52 pages)
  // pages > t.size, as numbers: exact below 2^53, and a size of 2^53 or more is more pages than any
  // table holds either way (a bigint shift and BigInt(t.size) are runtime calls on every unmap)
  if (Math.floor(toNum(size) / PAGE) > t.size) {
    const first = pfnOf(iova);
    const last = pfnOf(iova + (((size - 1n) >> PAGE_SHIFT) << PAGE_SHIFT)); // the loop's last page
    for (const pfn of [...t.keys()].filter((p) => p >= first && p <= last).sort((a, b) => a - b)) {
      t.delete(pfn);
      gone.push(pfn);
    }
    return gone;
  }
  const pfn0 = pfnOf(iova);
  let k = 0;
  for (let off = 0n; off < size; off += PAGE_BIG) {
    const pfn = pfn0 + k++;
    if (t.delete(pfn)) gone.push(pfn);
  }
  return gone;
}

export interface Translation {
  gpa: bigint; // exact GPA of iova
  pageIova: bigint;
  pageGpa: bigint;
  perm: PermName;
  seq: number;
}

export function iommuTranslate(t: IommuTable, iova: bigint): Translation | null {
  const pte = t.get(pfnOf(iova));
  if (!pte || pte.perm === 'NONE') return null;
  return { gpa: pte.gpa + (iova & PAGE_MASK), pageIova: iova & PAGE_BASE, pageGpa: pte.gpa, perm: pte.perm, seq: pte.seq };
}
