// Sim.bytes hands out payload arrays carved from slabs: each must be as new Uint8Array(n) would be
// (n bytes, all zero when handed out) and its own (no byte shared with another array it handed out),
// whatever the sequence of sizes, across slab ends and for sizes that get their own array.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Sim } from '../../src/sim/sim.js';

describe('Sim.bytes', () => {
  it('gives fresh, zeroed, disjoint arrays of the asked length', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 4097, max: 40000 })), { minLength: 1, maxLength: 200 }), (sizes) => {
        const sim = new Sim({ workload: 'remap', path: 'iommu', ops: 1, ringNum: 16, faults: [] }, '1', { event: () => {} });
        const got: Uint8Array[] = [];
        sizes.forEach((n, i) => {
          const b = sim.bytes(n);
          expect(b.length).toBe(n);
          expect(b.every((x) => x === 0)).toBe(true);
          b.fill((i % 255) + 1); // marks it: a later array sharing a byte would not be zero, an earlier one would change
          got.push(b);
        });
        got.forEach((b, i) => expect(b.every((x) => x === (i % 255) + 1)).toBe(true));
      }),
      { numRuns: 100 },
    );
  });
});
