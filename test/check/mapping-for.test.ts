// mappingFor compares an access's end with a live mapping's as numbers (exact: the difference is at
// most the mapping's size): it must pick the same mapping as the bigint comparison dma + len <= end,
// for any live mappings (overlapping, size 0, near 2^53 and 2^64) and any access.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mappingFor } from '../../src/check/coherence.js';
import { DmaLive, liveAdd, liveEntries } from '../../src/model/dma-live.js';
import type { DeviceState } from '../../src/model/world.js';

const bases = [0n, 0xfee0_0000n, (1n << 53n) - 0x2000n, 1n << 53n, (1n << 64n) - 0x10_0000n];

describe('mappingFor', () => {
  it('finds the first live mapping holding [dma, dma + len), as the bigint comparison does', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...bases),
        fc.array(fc.record({ off: fc.integer({ min: 0, max: 0x8000 }), size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0x4000 })) }), { maxLength: 8 }),
        fc.integer({ min: 0, max: 0x9000 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0x5000 })),
        (base, maps, off, len) => {
          const live = new DmaLive();
          maps.forEach((m, i) => liveAdd(live, base + BigInt(m.off), { phys: 0x1000n * BigInt(i), size: m.size, dir: 'BIDIRECTIONAL', type: 'page', seq: i + 1, checked: true }));
          const d = { dmaLive: live } as unknown as DeviceState;
          const dma = base + BigInt(off);
          const want = liveEntries(live).find((e) => dma >= e[0] && dma + BigInt(len) <= e[2])?.[1] ?? null;
          expect(mappingFor(d, dma, len)).toBe(want);
        },
      ),
      { numRuns: 500 },
    );
  });
});
