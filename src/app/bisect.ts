// bisect: two traces of the same guest intents (or one workload run under two paths), the first
// operation whose observable outcome differs, and why.
import { explainWindowed, type TraceWindow } from '../analysis/bisect.js';
import { byOp, F, firstIntentDifference, firstRowDivergence, type OpRow, OpHasher, type OpTable, ROW, rowAt, TABLE_LAYOUT } from '../analysis/op-table.js';
import { fold } from '../engine/replay.js';
import { KINDS } from '../events/schema.js';
import { findKind } from '../store/scan.js';
import { DmaReplayError, UsageError } from '../errors.js';
import { formatEvent } from '../events/format.js';
import { checkpointAt, deleteTrace, getTrace, openDb, readChunks, type TraceRow } from '../store/db.js';
import { loadOpTable, saveOpTable } from '../store/projections.js';
import { parseTraceId } from './load.js';
import { record } from './record.js';
import { counted, type ProgressFn } from './progress.js';
import { traceName } from './sim-args.js';
import type { SimConfig } from '../sim/config.js';
import BetterSqlite from 'better-sqlite3';
import type Database from 'better-sqlite3';

export class NotComparable extends DmaReplayError {
  constructor(message: string) {
    super(message, 3);
  }
}

export interface BisectReport {
  diverged: boolean;
  op: number | null;
  probes: number;
  ops: number;
  a: { trace: number; seq: number | null };
  b: { trace: number; seq: number | null };
  part?: string;
  bytes: { offset: number; expected: string; got: string }[];
  access?: number | null;
  chain: { seq: number; kind: string; actor: string; text: string }[];
}

/** A trace's per-operation table computed by folding it once (cached afterwards: see cacheTables). */
function computeTable(db: Database.Database, t: TraceRow, fresh: Map<number, { trace: TraceRow; table: OpTable }>, progress?: ProgressFn, what?: string): OpTable {
  const h = new OpHasher();
  fold(counted(readChunks(db, t), t.events, progress, what), null, { noLiveness: true, onEvent: (ev, w) => h.event(ev, w) });
  const table = h.table();
  fresh.set(t.id, { trace: t, table });
  return table;
}

const hasIntent = (db: Database.Database, t: TraceRow) => findKind(db, t, 0, new Set([KINDS.intent.code]), 'next') !== null;

/**
 * Keeps newly computed tables for the next bisect: a cache, written after the answer is known, in
 * its own short transaction, and skipped silently when the database cannot be written now
 * (read-only file, another writer). Bisect itself only reads.
 */
function cacheTables(dbPath: string, fresh: Map<number, { trace: TraceRow; table: OpTable }>): void {
  if (!fresh.size) return;
  let db: Database.Database | null = null;
  try {
    db = new BetterSqlite(dbPath, { fileMustExist: true, timeout: 0 });
    const w = db;
    w.transaction(() => {
      for (const { trace, table } of fresh.values()) saveOpTable(w, trace, table, TABLE_LAYOUT);
    }).immediate();
  } catch {
    /* only a cache */
  } finally {
    try {
      db?.close();
    } catch {
      /* only a cache */
    }
  }
}

/**
 * Bisect pairs guest operations by their intent (what the guest asked for, from the seed): a trace
 * imported from real logs (QEMU log, ftrace) has none, so there is nothing to pair and a comparison
 * would only say "agree on all 0 operations" or "diverge at op 0". Refused, naming what to use instead.
 */
function refuseWithoutIntents(t: TraceRow, intents: number): void {
  if (intents > 0) return;
  if (t.source === 'import')
    throw new UsageError(`trace ${t.id} was imported from real logs, which carry no guest intents to pair operations by: bisect compares simulated or replayed traces (use findings, stats or log on imported ones)`);
  throw new UsageError(`trace ${t.id} has no guest operations (no intent events): nothing to bisect`);
}

export function bisectTraces(dbPath: string, idA: string, idB: string, progress?: ProgressFn): BisectReport {
  const fresh = new Map<number, { trace: TraceRow; table: OpTable }>();
  const report = bisectReadOnly(dbPath, idA, idB, fresh, progress);
  cacheTables(dbPath, fresh);
  return report;
}

