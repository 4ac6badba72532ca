import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCheckpoint, hashBytes, stateHash } from '../../src/engine/snapshot.js';
import { PAGE } from '../../src/model/memory.js';
import { emptyWorld } from '../../src/model/world.js';

// stateHash hashes a run of pages in place when they are views of a checkpoint's pages part (each
// page right after its u64 pfn), and copies every other page: whatever the pages are views of, it
// must equal SHA-256 of the blob encodeCheckpoint makes of the world.
describe('stateHash', () => {
  const layouts = fc.array(
    fc.record({
      pfn: fc.oneof(fc.integer({ min: 0, max: 1 << 20 }), fc.constantFrom(0, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 52 - 1)),
      fill: fc.integer({ min: 0, max: 255 }),
      // where the page lies: its own buffer; in a blob after its own pfn; in a blob after a wrong pfn;
      // at the very start of a buffer
      where: fc.constantFrom('own', 'blob', 'blob', 'blob', 'wrong-pfn', 'start'),
    }),
    { maxLength: 20 },
  );

  it('equals the hash of the checkpoint blob, wherever the pages lie', () => {
    fc.assert(
      fc.property(layouts, fc.boolean(), (pages, gap) => {
        const w = emptyWorld();
        // one blob holding the pages placed in it, in order, optionally with a gap between two of them
        const blob = Buffer.alloc(pages.length * (8 + PAGE + (gap ? 8 : 0)) + 8);
        let at = 0;
        for (const p of pages) {
          if (w.mem.has(p.pfn)) continue;
          let page: Uint8Array;
          if (p.where === 'own') page = new Uint8Array(PAGE);
          else if (p.where === 'start') page = new Uint8Array(new ArrayBuffer(PAGE + 8), 0, PAGE);
          else {
            blob.writeBigUInt64LE(BigInt(p.where === 'wrong-pfn' ? p.pfn + 1 : p.pfn), at);
            page = new Uint8Array(blob.buffer, blob.byteOffset + at + 8, PAGE);
            at += 8 + PAGE + (gap ? 8 : 0);
          }
          page.fill(p.fill);
          page[p.fill % PAGE] = p.pfn & 0xff;
          w.mem.set(p.pfn, page);
        }
        expect(stateHash(w)).toBe(hashBytes(encodeCheckpoint(w, null)));
      }),
      { numRuns: 200, seed: 12 },
    );
  });
});
