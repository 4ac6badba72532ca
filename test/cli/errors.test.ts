import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson, tempDir } from '../helpers.js';

function fingerprint(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

/** Runs a command that must fail: one line on stderr, no stack, the given exit code, and the DB directory unchanged. */
function fails(dir: string, args: string[], code: number, message: RegExp) {
  const before = fingerprint(dir);
  const r = cli(args, { cwd: dir });
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^dmareplay: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(fingerprint(dir)).toBe(before);
}

describe('bad input: one line, documented exit code, nothing changed', () => {
  let dir: string;
  let db: string;
  let trace: number;
  beforeAll(() => {
    dir = tempDir();
    db = join(dir, 'good.db');
    trace = cliJson(['record', '--ops', '12', '--db', db]).trace;
  });

  it('unknown trace id', () => fails(dir, ['replay', '99', '--db', db], 1, /no trace 99/));
  it('a trace id that is not a number', () => fails(dir, ['log', 'abc', '--db', db], 2, /trace id must be a positive integer/));
  it('a database that does not exist', () => fails(dir, ['traces', '--db', join(dir, 'missing.db')], 1, /does not exist/));
  it('a file that is not SQLite', () => {
    writeFileSync(join(dir, 'text.db'), 'hello, not a database\n'.repeat(50));
    fails(dir, ['traces', '--db', join(dir, 'text.db')], 1, /not a SQLite database/);
    fails(dir, ['record', '--db', join(dir, 'text.db')], 1, /not a SQLite database/);
  });
  it('a SQLite database that is not a dmareplay one', () => {
    const other = new Database(join(dir, 'other.db'));
    other.exec('CREATE TABLE t (x)');
    other.close();
    fails(dir, ['traces', '--db', join(dir, 'other.db')], 1, /not a dmareplay one/);
    fails(dir, ['record', '--db', join(dir, 'other.db')], 1, /not a dmareplay one/);
  });
  it('a database with a newer schema version', () => {
    const p = join(dir, 'newer.db');
    cliJson(['record', '--ops', '2', '--db', p]);
    const h = new Database(p);
    h.prepare(`UPDATE meta SET value = '99' WHERE key = 'store_version'`).run();
    h.close();
    fails(dir, ['traces', '--db', p], 1, /schema version 99, newer/);
    fails(dir, ['record', '--db', p], 1, /schema version 99, newer/);
  });
  it('a trace written with a newer event schema', () => {
    const p = join(dir, 'newer-trace.db');
    const t = cliJson(['record', '--ops', '2', '--db', p]).trace;
    const h = new Database(p);
    h.prepare(`UPDATE traces SET schema_version = 42`).run();
    h.close();
    fails(dir, ['replay', String(t), '--db', p], 1, /event schema 42, newer/);
  });
  it('a corrupt trace: truncated event data', () => {
    const p = join(dir, 'corrupt.db');
    const t = cliJson(['record', '--ops', '30', '--db', p]).trace;
    const h = new Database(p);
    h.prepare(`UPDATE events SET data = substr(data, 1, length(data) - 7) WHERE id = (SELECT min(id) FROM events)`).run();
    h.close();
    fails(dir, ['replay', String(t), '--db', p], 1, /trace \d+ is corrupt/);
    fails(dir, ['log', String(t), '--db', p], 1, /trace \d+ is corrupt/);
  });
  it('a corrupt trace: a missing chunk', () => {
    const p = join(dir, 'gap.db');
    const t = cliJson(['record', '--ops', '40', '--db', p]).trace;
    const h = new Database(p);
    h.prepare(`DELETE FROM events WHERE id = (SELECT min(id) FROM events) + 1`).run();
    h.close();
    // what is stored no longer matches traces.events: a mismatch, exit 3
    fails(dir, ['replay', String(t), '--db', p], 3, /corrupt: events 257\.\.512 are missing/);
  });
  it('--at past the end', () => fails(dir, ['state', String(trace), '--at', '999999', '--db', db], 2, /past the end/));
  it('a negative seq', () => {
    fails(dir, ['state', String(trace), '--at', '-1', '--db', db], 2, /--at must be an integer/);
    fails(dir, ['log', String(trace), '--from', '-5', '--db', db], 2, /--from must be an integer/);
  });
  it('bad numbers for record', () => {
    fails(dir, ['record', '--seed', 'abc', '--db', db], 2, /--seed must be a non-negative integer/);
    fails(dir, ['record', '--ops', '1e3', '--db', db], 2, /--ops must be an integer/);
    fails(dir, ['record', '--ring', '12', '--db', db], 2, /ring size must be a power of two/);
    fails(dir, ['record', '--path', 'warp', '--db', db], 2, /unknown path "warp"/);
    fails(dir, ['record', '--workload', 'nope', '--db', db], 2, /unknown workload/);
    fails(dir, ['record', '--fault', 'melt', '--db', db], 2, /unknown fault/);
    fails(dir, ['state', String(trace), '--at', '1', '--gpa', 'zz', '--db', db], 2, /--gpa must be an address/);
  });
  it('an unwritable database path', () => {
    writeFileSync(join(dir, 'plainfile'), 'x');
    fails(dir, ['record', '--db', join(dir, 'plainfile', 'x.db')], 1, /cannot open database/);
    fails(dir, ['record', '--db', join(dir, 'no', 'such', 'dir.db')], 1, /cannot open database/);
  });
  it('unknown commands and options are usage errors', () => {
    fails(dir, ['frobnicate'], 2, /unknown command/);
    fails(dir, ['record', '--bogus'], 2, /unknown option/);
    // commander's suggestion stays on the line, readable (it was "\x0a(Did you mean …?)")
    fails(dir, ['explain', '1'], 2, /^dmareplay: unknown command 'explain' \(did you mean explore\?\)$/);
    fails(dir, ['record', '--seeed', '3'], 2, /^dmareplay: unknown option '--seeed' \(did you mean --seed\?\)$/);
  });
  it('--debug shows the stack', () => {
    const r = cli(['replay', '99', '--db', db, '--debug']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
  it('documents the exit codes in --help', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['0  success', '1  failure', '2  usage', '3  replay mismatch']) expect(r.stdout).toContain(c);
  });
});
