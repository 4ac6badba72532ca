// Output at any size: a reader that stops reading ends the command at once and quietly, and a
// --json document that is streamed (findings read one at a time) is the document itself.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import { replayTrace } from '../../src/app/replay.js';
import { runSql } from '../../src/app/sql.js';
import { streamed, toJson, writeJson } from '../../cli/output.js';
import { BIN, cli, tempDir } from '../helpers.js';

let db: string;
let trace: string;
let findings: number;

beforeAll(() => {
  db = join(tempDir(), 'many.db');
  // a fault on every invalidation: hundreds of findings, and far more output than a pipe holds
  const r = record({ db, seed: '3', config: { workload: 'remap', path: 'iommu', ops: 400, ringNum: 256, faults: [{ kind: 'drop-invalidate', arg: 0 }] } });
  trace = String(r.trace);
  findings = r.findingCount;
});

/** Runs the CLI with stdout read by a reader that closes the pipe after the first line, as `| head -1` does. */
function firstLineThenClose(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; line: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let got = '';
    let stderr = '';
    let line: string | null = null;
    child.stdout.on('data', (d: Buffer) => {
      if (line !== null) return;
      got += d.toString('utf8');
      const nl = got.indexOf('\n');
      if (nl >= 0) {
        line = got.slice(0, nl);
        child.stdout.destroy(); // the reader goes away: the writer's next write gets EPIPE
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, line: line ?? got, stderr }));
  });
}

describe('a reader that closes stdout early', () => {
  for (const args of [['log'], ['log', '--json'], ['log', '--kind', 'finding'], ['export'], ['export', '--format', 'perfetto'], ['replay', '--json']])
    it(`ends ${args.join(' ')} with exit 0 and nothing on stderr`, async () => {
      const r = await firstLineThenClose([args[0]!, trace, ...args.slice(1), '--db', db]);
      expect(r.stderr).toBe('');
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      expect(r.line.length).toBeGreaterThan(0);
    });
});

describe('sql streams its rows', () => {
  for (const json of [false, true])
    it(`a reader that closes stdout early ends sql${json ? ' --json' : ''} with exit 0 and nothing on stderr`, async () => {
      const r = await firstLineThenClose(['sql', db, `SELECT * FROM event(${trace})`, ...(json ? ['--json'] : [])]);
      expect(r.stderr).toBe('');
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      expect(r.line.length).toBeGreaterThan(0);
    });

  it('more rows than size the table: every row once, in order, the same as --json and the library', () => {
    const q = `SELECT seq, kind FROM event(${trace})`;
    const whole = runSql(db, q);
    expect(whole.rows.length).toBeGreaterThan(3000); // past the 1000 rows that size the columns
    const t = cli(['sql', db, q]);
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0]!.split(/\s+/)).toEqual(['seq', 'kind']);
    expect(lines.slice(1).map((l) => l.split(/\s+/))).toEqual(whole.rows.map((r) => [String(r[0]), String(r[1])]));
    const j = cli(['sql', db, q, '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual(whole.rows.map((r) => ({ seq: r[0], kind: r[1] })));
  });

  it('a result of 300k rows prints whole (sizing the table over every row overflowed the stack)', () => {
    const big = join(tempDir(), 'big.db');
    const t = record({ db: big, seed: '4', config: { workload: 'remap', path: 'iommu', ops: 4600, ringNum: 16, faults: [] } });
    expect(t.events).toBeGreaterThan(300_000);
    const c = spawnSync(process.execPath, [BIN, 'sql', big, `SELECT seq FROM event(${t.trace})`], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    const lines = c.stdout.trimEnd().split('\n');
    expect(lines.length).toBe(t.events + 1);
    expect(lines.at(-1)).toBe(String(t.events));
  });
});

describe('--json with many findings', () => {
  it('replay streams its findings into the same document the library returns', () => {
    const c = cli(['replay', trace, '--db', db, '--json']);
    expect(c.code).toBe(0);
    const whole = replayTrace(db, trace);
    expect(whole.findingCount).toBe(findings);
    expect(findings).toBeGreaterThan(100);
    expect(c.stdout).toBe(toJson(whole) + '\n');
    expect(JSON.parse(c.stdout).findings).toHaveLength(findings);
  });

  it('log --json --kind finding lists the findings replay counts', () => {
    const c = cli(['log', trace, '--db', db, '--json', '--kind', 'finding']);
    expect(c.code).toBe(0);
    const evs = JSON.parse(c.stdout) as { seq: number }[];
    expect(evs.map((e) => e.seq)).toEqual(replayTrace(db, trace).findings.map((f) => f.seq));
  });

  it('the text output counts the findings it does not print', () => {
    const c = cli(['replay', trace, '--db', db]);
    expect(c.code).toBe(0);
    expect(c.stdout).toContain(`… ${findings - 5} more findings`);
  });
});

describe('writeJson', () => {
  /** the value with some of its arrays replaced by Streamed generators over the same elements */
  function streamSome(v: unknown, pick: () => boolean): unknown {
    if (Array.isArray(v)) {
      const items = v.map((x) => streamSome(x, pick));
      return pick() ? streamed((function* () { yield* items; })()) : items;
    }
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, streamSome(x, pick)]));
    return v;
  }

  it('writes a document with streamed arrays byte for byte as toJson writes it whole', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.infiniteStream(fc.boolean()), (v, bools) => {
        const it = bools[Symbol.iterator]();
        let out = '';
        writeJson(streamSome(v, () => it.next().value as boolean), (s) => (out += s));
        expect(out).toBe(toJson(v));
      }),
      { numRuns: 300, seed: 5 },
    );
  });

  it('writes 64-bit values and bytes inside a streamed array as toJson does', () => {
    const v = { a: [{ x: 1n << 60n, b: new Uint8Array([1, 2, 255]) }, []], e: [] as unknown[], u: undefined };
    let out = '';
    writeJson({ ...v, a: streamed(v.a), e: streamed([]) }, (s) => (out += s));
    expect(out).toBe(toJson(v));
  });
});
