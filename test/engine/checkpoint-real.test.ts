// The real-trace checks keep their state in World.real, which checkpoints store as JSON: values JSON
// cannot hold (an interval still open has unmapPhase Infinity) must come back as they were.
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/engine/snapshot.js';
import { emptyWorld } from '../../src/model/world.js';

describe('World.real in a checkpoint', () => {
  it('keeps Infinity, -Infinity and NaN, bigints, Maps and Sets', () => {
    const w = emptyWorld();
    w.real = { pages: new Map([[0xfffd9n, { open: [{ gpa: 0xeba4000n, unmapPhase: Infinity, mapPhase: -Infinity, clock: NaN }] }]]), phases: new Set([1, 3]) };
    const back = decodeCheckpoint(0, encodeCheckpoint(w, null)).world.real as typeof w.real & { pages: Map<bigint, { open: { unmapPhase: number; mapPhase: number; clock: number; gpa: bigint }[] }>; phases: Set<number> };
    const iv = back.pages.get(0xfffd9n)!.open[0]!;
    expect(iv.unmapPhase).toBe(Infinity);
    expect(iv.mapPhase).toBe(-Infinity);
    expect(iv.clock).toBeNaN();
    expect(iv.gpa).toBe(0xeba4000n);
    expect([...back.phases]).toEqual([1, 3]);
  });
});
