import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import { replayTrace } from '../../src/app/replay.js';
import { decodeChunk, EventWriter } from '../../src/events/binary.js';
import { cli, tempDir } from '../helpers.js';

const cfg = { workload: 'remap' as const, path: 'iommu' as const, ops: 30, ringNum: 16, faults: [{ kind: 'delay-invalidate' as const, arg: 1 }] };

function tamper(dbPath: string, trace: number, pick: (ev: any) => boolean, change: (ev: any) => void): number {
  const db = new Database(dbPath);
  const rows = db.prepare('SELECT id, seq0, n, data FROM events WHERE trace = ? ORDER BY id').all(trace) as { id: number; seq0: number; n: number; data: Buffer }[];
  for (const row of rows) {
    const evs = decodeChunk(row.data, row.seq0, row.n);
    const target = evs.find(pick);
    if (!target) continue;
    change(target);
    const w = new EventWriter();
    for (const e of evs) w.write(e);
    db.prepare('UPDATE events SET data = ? WHERE id = ?').run(Buffer.from(w.bytes()), row.id);
    db.close();
    return target.seq;
  }
  db.close();
  throw new Error('no event to tamper with');
}

describe('replay verification', () => {
  it('verifies an untouched trace, including checkpoint state hashes', () => {
    const db = join(tempDir(), 't.db');
    const r = record({ db, config: cfg, seed: '5', checkpointEvery: 100 });
    const rep = replayTrace(db, String(r.trace));
    expect(rep.ok).toBe(true);
    expect(rep.events).toBe(r.events);
    expect(rep.checkpoints).toBeGreaterThan(2);
  });

  it('reports the first tampered event with both versions, and exits 3', () => {
    const db = join(tempDir(), 't.db');
    const r = record({ db, config: cfg, seed: '5' });
    const seq = tamper(db, r.trace, (e) => e.kind === 'dev.access' && e.seq > 60, (e) => (e.gpa += 0x1000n));
    const rep = replayTrace(db, String(r.trace));
    expect(rep.ok).toBe(false);
    expect(rep.mismatch!.seq).toBe(seq);
    const exp = rep.mismatch!.expected as any;
    const act = rep.mismatch!.actual as any;
    expect(BigInt(exp.gpa) - BigInt(act.gpa)).toBe(0x1000n);
    const c = cli(['replay', String(r.trace), '--db', db]);
    expect(c.code).toBe(3);
    expect(c.stdout).toMatch(new RegExp(`MISMATCH at event ${seq}`));
  });

  it('catches a tampered scheduler decision', () => {
    const db = join(tempDir(), 't.db');
    const r = record({ db, config: cfg, seed: '9' });
    const seq = tamper(db, r.trace, (e) => e.kind === 'sched', (e) => (e.pick = e.pick === 'cpu0' ? 'vmm' : 'cpu0'));
    const rep = replayTrace(db, String(r.trace));
    expect(rep.ok).toBe(false);
    expect(rep.mismatch!.seq).toBe(seq);
  });

  it('catches a tampered checkpoint', () => {
    const db = join(tempDir(), 't.db');
    const r = record({ db, config: cfg, seed: '5', checkpointEvery: 100 });
    const h = new Database(db);
    h.prepare(`UPDATE checkpoints SET state_hash = 'deadbeef' WHERE trace = ? AND seq = (SELECT max(seq) FROM checkpoints WHERE trace = ?)`).run(r.trace, r.trace);
    h.close();
    const rep = replayTrace(db, String(r.trace));
    expect(rep.ok).toBe(false);
    expect(rep.mismatch!.reason).toMatch(/state hash at checkpoint/);
  });
});
