// Content-addressed checkpoints (src/store/checkpoints.ts): what is read back is the world that was
// written, seek from them equals a fold from the start, page contents are stored once across
// checkpoints and traces, deleting a trace keeps the pages others use, and a database written by
// store version 1 reads, replays, seeks and migrates.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { copyFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import { replayTrace } from '../../src/app/replay.js';
import { stateAt } from '../../src/app/state.js';
import { JUDGE } from '../../src/check/index.js';
import { fold } from '../../src/engine/replay.js';
import { seek } from '../../src/engine/seek.js';
import { decodeCheckpoint, stateHash } from '../../src/engine/snapshot.js';
import type { SimConfig } from '../../src/sim/config.js';
import {
  checkpointAt,
  checkpointBefore,
  checkpointHashes,
  closeWritable,
  deleteTrace,
  getTrace,
  listTraces,
  openDb,
  readChunks,
  STORE_VERSION,
  verifyCheckpoints,
} from '../../src/store/db.js';
import { tempDir } from '../helpers.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'store-v1.sqlite');

const WORKLOADS = ['remap', 'net-rx', 'net-tx', 'blk-write', 'mixed'] as const;
const PATHS = ['iommu', 'swiotlb', 'dma-direct'] as const;

/** Rows of a table (a count the assertions compare, read on a connection of its own). */
function count(path: string, sql: string, ...args: unknown[]): number {
  const h = new Database(path, { readonly: true });
  try {
    return h.prepare(sql).pluck().get(...args) as number;
  } finally {
    h.close();
  }
}

describe('content-addressed checkpoints', () => {
  it('a checkpoint read back is the world written (its state hash), and seek to N equals a fold to N', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...WORKLOADS),
        fc.constantFrom(...PATHS),
        fc.integer({ min: 6, max: 24 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 40, max: 400 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 3, maxLength: 6 }),
        (workload, path, ops, seed, every, at) => {
          const db = join(tempDir(), 'p.db');
          const config: SimConfig = { workload, path, ops, ringNum: 16, faults: [] };
          const hashes = new Map<number, string>();
          // the hashes the simulation's worlds had when they were checkpointed
          const r = record({ db, config, seed: String(seed), checkpointEvery: every });
          const h = openDb(db);
          try {
            const trace = getTrace(h, r.trace);
            for (const [seq, hash] of checkpointHashes(h, trace)) hashes.set(seq, hash);
            // one at the first actor-step boundary after every `every` events
            if (r.events > 3 * every) expect(hashes.size).toBeGreaterThanOrEqual(2);
            for (const [seq, hash] of hashes) {
              const ck = checkpointAt(h, trace.id, seq, trace.events)!;
              expect(ck.seq).toBe(seq);
              expect(stateHash(ck.world)).toBe(hash);
              const full = fold(readChunks(h, trace, 1, seq), JUDGE, { to: seq }).world;
              expect(stateHash(full)).toBe(hash);
              // the blob form reads back to the same world
              const blob = checkpointBefore(h, trace, seq)!;
              expect(stateHash(decodeCheckpoint(seq, blob.state).world)).toBe(hash);
            }
            for (const x of at) {
              const n = 1 + Math.floor(x * (r.events - 1));
              const ck = checkpointAt(h, trace.id, n, trace.events);
              const s = seek(ck, readChunks(h, trace, (ck?.seq ?? 0) + 1, n), n, JUDGE);
              const nearest = Math.max(0, ...[...hashes.keys()].filter((seq) => seq <= n));
              expect(s.fromCheckpoint).toBe(nearest);
              expect(s.folded).toBe(n - nearest);
              expect(stateHash(s.world)).toBe(stateHash(fold(readChunks(h, trace, 1, n), JUDGE, { to: n }).world));
            }
          } finally {
            h.close();
          }
        },
      ),
      { numRuns: 6, seed: 12 },
    );
  });

  it('stores each page content once, across checkpoints and traces; deleting a trace keeps the pages another uses', () => {
    const db = join(tempDir(), 'd.db');
    const config: SimConfig = { workload: 'net-rx', path: 'iommu', ops: 40, ringNum: 16, faults: [] };
    const a = record({ db, config, seed: '5', checkpointEvery: 100 });
    const refs = (trace: number) => {
      const h = openDb(db);
      try {
        const t = getTrace(h, trace);
        let n = 0;
        for (const [seq] of checkpointHashes(h, t)) n += checkpointAt(h, trace, seq, t.events)!.world.mem.size;
        return n;
      } finally {
        h.close();
      }
    };
    const pagesA = count(db, `SELECT count(*) FROM pages`);
    // within a trace: far fewer contents than page references (most pages do not change between checkpoints)
    expect(pagesA).toBeLessThan(refs(a.trace) / 2);
    expect(count(db, `SELECT count(*) FROM pages`)).toBe(count(db, `SELECT count(DISTINCT hash) FROM pages`));
    // the same run again: every page content is already there
    const b = record({ db, config, seed: '5', checkpointEvery: 100 });
    expect(count(db, `SELECT count(*) FROM pages`)).toBe(pagesA);
    expect(count(db, `SELECT count(*) FROM trace_pages WHERE trace = ?`, b.trace)).toBe(pagesA);
    // another seed shares some contents (the rings start the same), adds its own
    const c = record({ db, config, seed: '6', checkpointEvery: 100 });
    const pagesC = count(db, `SELECT count(*) FROM trace_pages WHERE trace = ?`, c.trace);
    expect(count(db, `SELECT count(*) FROM pages`)).toBeLessThan(pagesA + pagesC);
    // record writes bisect's per-operation table; it goes with its trace
    expect(count(db, `SELECT count(*) FROM op_table WHERE trace = ?`, a.trace)).toBe(1);
    deleteTrace(db, a.trace);
    expect(count(db, `SELECT count(*) FROM op_table WHERE trace = ?`, a.trace)).toBe(0);
    expect(count(db, `SELECT count(*) FROM op_table`)).toBe(2);
    expect(count(db, `SELECT count(*) FROM pages`)).toBe(count(db, `SELECT count(DISTINCT page) FROM trace_pages`));
    const h = openDb(db);
    for (const t of listTraces(h)) expect(verifyCheckpoints(h, t)).toBeGreaterThan(0);
    h.close();
    deleteTrace(db, b.trace);
    deleteTrace(db, c.trace);
    expect(count(db, `SELECT count(*) FROM pages`)).toBe(0);
    expect(count(db, `SELECT count(*) FROM trace_pages`)).toBe(0);
  });

  it('a damaged or missing page is named as the checkpoint that uses it', () => {
    const db = join(tempDir(), 'x.db');
    const r = record({ db, config: { workload: 'remap', path: 'iommu', ops: 20, ringNum: 16, faults: [] }, seed: '1', checkpointEvery: 200 });
    const w = new Database(db);
    const id = w.prepare(`SELECT max(id) FROM pages`).pluck().get() as number;
    w.prepare(`UPDATE pages SET data = x'01' WHERE id = ?`).run(id);
    w.close();
    const h = openDb(db);
    const t = getTrace(h, r.trace);
    expect(() => verifyCheckpoints(h, t)).toThrow(/checkpoint after #\d+ hashes to .* not to its stored state hash/);
    h.close();
    const w2 = new Database(db);
    w2.prepare(`DELETE FROM pages WHERE id = ?`).run(id);
    w2.close();
    const h2 = openDb(db);
    expect(() => verifyCheckpoints(h2, getTrace(h2, r.trace))).toThrow(new RegExp(`names page ${id}, which is missing`));
    h2.close();
  });
});

