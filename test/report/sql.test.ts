// sql: the event virtual table answers the everyday questions in one query each, agrees with `log`,
// keeps 64-bit values exact, and never writes to the database.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTrace } from '../../src/app/import.js';
import { logTrace } from '../../src/app/log.js';
import { record } from '../../src/app/record.js';
import { runSql } from '../../src/app/sql.js';
import { bdf } from '../../src/events/format.js';
import { eventToJson } from '../../src/events/json.js';
import { type DmaEvent, KIND_NAMES, KINDS } from '../../src/events/schema.js';
import { cli, tempDir } from '../helpers.js';

let db: string;
let trace: number;
const events: DmaEvent[] = [];
const rowsOf = (sql: string) => {
  const r = runSql(db, sql);
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i]])));
};

beforeAll(() => {
  db = join(tempDir(), 'q.db');
  trace = record({ db, seed: '1', config: { workload: 'mixed', path: 'iommu', ops: 12, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] } }).trace;
  record({ db, seed: '8', config: { workload: 'remap', path: 'direct', ops: 4, ringNum: 16, faults: [] } });
  logTrace(db, String(trace), {}, (ev) => void events.push(ev));
});

describe('sql', () => {
  it('any range, any LIMIT: the rows of log in seq order, once each, and the command ends cleanly', () => {
    // a LIMIT stops SQLite reading the event table early: the connections must still close (this
    // was an internal error, "This database connection is busy executing a query")
    const n = events.length;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: n }), fc.integer({ min: 0, max: n }), fc.integer({ min: 0, max: n + 5 }), (from, span, limit) => {
        const to = Math.min(n, from + span);
        const got = runSql(db, `SELECT seq, kind FROM event(${trace}, ${from}, ${to}) LIMIT ${limit}`).rows;
        const want = events.slice(from - 1, to).slice(0, limit).map((e) => [e.seq, e.kind]);
        expect(got).toEqual(want);
      }),
      { numRuns: 60 },
    );
  });

  it('ranges across the windows the event table reads (64 chunks): every seq once, in order', () => {
    const big = join(tempDir(), 'big.db');
    const t = record({ db: big, seed: '3', config: { workload: 'remap', path: 'iommu', ops: 600, ringNum: 16, faults: [] } });
    expect(t.events).toBeGreaterThan(2 * 64 * 256 + 100);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: t.events }), fc.integer({ min: 0, max: t.events }), (from, span) => {
        const to = Math.min(t.events, from + span);
        const got = runSql(big, `SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi, sum(seq) AS s, count(DISTINCT seq) AS d FROM event(${t.trace}, ${from}, ${to})`).rows[0];
        const n = to - from + 1;
        expect(got).toEqual([n, from, to, ((from + to) * n) / 2, n]);
      }),
      { numRuns: 25 },
    );
  });

  it('how many iotlb.miss per device', () => {
    const want: Record<string, number> = {};
    for (const e of events) if (e.kind === 'iotlb.miss') want[bdf(e.dev)] = (want[bdf(e.dev)] ?? 0) + 1;
    const got = rowsOf(`SELECT dev, count(*) AS n FROM event(${trace}) WHERE kind = 'iotlb.miss' GROUP BY dev`);
    expect(Object.fromEntries(got.map((r) => [r.dev, r.n]))).toEqual(want);
    expect(Object.keys(want).length).toBe(2); // both devices of the mixed workload
  });

  it('what happened at seq N: the row matches the event, fields typed', () => {
    const ev = events.find((e) => e.kind === 'iommu.map')!;
    const [r] = rowsOf(`SELECT * FROM event WHERE trace = ${trace} AND seq = ${ev.seq}`);
    expect(r).toMatchObject({ trace, seq: ev.seq, kind: 'iommu.map', code: KINDS['iommu.map'].code, actor: ev.actor, cause: ev.cause, dev: bdf(ev.dev), iova: '0x' + ev.iova.toString(16), gpa: '0x' + ev.gpa.toString(16), perm: ev.perm, q: null });
    expect(r!.size).toBe('0x' + ev.size.toString(16));
    // list fields are JSON text, as in log --json
    const post = events.find((e) => e.kind === 'vring.post')!;
    const [p] = rowsOf(`SELECT chain, sg FROM event(${trace}, ${post.seq}, ${post.seq})`);
    expect(JSON.parse(p!.chain as string)).toEqual(eventToJson(post).chain);
    expect(JSON.parse(p!.sg as string)).toEqual(eventToJson(post).sg);
    // the range form reads only that range, and gives the same row
    expect(rowsOf(`SELECT seq, kind FROM event(${trace}, ${ev.seq}, ${ev.seq})`)).toEqual([{ seq: ev.seq, kind: 'iommu.map' }]);
  });

  it('every access to an IOVA page', () => {
    const acc = events.find((e) => e.kind === 'dev.access' && e.via === 'iotlb') as Extract<DmaEvent, { kind: 'dev.access' }>;
    const page = acc.dma & ~0xfffn;
    const want = events.filter((e) => e.kind === 'dev.access' && (e.dma & ~0xfffn) === page).map((e) => e.seq);
    const lo = '0x' + page.toString(16);
    const hi = '0x' + (page + 0xfffn).toString(16);
    const got = rowsOf(`SELECT seq FROM event(${trace}) WHERE kind = 'dev.access' AND addr(dma) BETWEEN addr('${lo}') AND addr('${hi}') ORDER BY seq`);
    expect(got.map((r) => r.seq)).toEqual(want);
    expect(want.length).toBeGreaterThan(1);
  });

  it('kinds, kind_counts and the finding views', () => {
    expect(rowsOf(`SELECT kind, code FROM kinds ORDER BY code`)).toEqual(KIND_NAMES.map((k) => ({ kind: k, code: KINDS[k].code })).sort((a, b) => a.code - b.code));
    const counts: Record<string, number> = {};
    for (const e of events) counts[e.kind] = (counts[e.kind] ?? 0) + 1;
    expect(Object.fromEntries(rowsOf(`SELECT kind, n FROM kind_counts WHERE trace = ${trace}`).map((r) => [r.kind, r.n]))).toEqual(counts);
    const findings = events.filter((e) => e.kind === 'finding') as Extract<DmaEvent, { kind: 'finding' }>[];
    expect(findings.length).toBeGreaterThan(0);
    expect(rowsOf(`SELECT seq, class, chain_len FROM finding_list WHERE trace = ${trace}`)).toEqual(findings.map((f) => ({ seq: f.seq, class: f.cls, chain_len: f.chain.length })));
    const chain = rowsOf(`SELECT c.seq, e.kind FROM finding_chain c JOIN event(${trace}) e ON e.seq = c.seq WHERE c.trace = ${trace} AND c.finding = ${findings[0]!.seq} ORDER BY c.pos`);
    expect(chain.map((r) => r.seq)).toEqual(findings[0]!.chain);
    expect(chain.map((r) => r.kind)).toEqual(findings[0]!.chain.map((s) => events.find((e) => e.seq === s)!.kind));
  });

  it('64-bit values stay exact: hex text columns, BigInt-safe integers', async () => {
    const dir = tempDir();
    const big = 0xfffffffffffff000n; // far above 2^53
    const evs = [
      { seq: 1, kind: 'dev.add', actor: 'vmm', dev: 0x18, name: 'virtio-net', path: 'iommu', features: 0n, useDmaApi: 1, translate: 'iova', backend: 'vhost', dmaMask: (1n << 64n) - 1n },
      { seq: 2, kind: 'iommu.map', actor: 'cpu0', dev: 0x18, iova: big, gpa: 0x1000n, size: 0x1000n, perm: 'RW' },
    ].map((e) => ({ cause: 0, ...e })) as unknown as DmaEvent[];
    const file = join(dir, 'big.jsonl');
    writeFileSync(file, [JSON.stringify({ format: 'dmareplay-trace', schema: 1, engine: '0.1.0', name: 'big', source: 'import', seed: null, config: {}, events: 2, complete: true }), ...evs.map((e) => JSON.stringify(eventToJson(e)))].join('\n') + '\n');
    const t = (await importTrace({ db, file, format: 'jsonl' })).trace;
    expect(rowsOf(`SELECT iova, addr(iova) AS a FROM event(${t}) WHERE kind = 'iommu.map'`)).toEqual([{ iova: '0xfffffffffffff000', a: '0xfffffffffffff000' }]);
    const r = runSql(db, `SELECT 9007199254740993 AS n, 9007199254740991 AS m`);
    expect(r.rows[0]).toEqual([9007199254740993n, 9007199254740991]);
    const c = cli(['sql', db, 'SELECT 9007199254740993 AS n', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain('"9007199254740993"');
  });

  it('opens the database read-only: writes are refused, the file is unchanged', () => {
    const before = createHash('sha256').update(readFileSync(db)).digest('hex');
    for (const q of [`DELETE FROM traces`, `CREATE TABLE x (a)`, `UPDATE traces SET name = 'x'`]) {
      const c = cli(['sql', db, q]);
      expect(c.code, q).toBe(2);
      expect(c.stderr).toMatch(/^dmareplay: SQL: /);
      expect(c.stderr.split('\n').length).toBe(2); // one line
    }
    const bad = cli(['sql', db, 'SELEC 1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/syntax error/);
    expect(createHash('sha256').update(readFileSync(db)).digest('hex')).toBe(before);
    expect(existsSync(db + '-wal')).toBe(false);
    expect(cli(['sql', join(tempDir(), 'none.db'), 'SELECT 1']).code).toBe(1);
  });

  it('prints a table, or one JSON document with --json', () => {
    const t = cli(['sql', db, `SELECT kind, n FROM kind_counts WHERE trace = ${trace} AND kind = 'finding'`]);
    expect(t.code, t.stderr).toBe(0);
    const n = events.filter((e) => e.kind === 'finding').length;
    expect(t.stdout.split('\n')).toEqual(['kind     n', `finding  ${n}`, '']);
    const j = cli(['sql', db, `SELECT kind, n FROM kind_counts WHERE trace = ${trace} AND kind = 'finding'`, '--json']);
    expect(JSON.parse(j.stdout)).toEqual([{ kind: 'finding', n }]);
  });
});
