import { describe, expect, it } from 'vitest';
import { JUDGE } from '../../src/check/index.js';
import { chunksOf } from '../../src/engine/chunks.js';
import { fold } from '../../src/engine/replay.js';
import { seek } from '../../src/engine/seek.js';
import { type Checkpoint, decodeCheckpoint, encodeCheckpoint, stateHash } from '../../src/engine/snapshot.js';
import { eventToJson } from '../../src/events/json.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { Sim } from '../../src/sim/sim.js';

// seek at every position around the chunk and checkpoint boundaries (chunks of 50 events,
// checkpoints every 64, so the two fall out of step): the world is the fold's, the count of events
// folded is the distance from the checkpoint, and the event returned is the one at the position.
describe('seek at chunk and checkpoint boundaries', () => {
  it('equals the fold, with the event at the position and the distance folded', () => {
    const events: DmaEvent[] = [];
    const checkpoints: Checkpoint[] = [];
    new Sim({ workload: 'remap', path: 'iommu', ops: 30, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] }, '6', {
      event: (ev) => events.push(structuredClone(ev)),
      checkpoint: (seq, world, state) => checkpoints.push(decodeCheckpoint(seq, encodeCheckpoint(world, state))),
    }, 64).run();
    expect(checkpoints.length).toBeGreaterThan(3);
    const chunks = chunksOf(events, 50);
    const near = new Set<number>([1, 2, events.length - 1, events.length]);
    for (const b of [...chunks.map((c) => c.seq0), ...checkpoints.map((k) => k.seq)]) for (const d of [-1, 0, 1, 2]) if (b + d >= 1 && b + d <= events.length) near.add(b + d);
    let checked = 0;
    for (const at of [...near].sort((a, b) => a - b)) {
      const ck = checkpoints.filter((k) => k.seq <= at).at(-1) ?? null;
      const start = ck?.seq ?? 0;
      const s = seek(ck, chunks, at, JUDGE);
      expect(stateHash(s.world)).toBe(stateHash(fold(chunks, JUDGE, { to: at }).world));
      expect(s.fromCheckpoint).toBe(start);
      expect(s.folded).toBe(at - start);
      // the event at the position, also where a checkpoint lies right after it (it was null there)
      expect(eventToJson(s.event!)).toEqual(eventToJson(events[at - 1]!));
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
  });
});
