// The IOTLB rules' last byte of [iova, iova + size) skips the mod-2^64 AND when nothing wraps: it must
// be (iova + size - 1) & (2^64 - 1) for any u64 iova and size, size 0 and wrap-arounds included.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lastOf } from '../../src/model/rules/device-iotlb.js';

const U64 = (1n << 64n) - 1n;

describe('lastOf', () => {
  it('is (iova + size - 1) mod 2^64', () => {
    const u64 = fc.oneof(fc.bigInt({ min: 0n, max: U64 }), fc.constantFrom(0n, 1n, U64, U64 - 1n, 1n << 63n));
    fc.assert(
      fc.property(u64, u64, (iova, size) => {
        expect(lastOf(iova, size)).toBe((iova + size - 1n) & U64);
      }),
      { numRuns: 2000 },
    );
  });
});
