// Replay in checkpoint segments (src/app/replay-parallel.ts) must report exactly what one run from
// the seed reports: the same first mismatch (seq, reason, recorded and replayed event), the same
// number of verified checkpoint hashes, the same error, whatever the number of segments or workers.
// The segments run here on this thread (the joining logic is the same; the worker threads are
// exercised through the built CLI at the end).
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import { replayTrace, replayTraceParallel } from '../../src/app/replay.js';
import { inlineSegmentRunner, planSegments } from '../../src/app/replay-parallel.js';
import runSegment from '../../src/app/replay-worker.js';
import type { TraceRow } from '../../src/store/db.js';
import { decodeChunk, EventWriter } from '../../src/events/binary.js';
import type { SimConfig } from '../../src/sim/config.js';
import { cli, tempDir } from '../helpers.js';

const EVERY = 64;
const remap: SimConfig = { workload: 'remap', path: 'iommu', ops: 120, ringNum: 16, faults: [] };

/** Replays one way; an error is a result too (its class and message). */
async function outcome(run: () => unknown): Promise<unknown> {
  try {
    return await run();
  } catch (e) {
    return { threw: (e as Error).constructor.name, message: (e as Error).message };
  }
}

const single = (db: string, id: number) => outcome(() => replayTrace(db, String(id)));
const segmented = (db: string, id: number, segments: number) =>
  outcome(() => replayTraceParallel(db, String(id), { runner: inlineSegmentRunner(), segmentsPerJob: segments, minSegmentEvents: 1 }));

function recorded(config: SimConfig = remap, seed = '3', checkpointEvery = EVERY): { db: string; id: number; events: number } {
  const db = join(tempDir(), 't.db');
  const r = record({ db, config, seed, checkpointEvery });
  return { db, id: r.trace, events: r.events };
}

function checkpointSeqs(db: string, id: number): number[] {
  const h = new Database(db, { readonly: true });
  try {
    return (h.prepare('SELECT seq FROM checkpoints WHERE trace = ? ORDER BY seq').all(id) as { seq: number }[]).map((r) => r.seq);
  } finally {
    h.close();
  }
}

/** Changes the event at `seq` (decoded, changed, re-encoded in its chunk) as a damaged or forged recording would. */
function tamperEvent(db: string, id: number, seq: number, change: (ev: any) => void): void {
  const h = new Database(db);
  try {
    const row = h.prepare('SELECT id, seq0, n, data FROM events WHERE trace = ? AND seq0 <= ? AND seq0 + n > ?').get(id, seq, seq) as { id: number; seq0: number; n: number; data: Buffer };
    const evs = decodeChunk(row.data, row.seq0, row.n);
    change(evs[seq - row.seq0]);
    const w = new EventWriter();
    for (const e of evs) w.write(e);
    h.prepare('UPDATE events SET data = ? WHERE id = ?').run(Buffer.from(w.bytes()), row.id);
  } finally {
    h.close();
  }
}

/** Flips one byte of the stored chunk holding `seq` (it may no longer decode). */
function flipByte(db: string, id: number, seq: number, at: number, mask: number): void {
  const h = new Database(db);
  try {
    const row = h.prepare('SELECT id, data FROM events WHERE trace = ? AND seq0 <= ? AND seq0 + n > ?').get(id, seq, seq) as { id: number; data: Buffer };
    const data = Buffer.from(row.data);
    data[at % data.length] ^= mask;
    h.prepare('UPDATE events SET data = ? WHERE id = ?').run(data, row.id);
  } finally {
    h.close();
  }
}

/**
 * Rewrites the JSON header of the stored checkpoint at `seq` (the plain world, then "sim"), in either
 * stored form: a whole blob (u32 length, header, pages), or (store version 2) the header deflated in
 * `state` with the pages stored apart.
 */
