// dmareplay run: a scenario is recorded as a full trace (replay, log, state work on it) and the
// device's behaviour is reported; bad scenarios are one-line input errors that store nothing.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliJson, tempDir } from '../helpers.js';

const EX = (f: string) => join('examples', f);

interface Report {
  trace: number;
  events: number;
  chains: { id: number; len: number; read: { gpa: string; len: number }[]; written: { gpa: string; len: number; data: string }[]; tableBytes: number }[];
  errors: { msg: string }[];
  interrupts: unknown[];
  kicks: unknown[];
  findings: unknown[];
}

describe('dmareplay run', () => {
  it('runs the README examples: the device reads the out buffers and writes the payload into the in buffer', () => {
    const db = join(tempDir(), 't.db');
    const r = cliJson<Report>(['run', EX('blk-write.jsonl'), '--db', db]);
    expect(r.chains).toHaveLength(1);
    expect(r.chains[0]!.read.map((b) => [b.gpa, b.len])).toEqual([['0x200000', 16], ['0x201000', 16]]);
    expect(r.chains[0]!.written.map((b) => [b.gpa, b.len, b.data])).toEqual([['0x202000', 1, '00']]);
    expect(r.chains[0]!.len).toBe(1);
    expect(r.errors).toEqual([]);
    expect(r.interrupts).toHaveLength(1);
    // the full trace is stored: replay re-executes it, log reads it
    expect(cli(['replay', String(r.trace), '--db', db]).code).toBe(0);
    const used = cli(['log', String(r.trace), '--db', db, '--kind', 'vring.used']);
    expect(used.stdout.trim().split('\n')).toHaveLength(1);
    // the same answer whatever the seed
    const again = cliJson<Report>(['run', EX('blk-write.jsonl'), '--db', db, '--seed', '99']);
    const noSeq = (x: Report) => x.chains.map(({ seq: _seq, ...c }: Report['chains'][number] & { seq?: number }) => c);
    expect(noSeq(again)).toEqual(noSeq(r));
  });

  it('vhost follows an indirect table in the middle of a chain; QEMU takes it for a buffer', () => {
    const db = join(tempDir(), 't.db');
    const vhost = cliJson<Report>(['run', EX('indirect-mid-chain.jsonl'), '--db', db]);
    const qemu = cliJson<Report>(['run', EX('indirect-mid-chain.jsonl'), '--db', db, '--variant', 'backend=qemu']);
    expect(vhost.chains[0]!.read.map((b) => b.gpa)).toEqual(['0x200000', '0x201000']);
    expect(vhost.chains[0]!.tableBytes).toBe(16);
    expect(qemu.chains[0]!.read.map((b) => b.gpa)).toEqual(['0x200000', '0x110000']);
    expect(qemu.chains[0]!.tableBytes).toBe(0);
  });

  it('rejects a bad scenario with one line, exit 1, and stores nothing', () => {
    const dir = tempDir();
    const db = join(dir, 't.db');
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"op":"device","dev":"00:02.0"}\n{"op":"frobnicate"}\n');
    const r = cli(['run', bad, '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/line 2: unknown op "frobnicate"/);
    expect(existsSync(db)).toBe(false);
    // a step that cannot run (a kick of a queue never set up) is found before anything is stored
    writeFileSync(bad, '{"op":"device","dev":"00:02.0"}\n{"op":"kick","q":0}\n');
    const k = cli(['run', bad, '--db', db]);
    expect(k.code).toBe(1);
    expect(k.stderr).toMatch(/kick: no queue 0/);
    expect(existsSync(db)).toBe(false);
    expect(cli(['run', join(dir, 'missing.jsonl'), '--db', db]).code).toBe(1);
    expect(cli(['run', EX('blk-write.jsonl'), '--db', db, '--path', 'nowhere']).code).toBe(2);
    expect(cli(['run', EX('blk-write.jsonl'), '--db', db, '--variant', 'backend=xen']).code).toBe(2);
  });
});
