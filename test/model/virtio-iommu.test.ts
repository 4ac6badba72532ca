// virtio-iommu requests against the model (src/model/virtio-iommu.ts), as QEMU's handlers decide
// them: mappings of a domain never overlap; an UNMAP either removes exactly the mappings inside its
// range (S_OK) or, if it would split one, nothing (S_RANGE); translations are exact to the byte.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyAttach,
  applyMap,
  applyUnmap,
  emptyVirtioIommu,
  endpointTranslate,
  mapStatus,
  unmapStatus,
  type VMapping,
} from '../../src/model/virtio-iommu.js';

const req = fc.oneof(
  fc.record({ op: fc.constant('map' as const), start: fc.integer({ min: 0, max: 60 }), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ op: fc.constant('unmap' as const), start: fc.integer({ min: 0, max: 60 }), len: fc.integer({ min: 1, max: 30 }) }),
);

describe('virtio-iommu mappings', () => {
  it('never overlap; UNMAP removes exactly the covered mappings or nothing', () => {
    fc.assert(
      fc.property(fc.array(req, { maxLength: 40 }), (reqs) => {
        const s = emptyVirtioIommu();
        applyAttach(s, 0x10, 1, false);
        let seq = 0;
        for (const r of reqs) {
          const start = BigInt(r.start);
          const end = BigInt(r.start + r.len - 1);
          const before: VMapping[] = s.domains.get(1)!.mappings.map((m) => ({ ...m }));
          if (r.op === 'map') {
            const st = mapStatus(s, 1, start, end, 3);
            const overlaps = before.some((m) => m.start <= end && start <= m.end);
            expect(st).toBe(overlaps ? 'S_INVAL' : 'S_OK');
            if (st === 'S_OK') applyMap(s, 1, { start, end, phys: 0x1000n * BigInt(++seq), flags: 3, seq });
          } else {
            const st = unmapStatus(s, 1, start, end);
            const split = before.some((m) => m.start <= end && start <= m.end && (m.start < start || m.end > end));
            expect(st).toBe(split ? 'S_RANGE' : 'S_OK');
            if (st === 'S_OK') applyUnmap(s, 1, start, end);
            const after = s.domains.get(1)!.mappings;
            expect(after).toEqual(st === 'S_OK' ? before.filter((m) => m.end < start || m.start > end) : before);
          }
          const ms = s.domains.get(1)!.mappings;
          for (let i = 1; i < ms.length; i++) expect(ms[i - 1]!.end < ms[i]!.start).toBe(true);
        }
      }),
      { numRuns: 200, seed: 5 },
    );
  });

  it("translates the spec's [0, 4] and [5, 9] to the byte; an endpoint in no domain is not translated", () => {
    const s = emptyVirtioIommu();
    applyAttach(s, 0x10, 1, false);
    applyMap(s, 1, { start: 0n, end: 4n, phys: 0xa000n, flags: 1, seq: 1 });
    applyMap(s, 1, { start: 5n, end: 9n, phys: 0xb000n, flags: 1, seq: 2 });
    expect(endpointTranslate(s, 0x10, 4n)).toMatchObject({ gpa: 0xa004n, left: 1n, perm: 'RO', seq: 1 });
    expect(endpointTranslate(s, 0x10, 5n)).toMatchObject({ gpa: 0xb000n, left: 5n, seq: 2 });
    expect(endpointTranslate(s, 0x10, 10n)).toBeNull();
    expect(endpointTranslate(s, 0x18, 5n)).toBeUndefined(); // not an endpoint: the page tables decide
  });
});
