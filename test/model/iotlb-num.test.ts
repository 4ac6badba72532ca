// The device IOTLB's entries carry start, last and uaddr as doubles (derived fields, exact below 2^53,
// +Infinity at or above), and lookup, the access check and the retired list were re-expressed on
// them. Each must answer exactly what the bigint rule answers, for entries and addresses on both
// sides of 2^53 and near 2^64; the derived fields are rebuilt by clone and decode and never reach the
// plain form (so no state hash changes).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { samePage } from '../../src/check/coherence.js';
import { hvaGivesGpa, iotlbAccessChecks } from '../../src/check/validate-iotlb.js';
import { NONE } from '../../src/check/finding.js';
import { exactNum } from '../../src/model/codec.js';
import { addRange, DEVICE_IOTLB, delRange, iotlbEntry, lookup, lookupBig, RETIRED_KEPT, type DeviceIotlb, type RetiredEntry } from '../../src/model/device-iotlb.js';
import { hvaToGpa, region, REGION } from '../../src/model/memtable.js';
import { emptyWorld, newDevice } from '../../src/model/world.js';
import type { EventOf } from '../../src/events/schema.js';

const U64 = (1n << 64n) - 1n;
const E53 = 1n << 53n;
const bases = [0n, 0xffff_0000n, E53 - 0x3000n, E53, U64 - 0x8000n];
const perms = ['RO', 'WO', 'RW'] as const;
const tlb = (): DeviceIotlb => ({ entries: [], pending: [], retired: null });

const entryArb = fc.record({
  base: fc.constantFrom(...bases),
  off: fc.integer({ min: 0, max: 0x6000 }),
  size: fc.integer({ min: 1, max: 0x4000 }),
  uaddr: fc.oneof(fc.constantFrom(0x7f00_0000_0000n, E53 - 0x2000n, U64 - 0x10_0000n), fc.bigInt({ min: 0n, max: U64 })),
  perm: fc.constantFrom(...perms),
});
const build = (es: { base: bigint; off: number; size: number; uaddr: bigint; perm: (typeof perms)[number] }[]) => {
  const t = tlb();
  es.forEach((e, i) => {
    const start = e.base + BigInt(e.off);
    addRange(t, iotlbEntry(start, (start + BigInt(e.size) - 1n) & U64, e.uaddr, e.perm, i + 1));
  });
  return t;
};
const addrArb = fc.oneof(
  fc.tuple(fc.constantFrom(...bases), fc.integer({ min: 0, max: 0xa000 })).map(([b, o]) => (b + BigInt(o)) & U64),
  fc.bigInt({ min: 0n, max: U64 }),
);

