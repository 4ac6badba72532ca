// The simulation's generator is seedrandom's xor128 kept in plain fields (src/sim/rng.ts): the same
// outputs and the same saved states as seedrandom itself, for any seed string and after a resume.
import fc from 'fast-check';
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/sim/rng.js';

describe('Rng', () => {
  it('draws the stream seedrandom.xor128 draws for the same seed, and saves the same state', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 2 ** 31 }), { minLength: 1, maxLength: 50 }), (seed, ns) => {
        const ref = seedrandom.xor128(seed, { state: true });
        const rng = new Rng(seed);
        for (const n of ns) expect(rng.int(n)).toBe((ref.int32() >>> 0) % n);
        expect(rng.state()).toEqual(ref.state());
      }),
    );
  });

  it('resumes from a saved state where seedrandom resumes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.nat(100), (seed, skip) => {
        const first = new Rng(seed);
        for (let i = 0; i < skip; i++) first.int(1000);
        const saved = first.state();
        const ref = seedrandom.xor128('', { state: saved });
        const resumed = new Rng('ignored', saved);
        expect(Array.from(resumed.bytes(13))).toEqual(Array.from(first.bytes(13)));
        const b = new Uint8Array(13);
        for (let i = 0; i < 13; i += 4) {
          const v = ref.int32();
          for (let k = 0; k < 4 && i + k < 13; k++) b[i + k] = (v >>> (8 * k)) & 0xff;
        }
        expect(Array.from(b)).toEqual(Array.from(new Rng('x', saved).bytes(13)));
      }),
    );
  });
});
