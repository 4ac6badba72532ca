// Property: whatever a mutated real input holds (see mutate.ts), importing it ends in bounded time
// (the vitest timeout is the guard: every run must finish) with a good trace or a typed error —
// never an internal error, never a silent accept of impossible data, and never a change to the trace
// that was already stored. CI runs FUZZ_COUNT (default 150) mutants from a fixed seed across the
// three formats; `npm run fuzz -- --seed N --count M` runs more (run.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BAD, Harness, type Verdict } from './harness.js';
import { loadCorpus, mutate, partnerOf } from './mutate.js';
import { ROOT, tempDir } from '../helpers.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 150);
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);

describe('fuzz: mutated real inputs through every parser and the JSONL import', () => {
  it(`${COUNT} mutants (seed ${SEED}): only typed errors, no silent accepts, stored traces unchanged`, async () => {
    const corpus = loadCorpus(ROOT);
    const by = (f: string) => corpus.filter((s) => s.format === f);
    const h = new Harness(tempDir());
    await h.setup(corpus);
    const tally = new Map<string, number>();
    const bad: string[] = [];
    // fc.check, not fc.assert: a failure is reported as (source, seed, operator), not as the whole input
    const run = await fc.check(
      fc.asyncProperty(fc.oneof(fc.constantFrom(...by('jsonl')), fc.constantFrom(...by('qemu-log')), fc.constantFrom(...by('ftrace'))), fc.nat(), fc.boolean(), async (src, seed, strict) => {
        const m = mutate(src, seed);
        const o = await h.run(m, { strict: strict && seed % 3 === 0, auto: seed % 5 === 0, partner: seed % 4 === 1 ? partnerOf(src, corpus) : undefined });
        const key = `${m.format} ${o.verdict}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
        if ((BAD as Verdict[]).includes(o.verdict)) bad.push(`${src.name} seed ${seed} ${m.op}: ${o.verdict}: ${o.detail.slice(0, 300)}`);
        return !(BAD as Verdict[]).includes(o.verdict);
      }),
      { seed: SEED, numRuns: COUNT, endOnFailure: true },
    );
    expect(run.failed ? bad : [], `fast-check seed ${SEED}`).toEqual([]);
    expect(bad).toEqual([]);
    // meaningful: every format was both refused and imported
    for (const f of ['jsonl', 'qemu-log', 'ftrace']) {
      expect(tally.get(`${f} rejected`) ?? 0, `${f} rejected`).toBeGreaterThan(0);
      expect(tally.get(`${f} accepted`) ?? 0, `${f} accepted`).toBeGreaterThan(0);
    }
  });
});
