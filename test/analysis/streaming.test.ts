// perturb and minimize work from the stored trace (its findings, checkpoints and events) with bounded
// memory; on small traces they must say exactly what the whole-trace versions said (the reference:
// reference-analyses.ts), whatever the seed.
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { minimizeTrace, perturbTrace } from '../../src/app/analyze.js';
import { record } from '../../src/app/record.js';
import { minimize } from '../../src/analysis/minimize.js';
import { perturb } from '../../src/analysis/perturb.js';
import { InputError } from '../../src/errors.js';
import { eventToJson } from '../../src/events/json.js';
import type { DmaEvent } from '../../src/events/schema.js';
import type { SimConfig } from '../../src/sim/config.js';
import { referenceMinimize, referencePerturb } from './reference-analyses.js';
import { tempDir } from '../helpers.js';

const json = (evs: readonly DmaEvent[]) => evs.map((e) => JSON.stringify(eventToJson(e)));

const configs = fc.record({
  ops: fc.integer({ min: 4, max: 14 }),
  how: fc.constantFrom('delay-invalidate', 'async-invalidate'),
  seed: fc.integer({ min: 1, max: 1_000_000 }).map(String),
});

const configOf = (c: { ops: number; how: string }): SimConfig =>
  c.how === 'async-invalidate'
    ? { workload: 'remap', path: 'iommu', ops: c.ops, ringNum: 16, faults: [], variants: { asyncInvalidate: true } }
    : { workload: 'remap', path: 'iommu', ops: c.ops, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] };

describe('perturb from the stored trace', () => {
  it('says what the whole-trace perturbation said, and the same of the last points when it resumes from a checkpoint', () => {
    const dir = tempDir();
    let n = 0;
    let failing = 0;
    fc.assert(
      fc.property(configs, (c) => {
        const config = configOf(c);
        const db = join(dir, `p${n++}.db`);
        const t = record({ db, seed: c.seed, config, checkpointEvery: 32 });
        const ref = referencePerturb(config, c.seed, { variants: 4, every: 8 });
        if (!ref.signature) {
          expect(() => perturbTrace(db, String(t.trace), { variants: 4, every: 8 })).toThrow(InputError);
          return;
        }
        const got = perturbTrace(db, String(t.trace), { variants: 4, every: 8 });
        failing++;
        expect(got.examinedFrom).toBe(0);
        expect({ ...got, window: json(got.window), owed: json(got.owed) }).toMatchObject({
          signature: ref.signature,
          atOps: ref.atOps,
          points: ref.points,
          inevitableAt: ref.inevitableAt,
          lastAvoidableAt: ref.lastAvoidableAt,
          window: json(ref.window),
          windowEvents: ref.window.length,
          owed: json(ref.owed),
          owedCount: ref.owed.length,
        });
        // the same analysis of the simulation alone (no store)
        const sim = perturb(config, c.seed, { variants: 4, every: 8 });
        expect(sim.points).toEqual(ref.points);
        expect(json(sim.owed)).toEqual(json(ref.owed));
        // only the last 3 points: the simulation resumes from the stored checkpoint before them
        const last = perturbTrace(db, String(t.trace), { variants: 4, every: 8, points: 3 });
        expect(last.examinedFrom).toBeGreaterThan(0);
        expect(last.points).toEqual(ref.points.filter((p) => p.seq >= last.examinedFrom));
        if (ref.lastAvoidableAt !== null && ref.lastAvoidableAt >= last.examinedFrom) {
          expect(last.inevitableAt).toBe(ref.inevitableAt);
          expect(last.lastAvoidableAt).toBe(ref.lastAvoidableAt);
        }
      }),
      { numRuns: 8, seed: 12 },
    );
    expect(failing).toBeGreaterThan(0); // the property did compare some perturbations
  }, 120_000);
});

describe('minimize from the stored trace', () => {
  it('finds what the whole-trace minimization found, with the same number of tests', () => {
    const dir = tempDir();
    let n = 0;
    let shrunk = 0;
    fc.assert(
      fc.property(configs, (c) => {
        const config = configOf(c);
        const ref = referenceMinimize(config, c.seed);
        const got = minimize(config, c.seed);
        if (!ref) {
          expect(got).toBeNull();
          return;
        }
        shrunk++;
        const { events, ...rest } = ref;
        expect(got).toEqual(rest);
        expect(got!.after.events).toBe(events.length);
        const db = join(dir, `m${n++}.db`);
        const t = record({ db, seed: c.seed, config });
        const stored = minimizeTrace(db, String(t.trace), join(dir, `m${n}.jsonl`));
        expect({ signature: stored.signature, before: stored.before, after: stored.after, config: stored.config, tests: stored.tests }).toEqual(rest);
      }),
      { numRuns: 6, seed: 6 },
    );
    expect(shrunk).toBeGreaterThan(0);
  }, 120_000);
});
