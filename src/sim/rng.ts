// The only source of randomness in the simulation: seedrandom's xor128 (Marsaglia's xorshift128),
// seeded from a string (the trace's seed is always kept as a string: 1 and "1" give different
// streams) and resumable from its saved state {x, y, z, w}, which every checkpoint stores.
//
// The generator is seedrandom's lib/xor128.js step for step (the string mixed into x one char
// code at a time, then 64 outputs discarded), kept in this object's own fields: seedrandom builds
// a generator from closures and a state copy per construction, and the simulation builds one per
// guest operation (each op draws its request from its own stream). test/sim/rng.test.ts checks
// the streams and states against seedrandom's.
export interface RngState {
  x: number;
  y: number;
  z: number;
  w: number;
}

export class Rng {
  private x = 0;
  private y = 0;
  private z = 0;
  private w = 0;
  constructor(seed: string, state?: RngState) {
    if (state) {
      this.x = state.x;
      this.y = state.y;
      this.z = state.z;
      this.w = state.w;
      return;
    }
    // seedrandom takes an integer seed as x itself and mixes nothing in (a trace's seed is a string)
    const n = seed as unknown;
    const s = typeof n === 'number' && n === (n | 0) ? ((this.x = n), '') : String(seed);
    for (let k = 0; k < s.length + 64; k++) {
      this.x ^= s.charCodeAt(k) | 0; // NaN past the end: 0
      this.next();
    }
  }
  /** seedrandom's int32(): the next output, a signed 32-bit integer. */
  private next(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    return (this.w ^= (this.w >>> 19) ^ t ^ (t >>> 8));
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return (this.next() >>> 0) % n;
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.next();
      out[i] = v & 0xff;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = (v >>> 24) & 0xff;
    }
    return out;
  }
  state(): RngState {
    return { x: this.x, y: this.y, z: this.z, w: this.w };
  }
}
