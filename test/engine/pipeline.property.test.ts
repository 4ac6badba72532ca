// One pipeline judges every trace: the properties that make that true, over random seeds,
// workloads, paths, ring layouts and faults (small runs, so the suite stays fast).
// - fold(export(record)): reading a recording back (through the canonical JSONL) reaches the same
//   world at every checkpoint and judges the same findings, with the same numbers, as the recording;
// - seek(at N) from the nearest checkpoint equals the fold from the start to N, for simulated traces
//   and for an imported real trace (whose checker state lives in the world).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { importTrace } from '../../src/app/import.js';
import { stateAt } from '../../src/app/state.js';
import { JUDGE } from '../../src/check/index.js';
import { chunksOf } from '../../src/engine/chunks.js';
import { fold } from '../../src/engine/replay.js';
import { seek } from '../../src/engine/seek.js';
import { type Checkpoint, decodeCheckpoint, encodeCheckpoint, stateHash, worldToPlain } from '../../src/engine/snapshot.js';
import { parseJsonl, toJsonl } from '../../src/events/jsonl.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { PATHS } from '../../src/model/types.js';
import { ConfigError, type Fault, FAULT_KINDS, type SimConfig, validateConfig } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';
import { getTrace, openDb, readChunks } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';

const WORKLOADS = ['remap', 'net-tx', 'net-rx', 'blk-read', 'blk-write', 'mixed'] as const;

const configs = fc
  .record({
    seed: fc.integer({ min: 0, max: 1_000_000 }).map(String),
    workload: fc.constantFrom(...WORKLOADS),
    path: fc.constantFrom(...PATHS),
    ops: fc.integer({ min: 20, max: 60 }),
    ringNum: fc.constantFrom(8, 16, 64),
    packed: fc.boolean(),
    faults: fc.array(fc.record({ kind: fc.constantFrom(...FAULT_KINDS), arg: fc.integer({ min: 0, max: 3 }) }), { maxLength: 2 }),
    every: fc.integer({ min: 40, max: 400 }),
  })
  .map((c) => {
    const faults: Fault[] = [];
    for (const f of c.faults) if (!faults.some((g) => g.kind === f.kind)) faults.push(f);
    return { ...c, faults };
  });

interface Recording {
  events: DmaEvent[];
  checkpoints: Checkpoint[];
  findings: { cls: string; seq: number; message: string }[];
}

function recordRun(config: SimConfig, seed: string, every: number): Recording {
  const out: Recording = { events: [], checkpoints: [], findings: [] };
  new Sim(config, seed, {
    event(ev) {
      out.events.push(structuredClone(ev));
      if (ev.kind === 'finding') out.findings.push({ cls: ev.cls, seq: ev.seq, message: ev.message });
    },
    // through the stored encoding, as a checkpoint read back from the database
    checkpoint: (seq, world, state) => out.checkpoints.push(decodeCheckpoint(seq, encodeCheckpoint(world, state))),
  }, every).run();
  return out;
}

/** A valid config from the generated one, or null when the combination is one the simulator refuses. */
function configOf(c: { workload: SimConfig['workload']; path: SimConfig['path']; ops: number; ringNum: number; packed: boolean; faults: Fault[] }): SimConfig | null {
  try {
    return validateConfig({ workload: c.workload, path: c.path, ops: c.ops, ringNum: c.ringNum, packed: c.packed, faults: c.faults });
  } catch (e) {
    if (e instanceof ConfigError) return null;
    throw e;
  }
}

describe('one pipeline, property-tested', () => {
  it('fold(export(record)) reaches the same world at every checkpoint and the same numbered findings', () => {
    let judged = 0;
    fc.assert(
      fc.property(configs, (c) => {
        const config = configOf(c);
        fc.pre(config !== null);
        const rec = recordRun(config!, c.seed, c.every);
        // export → canonical JSONL → parse: what an import reads
        const text = toJsonl({ engine: 'test', name: 'prop', source: 'sim', seed: c.seed, config, complete: true }, rec.events);
        const back = parseJsonl(text).events;
        const want = new Map(rec.checkpoints.map((k) => [k.seq, stateHash(k.world)]));
        const got = new Map<number, string>();
        const r = fold(chunksOf(back, 64), JUDGE, { onEvent: (ev, w) => void (want.has(ev.seq) && got.set(ev.seq, stateHash(w))) });
        expect(got).toEqual(want);
        expect(r.findings.map((f) => ({ cls: f.cls, seq: f.seq, message: f.message }))).toEqual(rec.findings);
        judged += rec.findings.length;
      }),
      { numRuns: 14, seed: 8 },
    );
    expect(judged).toBeGreaterThan(0); // the runs did produce findings to compare
  });

  it('seek(at N) from the nearest checkpoint equals the fold to N (simulated traces)', () => {
    fc.assert(
      fc.property(configs, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 3, maxLength: 6 }), (c, where) => {
        const config = configOf(c);
        fc.pre(config !== null);
        const rec = recordRun(config!, c.seed, c.every);
        const chunks = chunksOf(rec.events, 50);
        for (const x of where) {
          const at = 1 + Math.min(rec.events.length - 1, Math.floor(x * rec.events.length));
          const ck = rec.checkpoints.filter((k) => k.seq <= at).at(-1) ?? null;
          const s = seek(ck, chunks, at, JUDGE);
          const full = fold(chunks, JUDGE, { to: at }).world;
          expect(stateHash(s.world)).toBe(stateHash(full));
          expect(worldToPlain(s.world)).toEqual(worldToPlain(full));
          expect(s.event?.seq).toBe(at);
        }
      }),
      { numRuns: 10, seed: 9 },
    );
  });

  // An imported real trace: the real-trace checks keep their judgement in the world, so checkpoints
  // carry it and a seek must reproduce it.
  const FIX = resolve(__dirname, '../../traces/real');
  const guest = join(FIX, 'guest-vtd-lazy.p007-net-up.txt');
  const host = join(FIX, 'qemu-vtd-lazy.p007-net-up.log');
  it.skipIf(!existsSync(guest) || !existsSync(host))('seek(at N) equals the fold to N (an imported real trace, checker state included)', async () => {
    const db = join(tempDir(), 'real.db');
    const r = await importTrace({ db, guest, host, checkpointEvery: 64 });
    const h = openDb(db);
    const trace = getTrace(h, r.trace);
    let withState = 0;
    try {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: r.events }), (at) => {
          const s = stateAt(db, String(r.trace), { at });
          const full = fold(readChunks(h, trace, 1, at), JUDGE, { to: at }).world;
          expect(s.stateHash).toBe(stateHash(full));
          expect(s.world.real).toEqual(full.real); // exactly: the hash's JSON cannot tell Infinity from null
          if (full.real !== null) withState++;
        }),
        { numRuns: 25, seed: 10 },
      );
    } finally {
      h.close();
    }
    expect(withState).toBeGreaterThan(0);
    // and the whole fold judges what the import judged, numbered alike
    const all = fold(readChunks(openDb(db), getTrace(openDb(db), r.trace)), JUDGE);
    expect(all.findings.map((f) => [f.cls, f.seq])).toEqual(r.findings.map((f) => [f.class, f.seq]));
  });
});
