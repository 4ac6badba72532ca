// Contents of guest payloads and of what devices write: a pure function of (seed, op, offset), not
// of any RNG stream, so the same guest operation carries the same bytes under every DMA path and
// schedule. That is what lets two paths be compared byte for byte.
// Signed 32-bit throughout: every use takes bits of the result (xor, shifts, masks), and an
// unsigned value above 2^31 would leave the small-integer range in the per-word loop below.
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return x ^ (x >>> 16);
}

export function seedKey(seed: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** `len` bytes for stream `tag` (e.g. 1 = guest payload, 2 = device data) of op `op`, from byte `from`. */
export function opBytes(key: number, tag: number, op: number, from: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  opBytesInto(out, 0, key, tag, op, from, len);
  return out;
}

/** The same bytes as opBytes, written into out at `at` (no array of their own). */
export function opBytesInto(out: Uint8Array, at: number, key: number, tag: number, op: number, from: number, len: number): void {
  const base = mix(key ^ mix(op * 4 + tag));
  let i = 0;
  // aligned 4-byte words, so a piece starting anywhere sees the same bytes as the whole buffer:
  // the partial word at the start, then whole words (the hot loop: most payloads are kilobytes),
  // then the partial word at the end
  for (let pos = from; i < len && pos & 3; pos++, i++) out[at + i] = (mix(base ^ (pos >>> 2)) >>> (8 * (pos & 3))) & 0xff;
  for (let w = (from + i) >>> 2; i + 4 <= len; w++, i += 4) {
    const word = mix(base ^ w);
    const o = at + i;
    out[o] = word & 0xff;
    out[o + 1] = (word >>> 8) & 0xff;
    out[o + 2] = (word >>> 16) & 0xff;
    out[o + 3] = word >>> 24;
  }
  if (i < len) {
    const word = mix(base ^ ((from + i) >>> 2));
    for (let b = 0; i < len; b++, i++) out[at + i] = (word >>> (8 * b)) & 0xff;
  }
}
