// export / import of the canonical JSONL, through the CLI.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson, tempDir } from '../helpers.js';

let dir: string;
let simDb: string;
let exported: string;

beforeAll(() => {
  dir = tempDir();
  simDb = join(dir, 'sim.db');
  const r = cli(['record', '--ops', '20', '--fault', 'delay-invalidate=1', '--db', simDb]);
  expect(r.code, r.stderr).toBe(0);
  const e = cli(['export', '1', '--db', simDb]);
  expect(e.code, e.stderr).toBe(0);
  exported = e.stdout;
  writeFileSync(join(dir, 'a.jsonl'), exported);
});

describe('export', () => {
  it('writes the header, then one canonical JSON object per event, and is stable', () => {
    const lines = exported.split('\n');
    expect(lines.pop()).toBe('');
    const header = JSON.parse(lines[0]!);
    expect(header).toMatchObject({ format: 'dmareplay-trace', schema: 1, source: 'sim', seed: '1', complete: true });
    expect(header.config).toMatchObject({ workload: 'remap', path: 'iommu', ops: 20 });
    expect(header.events).toBe(lines.length - 1);
    const seqs = lines.slice(1).map((l) => JSON.parse(l).seq);
    expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
    // 64-bit values are hex strings
    const map = lines.slice(1).map((l) => JSON.parse(l)).find((e) => e.kind === 'iommu.map');
    expect(map.iova).toMatch(/^0x[0-9a-f]+$/);
    expect(cli(['export', '1', '--db', simDb]).stdout).toBe(exported);
  });

  it('unknown trace: one line, exit 1', () => {
    const r = cli(['export', '9', '--db', simDb]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dmareplay: no trace 9/);
    expect(r.stdout).toBe('');
  });
});

describe('import of an export', () => {
  let db: string;
  let imp: { trace: number; events: number; byKind: Record<string, number>; findings: { class: string; seq: number; message: string }[] };
  beforeAll(() => {
    db = join(dir, 'imp.db');
    imp = cliJson(['import', join(dir, 'a.jsonl'), '--db', db, '--checkpoint-every', '100']);
  });

  it('export → import → export is byte-identical', () => {
    const again = cli(['export', String(imp.trace), '--db', db]);
    expect(again.code, again.stderr).toBe(0);
    expect(Buffer.from(again.stdout)).toEqual(Buffer.from(exported));
    // and once more through a second import
    writeFileSync(join(dir, 'b.jsonl'), again.stdout);
    const db2 = join(dir, 'imp2.db');
    const t2 = cliJson(['import', join(dir, 'b.jsonl'), '--db', db2]).trace;
    expect(cli(['export', String(t2), '--db', db2]).stdout).toBe(exported);
  });

  it('is stored as an import (no seed), folds with every checker, and reports what the recording found', () => {
    const header = JSON.parse(exported.split('\n')[0]!);
    expect(imp.events).toBe(header.events);
    const traces = cliJson(['traces', '--db', db]);
    expect(traces[0]).toMatchObject({ source: 'import', seed: null, events: header.events, complete: true });
    const recorded = cliJson(['log', '1', '--kind', 'finding', '--db', simDb]) as { cls: string; cause: number }[];
    expect(imp.findings.map((f) => f.class)).toEqual(recorded.map((f) => f.cls));
    expect(imp.findings.length).toBeGreaterThan(0);
    const replay = cliJson(['replay', String(imp.trace), '--db', db]);
    expect(replay).toMatchObject({ mode: 'fold', ok: true, events: header.events });
    expect(replay.findings.map((f: { class: string }) => f.class)).toEqual(imp.findings.map((f) => f.class));
  });

  it('is checkpointed every K events, so state --at works, and agrees with the original', () => {
    const at = 257;
    const a = cliJson(['state', '1', '--at', String(at), '--iova', '0xffff8000', '--db', simDb]);
    const b = cliJson(['state', String(imp.trace), '--at', String(at), '--iova', '0xffff8000', '--db', db]);
    expect(b.fromCheckpoint).toBe(200);
    const { trace: _a, fromCheckpoint: _fa, folded: _xa, ...ra } = a;
    const { trace: _b, fromCheckpoint: _fb, folded: _xb, ...rb } = b;
    expect(rb).toEqual(ra);
  });
});

/** A file with one line changed; the import must fail naming that line and field, and leave the database as it was. */
function rejects(name: string, edit: (lines: string[]) => string[], message: RegExp): void {
  const bad = join(dir, name);
  const lines = exported.split('\n');
  writeFileSync(bad, edit(lines).join('\n'));
  const db = join(dir, `reject-${name}.db`);
  copyFileSync(simDb, db);
  const before = readFileSync(db);
  const r = cli(['import', bad, '--db', db]);
  expect(r.code, r.stderr).toBe(1);
  const err = r.stderr.trim().split('\n');
  expect(err).toHaveLength(1);
  expect(err[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(readFileSync(db).equals(before)).toBe(true);
  expect(cliJson(['traces', '--db', db])).toHaveLength(1);
}

describe('malformed JSONL: exit 1, the line number and field named, the database unchanged', () => {
  const set = (lines: string[], i: number, f: (o: Record<string, unknown>) => void) => {
    const o = JSON.parse(lines[i]!);
    f(o);
    lines[i] = JSON.stringify(o);
    return lines;
  };
  it('a 64-bit field that is a number', () =>
    rejects('num.jsonl', (l) => set(l, 5, (o) => Object.assign(o, Object.keys(o).includes('gpa') ? { gpa: 12 } : { seq: 'x' })), /^dmareplay: .*num\.jsonl:6: field (gpa|seq): /));
  it('an unknown kind', () => rejects('kind.jsonl', (l) => set(l, 9, (o) => (o.kind = 'iommu.bogus')), /kind\.jsonl:10: field kind: unknown kind "iommu\.bogus"/));
  it('a missing field', () =>
    rejects(
      'missing.jsonl',
      (l) => {
        const i = l.findIndex((x) => x.includes('"kind":"iommu.map"'));
        set(l, i, (o) => delete o.iova);
        return l;
      },
      /missing\.jsonl:\d+: field iova: iommu\.map is missing field iova/,
    ));
  it('seqs out of order', () => rejects('seq.jsonl', (l) => [l[0]!, l[2]!, l[1]!, ...l.slice(3)], /seq\.jsonl:2: field seq: seq 2 out of order \(expected 1\)/));
  it('a line that is not JSON', () => rejects('json.jsonl', (l) => ((l[20] = l[20]!.slice(0, 30)), l), /json\.jsonl:21: not valid JSON/));
  it('a header from something else', () => rejects('header.jsonl', (l) => set(l, 0, (o) => (o.format = 'other')), /header\.jsonl:1: field format: format must be "dmareplay-trace"/));
  it('a truncated file (the header counts the events)', () => rejects('cut.jsonl', (l) => l.slice(0, 300), /cut\.jsonl:300: field events: the header says \d+ events, the file has 299/));
  it('an event the model cannot apply (a map for a device never added)', () =>
    rejects(
      'apply.jsonl',
      (l) => {
        const i = l.findIndex((x) => x.includes('"kind":"iommu.map"'));
        return set(l, i, (o) => (o.dev = 0x77));
      },
      /apply\.jsonl:\d+: field dev: device 0x77 was never added/,
    ));
});
