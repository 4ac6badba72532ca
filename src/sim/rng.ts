// The only source of randomness in the simulation: seedrandom's xor128, seeded from a string (the
// trace's seed is always kept as a string: 1 and "1" give different streams) and resumable from
// its saved state, which every checkpoint stores.
import seedrandom from 'seedrandom';

export type RngState = seedrandom.State.Xor128;

export class Rng {
  private prng: seedrandom.StatefulPRNG<RngState>;
  constructor(seed: string, state?: RngState) {
    this.prng = seedrandom.xor128(state ? '' : seed, { state: state ?? true });
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return (this.prng.int32() >>> 0) % n;
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.prng.int32();
      out[i] = v & 0xff;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = (v >>> 24) & 0xff;
    }
    return out;
  }
  state(): RngState {
    return this.prng.state();
  }
}