describe('device IOTLB in doubles', () => {
  it('exactNum is the value in [0, 2^53), +Infinity above, -Infinity below', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: -U64, max: U64 }), fc.constantFrom(-1n, 0n, E53 - 1n, E53, U64)), (x) => {
        expect(exactNum(x)).toBe(x < 0n ? -Infinity : x < E53 ? Number(x) : Infinity);
      }),
      { numRuns: 2000 },
    );
  });

  it('lookup finds the entry the bigint rule finds (lowest start covering the address)', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 10 }), fc.array(addrArb, { minLength: 1, maxLength: 12 }), (es, addrs) => {
        const t = build(es);
        for (const a of addrs) expect(lookup(t, a)).toBe(lookupBig(t, a));
      }),
      { numRuns: 1000 },
    );
  });

  it('negative values (not u64, but exact all the same) take the bigint rules', () => {
    const t = tlb();
    addRange(t, iotlbEntry(-0x2000n, 0x1fffn, 0n, 'RW', 1));
    addRange(t, iotlbEntry(-0x3000n, 0x0fffn, 0n, 'RW', 2));
    expect(lookup(t, 0x800n)).toBe(lookupBig(t, 0x800n));
    const rs = [region(0x1000n, 0x100n, -5n)];
    expect(hvaGivesGpa(rs, 10n, 0x100fn)).toBe(true);
    expect(hvaGivesGpa(rs, 10n, 0x1010n)).toBe(false);
  });

  it('entries built without their derived fields are looked up in bigints', () => {
    const t = tlb();
    addRange(t, { start: 0x1000n, last: 0x1fffn, uaddr: 0n, perm: 'RW', seq: 1 } as never);
    expect(lookup(t, 0x1800n)?.seq).toBe(1);
  });

  it('clone and decode rebuild the derived fields; the plain form has none', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 6 }), (es) => {
        const t = build(es);
        const plain = DEVICE_IOTLB.toPlain(t);
        expect(JSON.stringify(plain)).not.toMatch(/Num/);
        for (const u of [DEVICE_IOTLB.clone(t), DEVICE_IOTLB.fromPlain(JSON.parse(JSON.stringify(plain)))]) {
          expect(u.entries).toEqual(t.entries);
          for (const e of u.entries) expect([e.startNum, e.lastNum, e.uaddrNum]).toEqual([exactNum(e.start), exactNum(e.last), exactNum(e.uaddr)]);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the retired list keeps the last RETIRED_KEPT removals, oldest first', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 300 }), (pages) => {
        const t = tlb();
        const want: RetiredEntry[] = [];
        pages.forEach((p, i) => {
          const start = BigInt(p) * 0x1000n;
          addRange(t, iotlbEntry(start, start + 0xfffn, start, 'RW', 2 * i + 1));
          for (const e of delRange(t, start, start + 0xfffn, 2 * i + 2)) {
            want.push({ start: e.start, last: e.last, uaddr: e.uaddr, perm: e.perm, seq: e.seq, by: 2 * i + 2, how: 'invalidate' });
            if (want.length > RETIRED_KEPT) want.shift();
          }
        });
        expect(t.retired).toEqual(want);
      }),
      { numRuns: 200 },
    );
  });

  it('samePage is pte === gpa & ~0xfff', () => {
    const near = fc.oneof(fc.bigInt({ min: 0n, max: U64 }), fc.tuple(fc.constantFrom(...bases), fc.integer({ min: 0, max: 0x3000 })).map(([b, o]) => (b + BigInt(o)) & U64));
    fc.assert(
      fc.property(near, near, fc.boolean(), (pte, gpa, aligned) => {
        const p = aligned ? gpa & ~0xfffn : pte;
        expect(samePage(p, gpa)).toBe(p === (gpa & ~0xfffn));
      }),
      { numRuns: 3000 },
    );
  });

  it('hvaGivesGpa is hvaToGpa(regions, hva) ?? gpa === gpa, for regions with and without derived fields', () => {
    const v = fc.oneof(fc.tuple(fc.constantFrom(...bases), fc.integer({ min: 0, max: 0x40_0000 })).map(([b, o]) => (b + BigInt(o)) & U64), fc.bigInt({ min: 0n, max: U64 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(v, fc.oneof(fc.integer({ min: 1, max: 0x20_0000 }).map(BigInt), fc.constant(E53)), v), { maxLength: 4 }), v, fc.integer({ min: -1, max: 1 }), fc.boolean(), (rs, hva, skew, derivedFields) => {
        const regions = rs.map(([gpa, size, hv]) => (derivedFields ? region(gpa, size, hv) : ({ gpa, size, hva: hv } as never)));
        const g = hvaToGpa(regions, hva);
        const gpa = g === null ? hva : (g + BigInt(skew)) & U64;
        expect(hvaGivesGpa(regions, hva, gpa)).toBe(g === null || g === gpa);
      }),
      { numRuns: 3000 },
    );
    const r = region(E53 - 1n, 2n, 0x1000n);
    expect(REGION.toPlain(r)).toEqual({ gpa: '0x1fffffffffffff', size: '0x2', hva: '0x1000' });
    expect(REGION.fromPlain(REGION.toPlain(r))).toEqual(r);
  });

  it('the access check agrees in doubles only where it agrees in bigints', () => {
    // the bigint rule of iotlbAccessChecks before the double fast path (still its fallback)
    const agrees = (t: DeviceIotlb, regions: { gpa: bigint; size: bigint; hva: bigint }[], ev: EventOf<'dev.access'>) => {
      const e = lookupBig(t, ev.dma);
      if (!e || e.seq !== ev.entry) return false;
      if (!((e.perm === 'RW' ? 3 : e.perm === 'WO' ? 2 : 1) & (ev.dir === 'write' ? 2 : 1))) return false;
      if (e.last - ev.dma + 1n < BigInt(ev.len)) return false;
      if (ev.hva !== e.uaddr + (ev.dma - e.start)) return false;
      const g = hvaToGpa(regions, ev.hva);
      return g === null || g === ev.gpa;
    };
    let agreed = 0;
    fc.assert(
      fc.property(
        fc.array(entryArb, { minLength: 1, maxLength: 6 }),
        fc.oneof(fc.tuple(fc.nat(), fc.nat()), addrArb),
        fc.integer({ min: 0, max: 0x5000 }),
        fc.constantFrom<'read' | 'write'>('read', 'write'),
        fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) }),
        fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -1, max: 1 }) }),
        fc.constantFrom(0n, 0x1000n, E53 - 0x1000n),
        (es, at, len0, dir, hvaSkew, gpaSkew, gpaBase) => {
          // mostly an address inside one of the entries, at an offset and length that fit or not
          const inside = typeof at !== 'bigint' && es[at[0] % es.length]!;
          const dma = typeof at === 'bigint' ? at : (inside!.base + BigInt(inside!.off) + BigInt(at[1] % (inside!.size + 2))) & U64;
          const len = inside && len0 % 2 ? len0 % (inside.size + 2) : len0;
          const w = emptyWorld();
          const d = newDevice({ dev: 0x18, name: 'virtio-net', path: 'iommu', useDmaApi: true, translate: 'iova', backend: 'vhost', dmaMask: 64, features: [] } as never);
          const t = build(es);
          d.iotlb = t;
          w.devices.set(d.dev, d);
          const regions = es.slice(0, 2).map((e, i) => ({ gpa: gpaBase + BigInt(i) * 0x10_0000n, size: 0x10_0000n, hva: e.uaddr }));
          w.memTable.push(...regions);
          const e = lookupBig(t, dma);
          const hva = e ? (e.uaddr + (dma - e.start) + BigInt(hvaSkew)) & U64 : dma;
          const g = hvaToGpa(regions, hva);
          const gpa = (g ?? 0x5000n) + BigInt(gpaSkew) < 0n ? 0n : (g ?? 0x5000n) + BigInt(gpaSkew);
          const ev = { kind: 'dev.access', actor: 'vq0', cause: 0, q: 0, dma, len, dir, area: 'buf', via: 'iotlb', gpa, hva, entry: e?.seq ?? 1, sum: 0, data: new Uint8Array(0), seq: 9 } as EventOf<'dev.access'>;
          const want = agrees(t, regions, ev);
          if (want) agreed++;
          expect(iotlbAccessChecks(w, d, ev) === NONE).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
    expect(agreed).toBeGreaterThan(50); // both answers were exercised
  });
});