function bisectReadOnly(dbPath: string, idA: string, idB: string, fresh: Map<number, { trace: TraceRow; table: OpTable }>, progress?: ProgressFn): BisectReport {
  const a = parseTraceId(idA);
  const b = parseTraceId(idB);
  const db = openDb(dbPath);
  try {
    const ta = getTrace(db, a);
    const tb = getTrace(db, b);
    // the tables as recorded (or cached by an earlier bisect); a trace without one is folded once, unless
    // it has no intent at all (an imported log): refused first, whichever trace it is
    const sa = loadOpTable(db, ta, TABLE_LAYOUT);
    const sb = loadOpTable(db, tb, TABLE_LAYOUT);
    refuseWithoutIntents(ta, sa ? sa.n : hasIntent(db, ta) ? 1 : 0);
    refuseWithoutIntents(tb, sb ? sb.n : hasIntent(db, tb) ? 1 : 0);
    const xa = sa ?? computeTable(db, ta, fresh, progress, `projecting trace ${a}`);
    const xb = sb ?? computeTable(db, tb, fresh, progress, `projecting trace ${b}`);
    // The same intents, or one trace's intents a prefix of the other's (a run that stopped early, e.g. a
    // device that broke, is comparable up to where it stopped; the first missing operation diverges).
    const differsAt = firstIntentDifference(xa, xb);
    if (differsAt >= 0 || (xa.n !== xb.n && !(ta.complete && tb.complete)))
      throw new NotComparable(
        `traces ${a} and ${b} do not carry the same guest intents (${xa.n} vs ${xb.n}${differsAt >= 0 ? `; first difference at op ${differsAt}` : ''}): not comparable`,
      );
    const ra = byOp(xa);
    const rb = byOp(xb);
    const { index, probes } = firstRowDivergence(ra, rb);
    const base = { probes, ops: ra.length / ROW, bytes: [], chain: [] };
    if (index === null) return { ...base, diverged: false, op: null, a: { trace: a, seq: null }, b: { trace: b, seq: null } };
    const op = rowAt(index < ra.length / ROW ? ra : rb, index).op;
    const rowA = findRow(ra, op);
    const rowB = findRow(rb, op);
    const d = explainWindowed(windowOf(db, ta, rowA), windowOf(db, tb, rowB), op, rowA, rowB);
    return {
      ...base,
      diverged: true,
      op,
      a: { trace: a, seq: d.a.seq },
      b: { trace: b, seq: d.b.seq },
      part: d.part,
      bytes: d.bytes,
      access: d.access,
      chain: d.chain.map((e) => ({ seq: e.seq, kind: e.kind, actor: e.actor, text: formatEvent(e) })),
    };
  } finally {
    db.close();
  }
}

/**
 * Explains operation `op` of two traces (whether or not it is where they first diverge), folding
 * only that operation from the checkpoint before it; the traces must have their tables (a bisect
 * of them stores them).
 */
export function explainOperation(dbPath: string, idA: string, idB: string, op: number) {
  const db = openDb(dbPath);
  try {
    const ta = getTrace(db, parseTraceId(idA));
    const tb = getTrace(db, parseTraceId(idB));
    const xa = loadOpTable(db, ta, TABLE_LAYOUT);
    const xb = loadOpTable(db, tb, TABLE_LAYOUT);
    if (!xa || !xb) throw new UsageError(`traces ${ta.id} and ${tb.id} need their operation tables (bisect them first)`);
    const rowA = findRow(byOp(xa), op);
    const rowB = findRow(byOp(xb), op);
    return explainWindowed(windowOf(db, ta, rowA), windowOf(db, tb, rowB), op, rowA, rowB);
  } finally {
    db.close();
  }
}

/** The row of op number `op` in by-op rows (binary search), or null. */
function findRow(rows: Uint32Array, op: number): OpRow | null {
  let lo = 0;
  let hi = rows.length / ROW - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = rows[mid * ROW + F.op]!;
    if (at === op) return rowAt(rows, mid);
    if (at < op) lo = mid + 1;
    else hi = mid - 1;
  }
  return null;
}

/** The store, as the windowed explanation reads it: checkpoints and chunk ranges of one trace. */
function windowOf(db: Database.Database, t: TraceRow, row: OpRow | null): TraceWindow {
  return {
    row,
    checkpointAtOrBefore: (seq) => checkpointAt(db, t.id, seq, t.events),
    chunks: (from, to) => readChunks(db, t, from, to),
  };
}

export interface BisectRun {
  db: string;
  seed: string;
  base: Omit<SimConfig, 'path'>;
  pathA: SimConfig['path'];
  pathB: SimConfig['path'];
}

/** Records the workload under both paths (faults apply to both), then bisects the two traces. */
export function bisectRun(r: BisectRun, progress?: ProgressFn): BisectReport & { traces: [number, number] } {
  const ca = { ...r.base, path: r.pathA };
  const cb = { ...r.base, path: r.pathB };
  const ta = record({ db: r.db, seed: r.seed, config: ca, name: `bisect A: ${traceName(ca, r.seed)}`, progress: (d, t) => progress?.(d, t, 'recording A (ops)') });
  let tb: ReturnType<typeof record>;
  try {
    tb = record({ db: r.db, seed: r.seed, config: cb, name: `bisect B: ${traceName(cb, r.seed)}`, progress: (d, t) => progress?.(d, t, 'recording B (ops)') });
  } catch (e) {
    // the command fails: it leaves the database as it found it, without trace A too
    try {
      deleteTrace(r.db, ta.trace);
    } catch {
      /* the first failure is what gets reported */
    }
    throw e;
  }
  return { ...bisectTraces(r.db, String(ta.trace), String(tb.trace), progress), traces: [ta.trace, tb.trace] };
}
