// The pipeline's fast path for the common kinds must give each kind its own code (or defer to the
// Map lookup with -1), for every kind the schema knows and for names it does not.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commonKindCode } from '../../src/engine/pipeline.js';
import { KIND_NAMES, KINDS } from '../../src/events/schema.js';

describe('commonKindCode', () => {
  it('is each known kind’s code or -1, and answers the simulation’s most frequent kinds itself', () => {
    for (const k of KIND_NAMES) {
      const c = commonKindCode(k);
      expect(c === -1 || c === KINDS[k].code).toBe(true);
    }
    for (const k of ['dev.access', 'dev.pass', 'vq.prefetch', 'sched', 'iotlb.update', 'iotlb.miss', 'iotlb.invalidate', 'iommu.map', 'iommu.unmap', 'iommu.inv', 'dma.map', 'dma.unmap', 'dma.check'] as const)
      expect(commonKindCode(k)).toBe(KINDS[k].code);
  });

  it('is -1 for any name that is not a kind, and for a kind name built at run time it still answers', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        if (!(KIND_NAMES as readonly string[]).includes(s)) expect(commonKindCode(s)).toBe(-1);
      }),
    );
    // a non-internalized copy of a name (as a decoder might build) compares by content
    const built = ['dev', 'access'].join('.');
    expect(commonKindCode(built)).toBe(KINDS['dev.access'].code);
  });
});
