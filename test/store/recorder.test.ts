import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import { encodeCheckpoint, stateHash } from '../../src/engine/snapshot.js';
import { Sim } from '../../src/sim/sim.js';
import { checkpointHashes, getTrace, openDb, readChunks } from '../../src/store/db.js';
import { CheckpointWriter, partsBefore, partsToBlob } from '../../src/store/checkpoints.js';
import { type CheckpointPages, encodeCheckpointRow } from '../../src/store/recorder.js';
import { emptyWorld } from '../../src/model/world.js';
import { PAGE } from '../../src/model/memory.js';
import fc from 'fast-check';
import { cliJson, tempDir } from '../helpers.js';

describe('recorder', () => {
  it('encodes a checkpoint once: read back it is encodeCheckpoint(world, sim), its hash is stateHash(world), whole or as changed pages', () => {
    // one writer gets every page of every checkpoint, the other only the pages that are new objects
    // (the Sim's pipeline copies a page before writing it after a checkpoint): both store the same rows
    const db = openDb(join(tempDir(), 'ck.db'), { create: true });
    const whole = new CheckpointWriter(db, 1);
    const changed = new CheckpointWriter(db, 2);
    const last: CheckpointPages = { pfns: [], pages: [] };
    let seen = 0;
    let sent = 0;
    let pages = 0;
    const sink = {
      event() {},
      checkpoint(seq: number, world: Parameters<typeof stateHash>[0], sim: Parameters<typeof encodeCheckpoint>[1]) {
        const all = encodeCheckpointRow(seq, world, sim);
        const some = encodeCheckpointRow(seq, world, sim, last);
        expect(all.at).toBe(null);
        sent += some.at!.length;
        pages += world.mem.size;
        expect(whole.writeRow(all)).toBe(stateHash(world));
        expect(changed.writeRow(some)).toBe(stateHash(world));
        for (const t of [1, 2]) expect(partsToBlob(partsBefore(db, t, seq, seq)!).equals(encodeCheckpoint(world, sim))).toBe(true);
        seen++;
      },
    };
    new Sim({ workload: 'mixed', path: 'swiotlb', ops: 60, ringNum: 16, faults: [{ kind: 'skip-sync', arg: 0 }] }, '3', sink, 300).run();
    expect(seen).toBeGreaterThan(3);
    expect(sent).toBeLessThan(pages / 2); // most pages are not written between two checkpoints
    const rows = (t: number) => db.prepare(`SELECT seq, state_hash, state, pages FROM checkpoints WHERE trace = ? ORDER BY seq`).raw().all(t);
    expect(rows(2)).toEqual(rows(1));
    db.close();
  });

  it('a checkpoint of changed pages stores what the whole one does, however pages are written, added or reordered', () => {
    // a world's pages as the pipeline keeps them: a write after a checkpoint replaces the page with a
    // changed copy (model/memory.ts ownedPage); pages are added at the end; a reorder or a page
    // object under another pfn (which the pipeline never does) must still be sent as it is
    const step = fc.oneof(
      fc.record({ op: fc.constant('write' as const), page: fc.nat(), at: fc.integer({ min: 0, max: 4095 }), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('rewrite' as const), page: fc.nat() }), // a new object with the same bytes
      fc.record({ op: fc.constant('add' as const), pfn: fc.integer({ min: 0, max: 2 ** 52 - 1 }), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('reorder' as const), page: fc.nat() }),
      // the same page object under another pfn, at the same place in the map's order
      fc.record({ op: fc.constant('rename' as const), page: fc.nat(), pfn: fc.integer({ min: 0, max: 2 ** 52 - 1 }) }),
      fc.constant({ op: 'checkpoint' as const }),
    );
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
        const db = openDb(join(tempDir(), 'p.db'), { create: true });
        try {
          const whole = new CheckpointWriter(db, 1);
          const changed = new CheckpointWriter(db, 2);
          const last: CheckpointPages = { pfns: [], pages: [] };
          const world = emptyWorld();
          const key = (i: number) => [...world.mem.keys()][i % world.mem.size]!;
          let seq = 0;
          for (const s of [...steps, { op: 'checkpoint' as const }]) {
            if (s.op === 'add') {
              if (!world.mem.has(s.pfn)) world.mem.set(s.pfn, new Uint8Array(PAGE).fill(s.byte));
            } else if (s.op === 'checkpoint') {
              seq++;
              const want = stateHash(world);
              expect(whole.writeRow(encodeCheckpointRow(seq, world, null))).toBe(want);
              expect(changed.writeRow(encodeCheckpointRow(seq, world, null, last))).toBe(want);
              for (const t of [1, 2]) expect(partsToBlob(partsBefore(db, t, seq, seq)!).equals(encodeCheckpoint(world, null))).toBe(true);
            } else if (s.op === 'rename') {
              if (!world.mem.size || world.mem.has(s.pfn)) continue;
              const from = key(s.page);
              const entries = [...world.mem];
              world.mem.clear();
              for (const [pfn, page] of entries) world.mem.set(pfn === from ? s.pfn : pfn, page);
            } else if (world.mem.size) {
              const pfn = key(s.page);
              const copy = new Uint8Array(world.mem.get(pfn)!);
              if (s.op === 'write') copy[s.at] = s.byte;
              if (s.op === 'reorder') world.mem.delete(pfn);
              world.mem.set(pfn, copy);
            }
          }
          const rows = (t: number) => db.prepare(`SELECT seq, state_hash, state, pages FROM checkpoints WHERE trace = ? ORDER BY seq`).raw().all(t);
          expect(rows(2)).toEqual(rows(1));
        } finally {
          db.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  // The built CLI hands a long recording to its writer thread; written here (from sources) the same
  // recording stays on one thread. Both must store the same trace.
  it('a recording written by the writer thread equals one written inline', () => {
    const dir = tempDir();
    const viaCli = join(dir, 'cli.db');
    const r = cliJson<{ trace: number; events: number; hash: string }>(['record', '--ops', '700', '--ring', '16', '--fault', 'delay-invalidate=1', '--checkpoint-every', '3000', '--db', viaCli]);
    expect(r.events).toBeGreaterThan(64 * 256 * 1.5); // well past the hand-over
    const h = openDb(viaCli);
    const t = getTrace(h, r.trace);
    const inline = join(dir, 'inline.db');
    const again = record({ db: inline, config: JSON.parse(t.config), seed: t.seed!, checkpointEvery: 3000 });
    expect(again.hash).toBe(r.hash);
    expect(again.events).toBe(r.events);
    const h2 = openDb(inline);
    const t2 = getTrace(h2, again.trace);
    expect(t2.complete).toBe(1);
    expect(t2.events).toBe(t.events);
    expect(t2.findings).toBe(t.findings);
    expect([...checkpointHashes(h2, t2)]).toEqual([...checkpointHashes(h, t)]);
    const a = [...readChunks(h, t)].map((c) => c.data.toString('base64')).join('');
    const b = [...readChunks(h2, t2)].map((c) => c.data.toString('base64')).join('');
    expect(a === b).toBe(true);
    h.close();
    h2.close();
  });
});
