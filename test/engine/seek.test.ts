import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import fc from 'fast-check';
import { openStates, stateAt } from '../../src/app/state.js';
import { apply } from '../../src/engine/apply.js';
import { JUDGE } from '../../src/check/index.js';
import { fold } from '../../src/engine/replay.js';
import { stateHash, worldToPlain } from '../../src/engine/snapshot.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { emptyWorld, type World } from '../../src/model/world.js';
import { Sim } from '../../src/sim/sim.js';
import { checkpointHashes, openDb, getTrace, readChunks } from '../../src/store/db.js';
import { logTrace } from '../../src/app/log.js';
import { eventToJson } from '../../src/events/json.js';
import { tempDir } from '../helpers.js';

const cfg = { workload: 'remap' as const, path: 'iommu' as const, ops: 40, ringNum: 16, faults: [{ kind: 'delay-invalidate' as const, arg: 1 }] };

describe('seek', () => {
  it('state at N from the nearest checkpoint equals a full fold to N', () => {
    const db = join(tempDir(), 't.db');
    const r = record({ db, config: cfg, seed: '3', checkpointEvery: 64 });
    const h = openDb(db);
    const trace = getTrace(h, r.trace);
    const positions = [1, 63, 64, 65, 200, 333, r.events - 1, r.events];
    for (const at of positions) {
      const s = stateAt(db, String(r.trace), { at });
      const full = fold(readChunks(h, trace, 1, at), JUDGE, { to: at }).world;
      expect(stateHash(s.world)).toBe(stateHash(full));
      expect(s.plain).toEqual(worldToPlain(full));
      if (at > 70) expect(s.fromCheckpoint).toBeGreaterThan(0);
      expect(s.folded).toBeLessThan(64 + 64); // never from the start once checkpoints exist
    }
    h.close();
  });

  it('state --at a checkpoint\'s own position shows the event there (it was null), state from that checkpoint', () => {
    const db = join(tempDir(), 'c.db');
    const r = record({ db, config: cfg, seed: '3', checkpointEvery: 64 });
    const h = openDb(db);
    const trace = getTrace(h, r.trace);
    const seqs = [...checkpointHashes(h, trace).keys()].filter((s) => s > 0);
    expect(seqs.length).toBeGreaterThan(3);
    const logged: DmaEvent[] = [];
    logTrace(db, String(r.trace), {}, (ev) => void logged.push(ev));
    for (const at of seqs) {
      const s = stateAt(db, String(r.trace), { at });
      expect(s.fromCheckpoint).toBe(at);
      expect(s.folded).toBe(0);
      expect(s.event).toEqual(eventToJson(logged[at - 1]!));
      expect(stateHash(s.world)).toBe(stateHash(fold(readChunks(h, trace, 1, at), JUDGE, { to: at }).world));
    }
    h.close();
  });

  it('the pure apply gives the same world as the simulation and never mutates its input', () => {
    const events: DmaEvent[] = [];
    let simWorld: World | null = null;
    const sim = new Sim({ ...cfg, ops: 10 }, '4', { event: (e) => events.push(structuredClone(e)) });
    sim.run();
    simWorld = sim.world;
    let state = emptyWorld();
    const snapshots: [World, string][] = [];
    for (const ev of events) {
      const next = apply(state, ev);
      snapshots.push([state, stateHash(state)]);
      state = next;
    }
    expect(stateHash(state)).toBe(stateHash(simWorld));
    // every earlier state is unchanged by what came after it (structural sharing, copy-on-write pages)
    for (const [s, h] of snapshots.filter((_, i) => i % 25 === 0)) expect(stateHash(s)).toBe(h);
    expect(Object.isFrozen(state)).toBe(true);
  });
});

describe('openStates: a trace held open for many seeks', () => {
  it('answers every query in any order exactly as stateAt does, and refuses after close', () => {
    const db = join(tempDir(), 'o.db');
    const r = record({ db, config: cfg, seed: '5', checkpointEvery: 64 });
    const states = openStates(db, String(r.trace));
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.integer({ min: 1, max: r.events }), gpa: fc.option(fc.bigInt({ min: 0n, max: 1n << 32n }), { nil: undefined }) }), { minLength: 1, maxLength: 6 }), (qs) => {
        for (const q of qs) {
          const held = states.at(q);
          const once = stateAt(db, String(r.trace), q);
          expect(held.stateHash).toBe(once.stateHash);
          expect(held.plain).toEqual(once.plain);
          expect(held.event).toEqual(once.event);
          expect(held.memory).toEqual(once.memory);
          expect(held.fromCheckpoint).toBe(once.fromCheckpoint);
        }
      }),
      { numRuns: 25 },
    );
    expect(() => states.at({ at: r.events + 1 })).toThrow(/past the end/);
    states.close();
    states.close(); // twice is fine
    expect(() => states.at({ at: 1 })).toThrow(/was closed/);
  });
});
