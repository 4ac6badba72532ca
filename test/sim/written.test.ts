// The guest's read of a buffer takes the fingerprint of the device's write of it when memory still
// holds those bytes (src/sim/written.ts). It must answer exactly what hashing guest memory answers
// (fnvMem), whatever was written in between: other writes over the same range, other lengths, ranges
// that cross a page, pages never written, writes past the remembered window.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fnv1a, fnvMem, type Pages, writeMem } from '../../src/model/memory.js';
import { DeviceWrites } from '../../src/sim/written.js';

const BASE = 0x1000_0000n;
// a few GPAs in three pages, some near a page end, so ranges cross pages too
const gpaArb = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.constantFrom(0, 16, 1000, 4000, 4090)).map(([p, o]) => BASE + BigInt(p * 4096 + o));
const bytesArb = fc.uint8Array({ minLength: 1, maxLength: 200 });
/** one step: the device writes (remembered), someone else writes (not remembered), or the guest reads */
const stepArb = fc.oneof(
  fc.record({ t: fc.constant('dev' as const), gpa: gpaArb, data: bytesArb }),
  fc.record({ t: fc.constant('other' as const), gpa: gpaArb, data: bytesArb }),
  fc.record({ t: fc.constant('read' as const), gpa: gpaArb, len: fc.integer({ min: 1, max: 200 }), back: fc.nat(6) }),
);

describe('DeviceWrites.sumOf', () => {
  it('is fnvMem of guest memory, after any sequence of remembered and other writes', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 300 }), (steps) => {
        const mem: Pages = new Map();
        const dw = new DeviceWrites();
        const devWrites: { gpa: bigint; len: number }[] = [];
        for (const s of steps) {
          if (s.t === 'read') {
            // read a range the device wrote (so the remembered sum is a candidate) or an arbitrary one
            const w = devWrites[devWrites.length - 1 - s.back];
            const [gpa, len] = w && s.back % 2 === 0 ? [w.gpa, w.len] : [s.gpa, s.len];
            expect(dw.sumOf(mem, gpa, len)).toBe(fnvMem(mem, gpa, len));
            continue;
          }
          writeMem(mem, s.gpa, s.data);
          if (s.t === 'dev') {
            dw.remember(s.gpa, s.data, fnv1a(s.data));
            devWrites.push({ gpa: s.gpa, len: s.data.length });
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answers from a remembered write that memory still holds, and hashes again once it is overwritten', () => {
    const mem: Pages = new Map();
    const dw = new DeviceWrites();
    const data = new Uint8Array(1024).map((_, i) => (i * 31) & 0xff);
    writeMem(mem, BASE + 64n, data);
    // a wrong sum, remembered on purpose: only a lookup that uses the remembered write returns it
    dw.remember(BASE + 64n, data, 12345);
    expect(dw.sumOf(mem, BASE + 64n, 1024)).toBe(12345);
    expect(dw.sumOf(mem, BASE + 64n, 1023)).toBe(fnvMem(mem, BASE + 64n, 1023));
    writeMem(mem, BASE + 1000n, new Uint8Array([1]));
    expect(dw.sumOf(mem, BASE + 64n, 1024)).toBe(fnvMem(mem, BASE + 64n, 1024));
    expect(fnvMem(mem, BASE + 64n, 1024)).not.toBe(12345);
  });
});