function editHeader(db: string, id: number, seq: number, edit: (head: string) => string): void {
  const h = new Database(db);
  try {
    const cols = (h.prepare(`PRAGMA table_info(checkpoints)`).all() as { name: string }[]).map((c) => c.name);
    const row = h.prepare(`SELECT state${cols.includes('pages') ? ', pages' : ''} FROM checkpoints WHERE trace = ? AND seq = ?`).get(id, seq) as { state: Buffer; pages?: Buffer | null };
    let state: Buffer;
    if (row.pages) {
      const head = inflateRawSync(row.state).toString('utf8');
      const changed = edit(head);
      expect(changed).not.toBe(head);
      state = deflateRawSync(Buffer.from(changed));
    } else {
      const n = row.state.readUInt32LE(0);
      const head = row.state.subarray(4, 4 + n).toString('utf8');
      const changed = edit(head);
      expect(changed).not.toBe(head);
      const bytes = Buffer.from(changed);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(bytes.length, 0);
      state = Buffer.concat([len, bytes, row.state.subarray(4 + n)]);
    }
    h.prepare('UPDATE checkpoints SET state = ? WHERE trace = ? AND seq = ?').run(state, id, seq);
  } finally {
    h.close();
  }
}

describe('segmented replay = one run from the seed', () => {
  it('plans segments at checkpoints, each from where the one before stops', () => {
    const cks = [100, 200, 300, 400, 500, 600, 700, 800, 900];
    const plan = planSegments(cks, 1000, 4);
    expect(plan).toEqual([
      { from: 0, stopAt: 300 }, // 200 and 300 are as near to 250: the later one
      { from: 300, stopAt: 500 },
      { from: 500, stopAt: 800 },
      { from: 800, stopAt: null },
    ]);
    expect(planSegments(cks, 1000, 4, 400)).toEqual([
      { from: 0, stopAt: 500 },
      { from: 500, stopAt: null },
    ]);
    expect(planSegments([], 1000, 4)).toEqual([{ from: 0, stopAt: null }]);
  });

  it('verifies an untouched trace the same way, in any number of segments, for several workloads and paths', async () => {
    const configs: SimConfig[] = [
      remap,
      { workload: 'net-rx', path: 'iommu', ops: 40, ringNum: 16, faults: [] },
      { workload: 'mixed', path: 'swiotlb', ops: 40, ringNum: 16, faults: [] },
      { workload: 'blk-write', path: 'iommu-lazy', ops: 12, ringNum: 16, faults: [{ kind: 'evict-iotlb', arg: 3 }] },
      { workload: 'net-tx', path: 'iommu', ops: 40, ringNum: 16, faults: [], schedule: { strategy: 'pct', depth: 3, steps: 200 } },
    ];
    for (const config of configs) {
      const t = recorded(config, '11', 256);
      const want = await single(t.db, t.id);
      expect(want, config.workload).toMatchObject({ ok: true, events: t.events });
      expect((want as { checkpoints: number }).checkpoints).toBeGreaterThan(3);
      for (const n of [3, 1000]) expect(await segmented(t.db, t.id, n), `${config.workload} in ${n} segments`).toEqual(want);
    }
  });

  it('reports the same first mismatch for a changed event anywhere (property)', async () => {
    const t = recorded();
    const cks = checkpointSeqs(t.db, t.id);
    expect(cks.length).toBeGreaterThan(8);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: t.events }), fc.integer({ min: 2, max: 12 }), async (seq, segments) => {
        const db = join(tempDir(), 't.db');
        const src = new Database(t.db, { readonly: true });
        await src.backup(db);
        src.close();
        tamperEvent(db, t.id, seq, (ev) => (ev.actor = ev.actor === 'cpu0' ? 'vmm' : 'cpu0'));
        const want = await single(db, t.id);
        expect(want).toMatchObject({ ok: false, mismatch: { seq } });
        expect(await segmented(db, t.id, segments)).toEqual(want);
      }),
      { numRuns: 12, seed: 12 },
    );
  });

  it('gives the same result or error for a flipped byte in the recording (property)', async () => {
    const t = recorded();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: t.events }), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 2, max: 9 }), async (seq, at, mask, segments) => {
        const db = join(tempDir(), 't.db');
        const src = new Database(t.db, { readonly: true });
        await src.backup(db);
        src.close();
        flipByte(db, t.id, seq, at, mask);
        const want = await single(db, t.id);
        expect(want).not.toMatchObject({ ok: true });
        expect(await segmented(db, t.id, segments)).toEqual(want);
      }),
      { numRuns: 12, seed: 7 },
    );
  });

  it('reports a damaged checkpoint hash in a middle segment at that checkpoint', async () => {
    const t = recorded();
    const cks = checkpointSeqs(t.db, t.id);
    const mid = cks[Math.floor(cks.length / 2)]!;
    const h = new Database(t.db);
    h.prepare(`UPDATE checkpoints SET state_hash = ? WHERE trace = ? AND seq = ?`).run('0'.repeat(64), t.id, mid);
    h.close();
    const want = await single(t.db, t.id);
    expect(want).toMatchObject({ ok: false, mismatch: { seq: mid, reason: expect.stringMatching(/state hash at checkpoint/) } });
    for (const n of [2, 3, 7, 1000]) expect(await segmented(t.db, t.id, n)).toEqual(want);
  });

  it('reports a damaged checkpoint state as one run does: after verifying every event', async () => {
    const t = recorded();
    const cks = checkpointSeqs(t.db, t.id);
    const mid = cks[Math.floor(cks.length / 2)]!;
    // a number in the world's part of the header: the blob no longer hashes to its state hash
    editHeader(t.db, t.id, mid, (head) => head.replace(/^(\{"world":\{[^0-9]*)(\d)/, (_m, pre: string, d: string) => pre + ((Number(d) + 1) % 10)));
    const want = await single(t.db, t.id);
    expect(want).toMatchObject({ threw: 'IntegrityError', message: expect.stringMatching(new RegExp(`checkpoint after #${mid}`)) });
    for (const n of [2, 3, 7, 1000]) expect(await segmented(t.db, t.id, n)).toEqual(want);
  });

  it('does not resume from a checkpoint whose simulation state differs from the run (the state hash leaves it out)', async () => {
    // a scheduler that draws: a damaged RNG state changes the run resumed from it
    const t = recorded({ workload: 'mixed', path: 'iommu', ops: 30, ringNum: 16, faults: [] }, '5', 256);
    const cks = checkpointSeqs(t.db, t.id);
    const mid = cks[Math.floor(cks.length / 2)]!;
    const next = cks[Math.floor(cks.length / 2) + 1]!;
    const trace = { ...(new Database(t.db, { readonly: true }).prepare('SELECT * FROM traces WHERE id = ?').get(t.id) as TraceRow) };
    editHeader(t.db, t.id, mid, (head) => head.replace(/"sim":\{"rng":\{"x":(-?\d+)/, (_m, x: string) => `"sim":{"rng":{"x":${(Number(x) ^ 1) | 0}`));
    // resumed from it alone, the run goes another way (so the join must not take that segment)
    expect(runSegment({ dbPath: t.db, trace, from: mid, stopAt: next })).toMatchObject({ kind: 'ran', outcome: { ok: false } });
    const want = await single(t.db, t.id);
    expect(want).toMatchObject({ ok: true, events: t.events });
    for (const k of [2, 3, 7, 1000]) expect(await segmented(t.db, t.id, k)).toEqual(want);
  });

  it('verifies the prefix of a truncated recording the same way', async () => {
    const t = recorded();
    const cut = Math.floor(t.events / 2 / 256) * 256 + 256; // a killed recording keeps whole committed chunks
    const h = new Database(t.db);
    h.prepare('UPDATE traces SET complete = 0, hash = NULL, events = ? WHERE id = ?').run(cut, t.id);
    h.prepare('DELETE FROM events WHERE trace = ? AND seq0 > ?').run(t.id, cut);
    h.prepare('DELETE FROM checkpoints WHERE trace = ? AND seq > ?').run(t.id, cut);
    h.close();
    const want = await single(t.db, t.id);
    expect(want).toMatchObject({ ok: true, incomplete: true, events: cut });
    for (const n of [2, 3, 1000]) expect(await segmented(t.db, t.id, n)).toEqual(want);
  });

  it('reports a changed stream hash after an ok run, as one run does', async () => {
    const t = recorded();
    const h = new Database(t.db);
    h.prepare(`UPDATE traces SET hash = ? WHERE id = ?`).run('f'.repeat(64), t.id);
    h.close();
    const want = await single(t.db, t.id);
    expect(want).toMatchObject({ threw: 'IntegrityError', message: expect.stringMatching(/stored events hash to/) });
    expect(await segmented(t.db, t.id, 4)).toEqual(want);
  });
});

describe('replay --jobs (worker threads, built CLI)', () => {
  it('reports the same first mismatch and exit code with 1 and 2 workers', () => {
    const db = join(tempDir(), 't.db');
    // long enough for two segments of PARALLEL_MIN_SEGMENT events; threads even below PARALLEL_MIN_EVENTS
    const r = record({ db, config: { workload: 'remap', path: 'iommu', ops: 3200, ringNum: 256, faults: [] }, seed: '1', checkpointEvery: 4096 });
    expect(r.events).toBeGreaterThan(200_000);
    const env = { DMAREPLAY_PARALLEL_MIN_EVENTS: '0' };
    const ok1 = cli(['replay', String(r.trace), '--db', db, '--jobs', '1', '--json']);
    const ok2 = cli(['replay', String(r.trace), '--db', db, '--jobs', '2', '--json'], { env });
    expect(ok1.code).toBe(0);
    expect(ok2.code).toBe(0);
    expect(JSON.parse(ok2.stdout)).toEqual(JSON.parse(ok1.stdout));
    const seq = Math.floor(r.events * 0.7);
    tamperEvent(db, r.trace, seq, (ev) => (ev.actor = ev.actor === 'cpu0' ? 'vmm' : 'cpu0'));
    const bad1 = cli(['replay', String(r.trace), '--db', db, '--jobs', '1', '--json']);
    const bad2 = cli(['replay', String(r.trace), '--db', db, '--jobs', '2', '--json'], { env });
    expect(bad1.code).toBe(3);
    expect(bad2.code).toBe(3);
    expect(JSON.parse(bad1.stdout).mismatch.seq).toBe(seq);
    expect(JSON.parse(bad2.stdout)).toEqual(JSON.parse(bad1.stdout));
    // and in the first segment, which the main thread re-executes while a worker runs the second
    const early = Math.floor(r.events * 0.2);
    tamperEvent(db, r.trace, early, (ev) => (ev.actor = ev.actor === 'cpu0' ? 'vmm' : 'cpu0'));
    const first1 = cli(['replay', String(r.trace), '--db', db, '--jobs', '1', '--json']);
    const first2 = cli(['replay', String(r.trace), '--db', db, '--jobs', '2', '--json'], { env });
    expect(first1.code).toBe(3);
    expect(JSON.parse(first1.stdout).mismatch.seq).toBe(early);
    expect({ code: first2.code, out: JSON.parse(first2.stdout) }).toEqual({ code: first1.code, out: JSON.parse(first1.stdout) });
    const usage = cli(['replay', String(r.trace), '--db', db, '--jobs', '0']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--jobs/);
  }, 120_000);

  it('reports a changed stream hash, then a damaged checkpoint, with 2 workers as with 1 (the store checks run on the joining thread)', () => {
    const db = join(tempDir(), 't.db');
    const r = record({ db, config: { workload: 'remap', path: 'iommu', ops: 3200, ringNum: 256, faults: [] }, seed: '2', checkpointEvery: 4096 });
    expect(r.events).toBeGreaterThan(200_000);
    const env = { DMAREPLAY_PARALLEL_MIN_EVENTS: '0' };
    const both = () => [cli(['replay', String(r.trace), '--db', db, '--jobs', '1']), cli(['replay', String(r.trace), '--db', db, '--jobs', '2'], { env })] as const;
    const h = new Database(db);
    const hash = (h.prepare(`SELECT hash FROM traces WHERE id = ?`).get(r.trace) as { hash: string }).hash;
    h.prepare(`UPDATE traces SET hash = ? WHERE id = ?`).run('f'.repeat(64), r.trace);
    h.close();
    const [s1, s2] = both();
    expect(s1.code).toBe(3); // IntegrityError
    expect(s1.stderr).toMatch(/stored events hash to/);
    expect({ code: s2.code, stderr: s2.stderr }).toEqual({ code: s1.code, stderr: s1.stderr });
    const h2 = new Database(db);
    h2.prepare(`UPDATE traces SET hash = ? WHERE id = ?`).run(hash, r.trace);
    h2.close();
    // a checkpoint in the first quarter: no segment resumes from it, so only the store check reads it
    const cks = checkpointSeqs(db, r.trace);
    const early = cks[Math.floor(cks.length / 4)]!;
    editHeader(db, r.trace, early, (head) => head.replace(/^(\{"world":\{[^0-9]*)(\d)/, (_m, pre: string, d: string) => pre + ((Number(d) + 1) % 10)));
    const [c1, c2] = both();
    expect(c1.code).toBe(3);
    expect(c1.stderr).toMatch(new RegExp(`checkpoint after #${early}`));
    expect({ code: c2.code, stderr: c2.stderr }).toEqual({ code: c1.code, stderr: c1.stderr });
  }, 120_000);
});
