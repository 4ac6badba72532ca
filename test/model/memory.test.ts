// Guest memory's accessors take a page number and an offset from one bigint-to-double conversion of
// the address where it is exact (below 2^53) and from bigint shifts above: for any 64-bit address,
// every accessor must agree with the same memory kept as a plain byte map keyed by bigint address.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromNum, pageFor, pageOff, type Pages, pfnOf, readMem, readMemInto, readU16, readU16Off, readU32, toNum, writeMem, writeUint } from '../../src/model/memory.js';

const U64 = (1n << 64n) - 1n;

/** Addresses near the interesting edges: page boundaries, 2^53, the top of the 64-bit space. */
const addr = fc.oneof(
  fc.bigInt({ min: 0n, max: U64 - 64n }),
  fc.tuple(fc.constantFrom(0n, 1n << 52n, (1n << 53n) - 4096n, 1n << 53n, (1n << 53n) + 4096n, 1n << 63n, U64 - 8192n), fc.integer({ min: 0, max: 8191 })).map(([b, o]) => b + BigInt(o)),
);

describe('guest memory accessors', () => {
  it('fromNum is BigInt() for any number: the same bigint, or the same RangeError', () => {
    const outcome = (f: () => bigint) => {
      try {
        return f();
      } catch (e) {
        return (e as Error).constructor.name;
      }
    };
    const nums = fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer(), fc.double(), fc.constantFrom(0, -0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 60, -1, 0.5, NaN, Infinity));
    fc.assert(
      fc.property(nums, (n) => {
        expect(outcome(() => fromNum(n))).toEqual(outcome(() => BigInt(n)));
      }),
      { numRuns: 2000 },
    );
  });

  it('toNum is Number() for any bigint: exact below 2^53, rounded the same way above, outside [0, 2^64) too', () => {
    const edges = fc.oneof(addr, fc.bigInt(), fc.bigInt({ min: (1n << 53n) - 4n, max: (1n << 53n) + 4n }), fc.bigInt({ min: U64 - 4n, max: U64 + 4n }), fc.bigInt({ min: -4n, max: 4n }), fc.bigInt({ min: 0n, max: (1n << 80n) }));
    fc.assert(
      fc.property(edges, (a) => {
        expect(Object.is(toNum(a), Number(a))).toBe(true);
      }),
      { numRuns: 2000 },
    );
    // ties: halfway between two doubles above 2^53 rounds to even, as Number() does
    for (const a of [(1n << 53n) + 1n, (1n << 53n) + 3n, (1n << 63n) + (1n << 10n), (1n << 63n) + (3n << 10n), U64]) expect(toNum(a)).toBe(Number(a));
  });

  it('pfnOf and pageOff are the exact shift and mask of any 64-bit address', () => {
    fc.assert(
      fc.property(addr, (a) => {
        expect(pfnOf(a)).toBe(Number(a >> 12n));
        expect(pageOff(a)).toBe(Number(a & 0xfffn));
      }),
    );
  });

  it('writes and reads agree with a byte map, in a page and across pages, below and above 2^53', () => {
    fc.assert(
      fc.property(
        addr,
        fc.array(fc.tuple(fc.integer({ min: 0, max: 8200 }), fc.constantFrom(1, 2, 4, 16, 100), fc.integer({ min: 0, max: 0xffffffff })), { minLength: 1, maxLength: 12 }),
        (base, writes) => {
          const mem: Pages = new Map();
          const ref = new Map<bigint, number>();
          for (const [off, len, v] of writes) {
            const at = base + BigInt(off);
            if (len === 2 || len === 4) {
              writeUint(mem, at, len, v);
              for (let i = 0; i < len; i++) ref.set(at + BigInt(i), (v >>> (8 * i)) & 0xff);
            } else {
              const data = Uint8Array.from({ length: len }, (_, i) => (v + i) & 0xff);
              writeMem(mem, at, data);
              data.forEach((b, i) => ref.set(at + BigInt(i), b));
            }
          }
          const byte = (a: bigint) => ref.get(a) ?? 0;
          for (const [off, len] of writes) {
            const at = base + BigInt(off);
            expect(readU16(mem, at)).toBe(byte(at) | (byte(at + 1n) << 8));
            expect(readU32(mem, at)).toBe((byte(at) | (byte(at + 1n) << 8) | (byte(at + 2n) << 16)) + byte(at + 3n) * 0x1000000);
            const want = Array.from({ length: len }, (_, i) => byte(at + BigInt(i)));
            expect([...readMem(mem, at, len)]).toEqual(want);
            const into = new Uint8Array(len + 3);
            readMemInto(mem, at, len, into, 3);
            expect([...into.subarray(3)]).toEqual(want);
            const page = pageFor(mem, at, len);
            if (Number(at & 0xfffn) + len > 4096) expect(page).toBeNull();
            else if (page) expect([...page.subarray(Number(at & 0xfffn), Number(at & 0xfffn) + len)]).toEqual(want);
            else expect(want.every((b) => b === 0)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('readU16Off(gpa, off) is readU16 of the bigint sum, across pages, 2^53 and the top of the space', () => {
    fc.assert(
      fc.property(addr, fc.oneof(fc.integer({ min: 0, max: 8200 }), fc.integer({ min: 0, max: 0xffff_ffff })), fc.uint8Array({ minLength: 2, maxLength: 64 }), fc.integer({ min: -40, max: 40 }), (a, off, data, shift) => {
        const mem: Pages = new Map();
        // bytes around the address read (and some elsewhere): a read that crosses a page sees both
        const at = a + BigInt(off) + BigInt(shift);
        if (at >= 0n && at + BigInt(data.length) <= U64) writeMem(mem, at, data);
        writeMem(mem, a, data.subarray(0, 2));
        const sum = a + BigInt(off);
        if (sum > U64 - 1n) return;
        expect(readU16Off(mem, a, off)).toBe(readU16(mem, sum));
      }),
      { numRuns: 500 },
    );
  });
});
