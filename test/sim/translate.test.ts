// resolve() splits a device-IOTLB access where an entry ends, comparing the room left in the entry
// with the access as bigints and converting only a short remainder: its pieces must be those of
// translate_desc's rule as device-iotlb.ts translate() states it (one piece per covering entry, each
// min(room, rest) bytes), for any entries, address and length, with or without the cached
// entry translation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addRange, translate, type DeviceIotlb } from '../../src/model/device-iotlb.js';
import { hvaToGpa } from '../../src/model/memtable.js';
import { emptyWorld, type DeviceState } from '../../src/model/world.js';
import { EntryXlate, resolve, type Piece } from '../../src/sim/translate.js';

const U64 = (1n << 64n) - 1n;

/** translate() piece by piece, the reference. */
function reference(tlb: DeviceIotlb, regions: Parameters<typeof hvaToGpa>[0], addr: bigint, len: number, access: 'RO' | 'WO'): { dma: bigint; len: number; hva: bigint; gpa: bigint | null; entry: number }[] | string {
  const out: { dma: bigint; len: number; hva: bigint; gpa: bigint | null; entry: number }[] = [];
  let a = addr;
  let done = 0;
  while (done < len) {
    const t = translate(tlb, a, len - done, access);
    if (!t.ok) return t.err;
    const gpa = hvaToGpa(regions, t.hva);
    if (gpa === null) return 'EFAULT';
    out.push({ dma: a, len: t.len, hva: t.hva, gpa, entry: t.entry.seq });
    done += t.len;
    a += BigInt(t.len);
  }
  return out;
}

describe('resolve through the device IOTLB', () => {
  it('cuts an access where each entry ends, as translate() does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ start: fc.bigInt({ min: 0n, max: 0x20000n }), size: fc.oneof(fc.bigInt({ min: 1n, max: 0x3000n }), fc.constant(1n << 40n)), perm: fc.constantFrom('RO' as const, 'WO' as const, 'RW' as const) }), { minLength: 1, maxLength: 8 }),
        fc.bigInt({ min: 0n, max: 0x22000n }),
        fc.integer({ min: 1, max: 0x5000 }),
        fc.constantFrom('RO' as const, 'WO' as const),
        fc.boolean(),
        (entries, addr, len, access, cached) => {
          const w = emptyWorld();
          // two regions: HVA 0x7f0000000000.. → GPA 0, and a second one further up
          w.memTable.push({ gpa: 0n, size: 0x40000n, hva: 0x7f00_0000_0000n } as (typeof w.memTable)[number]);
          w.memTable.push({ gpa: 0x100000n, size: 1n << 41n, hva: 0x7f00_0010_0000n } as (typeof w.memTable)[number]);
          const tlb: DeviceIotlb = { entries: [], pending: [], retired: null };
          entries.forEach((e, i) => addRange(tlb, { start: e.start, last: (e.start + e.size - 1n) & U64, uaddr: 0x7f00_0000_0000n + e.start, perm: e.perm, seq: i + 1 }));
          const d = { translate: 'iova', backend: 'vhost', iotlb: tlb } as unknown as DeviceState;
          const one: [Piece] = [{ dma: 0n, len: 0, gpa: 0n, hva: 0n, via: 'gpa', entry: 0 }];
          const got = resolve(w, d, addr, len, access, cached ? one : undefined, cached ? new EntryXlate() : undefined);
          const want = reference(tlb, w.memTable, addr, len, access);
          if (typeof want === 'string') {
            expect(Array.isArray(got)).toBe(false);
            expect((got as { err: string }).err).toBe(want);
          } else {
            expect(Array.isArray(got)).toBe(true);
            expect((got as Piece[]).map((p) => ({ dma: p.dma, len: p.len, hva: p.hva, gpa: p.gpa, entry: p.entry }))).toEqual(want);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
