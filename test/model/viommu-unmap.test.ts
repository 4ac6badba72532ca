// iommuUnmap walks the range page by page, or the table when the range has more pages than the table
// holds (the choice is made in numbers now): either way it must remove and return exactly the mapped
// pages among the ceil(size / 4096) pages from iova's page (as __iommu_dma_unmap's page-aligned range
// is given to it), in ascending order, for any table and any range up to 2^64 bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { iommuMap, iommuUnmap, type IommuTable } from '../../src/model/viommu.js';

describe('iommuUnmap', () => {
  it('removes exactly the mapped pages among the ceil(size / 4096) from iova’s page, ascending', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0n, 0x7f_0000_0000n, (1n << 53n) - 0x10_0000n, (1n << 64n) - 0x100_0000n),
        fc.uniqueArray(fc.nat(80), { maxLength: 60 }),
        fc.nat(80),
        fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 0x4_0000n }), fc.bigInt({ min: 1n << 40n, max: 1n << 64n })),
        fc.nat(4095),
        (base, pages, startPage, size, off) => {
          const t: IommuTable = new Map();
          for (const p of pages) iommuMap(t, base + BigInt(p) * 4096n, 0x1000n * BigInt(p), 4096n, 'RW', p + 1);
          const before = new Set(t.keys());
          const iova = base + BigInt(startPage) * 4096n + BigInt(off);
          const first = Number(iova >> 12n);
          const last = first + Number((size + 4095n) / 4096n) - 1;
          const want = [...before].filter((p) => p >= first && p <= last).sort((a, b) => a - b);
          expect(iommuUnmap(t, iova, size)).toEqual(want);
          expect([...t.keys()].sort((a, b) => a - b)).toEqual([...before].filter((p) => !want.includes(p)).sort((a, b) => a - b));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