describe('a database written by store version 1 (whole-blob checkpoints)', () => {
  it('reads, seeks and replays as it is, then migrates on the first write with the same state hashes', () => {
    const db = join(tempDir(), 'v1.db');
    copyFileSync(FIXTURE, db);
    const before = statSync(db).size;
    const h = openDb(db);
    expect(h.prepare(`SELECT value FROM meta WHERE key = 'store_version'`).pluck().get()).toBe('1');
    const traces = listTraces(h);
    expect(traces.length).toBeGreaterThanOrEqual(2);
    const hashes = new Map(traces.map((t) => [t.id, [...checkpointHashes(h, t)]]));
    const states = new Map<string, string>();
    for (const t of traces) {
      expect(verifyCheckpoints(h, t)).toBeGreaterThan(1);
      for (const at of [1, Math.floor(t.events / 2), t.events - 3, t.events]) {
        const s = stateAt(db, String(t.id), { at });
        expect(s.stateHash).toBe(stateHash(fold(readChunks(h, t, 1, at), JUDGE, { to: at }).world));
        states.set(`${t.id}@${at}`, s.stateHash);
      }
    }
    h.close();
    for (const t of traces) expect(replayTrace(db, String(t.id)).ok).toBe(true);
    expect(statSync(db).size).toBe(before); // nothing was written

    // the first write migrates: a new recording into the same file
    const added = record({ db, config: { workload: 'remap', path: 'iommu', ops: 10, ringNum: 16, faults: [] }, seed: '9', checkpointEvery: 200 });
    const m = openDb(db);
    expect(m.prepare(`SELECT value FROM meta WHERE key = 'store_version'`).pluck().get()).toBe(String(STORE_VERSION));
    expect(m.prepare(`SELECT count(*) FROM checkpoints WHERE pages IS NULL`).pluck().get()).toBe(0);
    for (const t of traces) {
      const now = getTrace(m, t.id);
      expect([...checkpointHashes(m, now)]).toEqual(hashes.get(t.id));
      expect(verifyCheckpoints(m, now)).toBe(hashes.get(t.id)!.length);
    }
    m.close();
    for (const [key, hash] of states) {
      const [id, at] = key.split('@');
      expect(stateAt(db, id!, { at: Number(at) }).stateHash).toBe(hash);
    }
    for (const t of [...traces.map((t) => t.id), added.trace]) expect(replayTrace(db, String(t)).ok).toBe(true);
    // and it stays a valid store for later writes
    const w = openDb(db, { create: true });
    closeWritable(w);
  });
});
