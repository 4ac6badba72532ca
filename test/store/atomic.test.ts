// A command either completes or leaves the database exactly as it was; a database is created whole.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cli, cliJson, tempDir } from '../helpers.js';

const fileHash = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((res) => child.on('exit', (code) => res({ code, stderr })));
}

describe('failing commands change nothing', () => {
  it('minimize with an unwritable --out stores no trace', () => {
    const dir = tempDir();
    const db = join(dir, 'm.db');
    const t = cliJson(['record', '--workload', 'remap', '--path', 'iommu', '--seed', '7', '--ops', '6', '--ring', '16', '--fault', 'delay-invalidate=1', '--db', db]).trace;
    const before = fileHash(db);
    writeFileSync(join(dir, 'file'), 'x');
    const r = cli(['minimize', String(t), '--out', join(dir, 'file', 'min.jsonl'), '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dmareplay: cannot write .*min\.jsonl/);
    expect(fileHash(db)).toBe(before);
    expect(cliJson(['traces', '--db', db])).toHaveLength(1);
  });

  it('an empty or binary log stores nothing, and a new database file is not left behind', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'empty.log'), '');
    writeFileSync(join(dir, 'bin.log'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256)));
    for (const f of ['empty.log', 'bin.log'])
      for (const fmt of ['qemu-log', 'ftrace']) {
        const db = join(dir, `${f}.${fmt}.db`);
        const r = cli(['import', '--format', fmt, join(dir, f), '--db', db]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(existsSync(db)).toBe(false);
      }
    const db = join(dir, 'has.db');
    cliJson(['record', '--ops', '2', '--db', db]);
    const before = fileHash(db);
    expect(cli(['import', '--format', 'ftrace', join(dir, 'bin.log'), '--db', db]).code).toBe(1);
    expect(fileHash(db)).toBe(before);
  });

  it('a damaged checkpoint or event stream is exit 3 naming what differs', () => {
    const dir = tempDir();
    const db = join(dir, 'v.db');
    const t = cliJson(['record', '--ops', '40', '--checkpoint-every', '300', '--db', db]).trace;
    const imp = join(dir, 'v.jsonl');
    writeFileSync(imp, cli(['export', String(t), '--db', db]).stdout);
    const t2 = cliJson(['import', imp, '--db', db]).trace;
    const h = new Database(db);
    const ck = h.prepare('SELECT seq FROM checkpoints WHERE trace = ? ORDER BY seq LIMIT 1').get(t) as { seq: number };
    // a memory byte of the checkpointed world: the trace's first stored page content, written with its first checkpoint
    const page = h.prepare('SELECT id, data FROM pages WHERE id = (SELECT min(page) FROM trace_pages WHERE trace = ?)').get(t) as { id: number; data: Buffer };
    const bad = Buffer.from(page.data);
    bad[bad.length - 1]! ^= 0xff;
    h.prepare('UPDATE pages SET data = ? WHERE id = ?').run(bad, page.id);
    const ev = h.prepare('SELECT id, data FROM events WHERE trace = ? ORDER BY id LIMIT 1').get(t2) as { id: number; data: Buffer };
    const d = Buffer.from(ev.data);
    d[6]! ^= 1; // the first event's cause (u32 length, u8 kind, u8 actor, u32 cause): still decodes

    h.prepare('UPDATE events SET data = ? WHERE id = ?').run(d, ev.id);
    h.close();
    const st = cli(['state', String(t), '--at', String(ck.seq + 1), '--db', db]);
    expect(st.code).toBe(3);
    expect(st.stderr).toMatch(/checkpoint after #\d+ hashes to .* not to its stored state hash/);
    expect(cli(['replay', String(t), '--db', db]).code).toBe(3);
    const rep = cli(['replay', String(t2), '--db', db]);
    expect(rep.code).toBe(3);
    expect(rep.stderr).toMatch(/its stored events hash to/);
    const h2 = new Database(db);
    h2.prepare('UPDATE traces SET events = events + 1 WHERE id = ?').run(t2);
    h2.prepare(`UPDATE events SET data = CAST(data AS TEXT) WHERE id = (SELECT min(id) FROM events WHERE trace = ?)`).run(t);
    h2.close();
    expect(cli(['replay', String(t2), '--db', db]).stderr).toMatch(/traces\.events says \d+ events, the database holds \d+/);
    const txt = cli(['log', String(t), '--db', db]);
    expect(txt.code).toBe(1);
    expect(txt.stderr).toMatch(/stored as TEXT, not a blob/);
  });
});

describe('creating a database', () => {
  it('two first records at once both succeed', async () => {
    const db = join(tempDir(), 'first.db');
    const [a, b] = await Promise.all([run(['record', '--ops', '30', '--db', db]), run(['record', '--ops', '30', '--seed', '2', '--db', db])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(cliJson(['traces', '--db', db])).toHaveLength(2);
  });

  it('a database an old version left half made is named, and repaired by the next write', () => {
    const db = join(tempDir(), 'half.db');
    const h = new Database(db);
    h.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('store_version', '1'), ('event_schema', '1')`);
    h.close();
    const r = cli(['traces', '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/incomplete \(no traces table/);
    expect(cli(['record', '--ops', '2', '--db', db]).code).toBe(0);
    expect(cliJson(['traces', '--db', db])).toHaveLength(1);
  });
});
