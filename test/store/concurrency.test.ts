// Several processes on one database: writers take turns (a busy timeout, never "database is locked"
// for a trace that gets stored), readers never wait and never write, and every trace ends intact.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayTrace } from '../../src/app/replay.js';
import { listTraces, openDb } from '../../src/store/db.js';
import { BIN, ROOT, cliJson, tempDir } from '../helpers.js';

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((res) => child.on('exit', (code) => res({ code, stdout, stderr })));
}

const fileHash = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('concurrent use of one database', () => {
  it('two writers and two readers: all finish, every trace intact, no "database is locked"', async () => {
    const db = join(tempDir(), 'c.db');
    const pre = cliJson(['record', '--ops', '20', '--db', db]).trace as number;
    const jsonl = join(ROOT, 'traces', 'catalog', 'S1.buggy.jsonl');
    const results = await Promise.all([
      run(['record', '--ops', '300', '--seed', '3', '--db', db, '--json']),
      run(['import', jsonl, '--db', db, '--json']),
      run(['replay', String(pre), '--db', db, '--json']),
      run(['log', String(pre), '--kind', 'iotlb.*', '--db', db, '--json']),
    ]);
    for (const r of results) {
      expect(r.stderr).not.toMatch(/locked|busy|internal/);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(JSON.parse(results[2]!.stdout).ok).toBe(true);
    const h = openDb(db);
    const traces = listTraces(h);
    h.close();
    expect(traces.map((t) => t.complete)).toEqual([1, 1, 1]);
    for (const t of traces) expect(replayTrace(db, String(t.id)).ok, `trace ${t.id}`).toBe(true);
  });

  it('record completes with exit 0 while another process holds the database open', async () => {
    const db = join(tempDir(), 'held.db');
    cliJson(['record', '--ops', '4', '--db', db]);
    const holder = new Database(db, { readonly: true });
    holder.prepare('SELECT count(*) FROM traces').get(); // an open reader with a read snapshot taken
    try {
      const r = await run(['record', '--ops', '800', '--seed', '5', '--db', db, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(replayTrace(db, String(out.trace))).toMatchObject({ ok: true, incomplete: false, events: out.events });
    } finally {
      holder.close();
    }
  });

  it('a writer that cannot get the lock in time says so, and stores nothing', async () => {
    const db = join(tempDir(), 'busy.db');
    cliJson(['record', '--ops', '4', '--db', db]);
    const before = fileHash(db);
    const blocker = new Database(db);
    blocker.exec('BEGIN IMMEDIATE'); // another writer in the middle of its transaction
    try {
      const jsonl = join(ROOT, 'traces', 'catalog', 'R1.buggy.jsonl');
      const r = await run(['import', jsonl, '--db', db], { DMAREPLAY_BUSY_TIMEOUT_MS: '300' });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^dmareplay: database .* is busy: another process kept it locked/);
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
    }
    const h = openDb(db);
    expect(listTraces(h)).toHaveLength(1);
    h.close();
    expect(fileHash(db)).toBe(before);
  });

  it('bisect of stored traces only reads: an unknown trace changes nothing', async () => {
    const dir = tempDir();
    const db = join(dir, 'ro.db');
    const a = cliJson(['record', '--ops', '6', '--path', 'direct', '--db', db]).trace;
    const b = cliJson(['record', '--ops', '6', '--path', 'iommu', '--db', db]).trace;
    const before = fileHash(db);
    const miss = await run(['bisect', String(a), '99', '--db', db]);
    expect(miss.code).toBe(1);
    expect(fileHash(db)).toBe(before); // an unknown trace changes nothing, not even header bytes
    const r = await run(['bisect', String(a), String(b), '--db', db, '--json']);
    expect([0, 4]).toContain(r.code); // 4: a divergence found (a result)
    expect(JSON.parse(r.stdout)).toHaveProperty('diverged');
  });
});
