import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cli, cliJson, tempDir } from '../helpers.js';

function committedEvents(db: string): number {
  if (!existsSync(db)) return 0;
  try {
    const h = new Database(db, { readonly: true, fileMustExist: true });
    try {
      const row = h.prepare('SELECT events FROM traces ORDER BY id DESC LIMIT 1').get() as { events: number } | undefined;
      return row?.events ?? 0;
    } finally {
      h.close();
    }
  } catch {
    return 0; // schema not created yet
  }
}

describe('crash consistency', () => {
  it('a recording killed mid-run leaves a DB that opens, holds a consistent prefix, and replays', async () => {
    const db = join(tempDir(), 'crash.db');
    const child = spawn(process.execPath, [BIN, 'record', '--ops', '5000000', '--seed', '11', '--checkpoint-every', '2000', '--db', db], {
      stdio: 'ignore',
    });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    const deadline = Date.now() + 60_000;
    while (committedEvents(db) < 20_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode).toBe('SIGKILL');

    const traces = cliJson<any[]>(['traces', '--db', db]);
    expect(traces).toHaveLength(1);
    expect(traces[0].complete).toBe(false);
    const prefix = traces[0].events;
    expect(prefix).toBeGreaterThanOrEqual(20_000);
    expect(prefix % 256).toBe(0); // whole chunks only

    const rep = cli(['replay', String(traces[0].id), '--db', db]);
    expect(rep.code).toBe(0);
    expect(rep.stdout).toMatch(/incomplete/);
    expect(rep.stdout).toMatch(new RegExp(`verified ${prefix} events`));
    const json = cliJson<any>(['replay', String(traces[0].id), '--db', db]);
    expect(json).toMatchObject({ ok: true, incomplete: true, events: prefix });
    expect(json.checkpoints).toBeGreaterThan(0);

    const last = cliJson<any[]>(['log', String(traces[0].id), '--from', String(prefix), '--db', db]);
    expect(last.map((e) => e.seq)).toEqual([prefix]);
    const st = cliJson<any>(['state', String(traces[0].id), '--at', String(prefix), '--db', db]);
    expect(st.at).toBe(prefix);
  });
});
