// bisect: two traces of the same guest intents (or one workload run under two paths), the first
// operation whose observable outcome differs, and why.
import { explain, firstDivergence, intentsOf, type OpHash, opHashes } from '../analysis/bisect.js';
import { project } from '../analysis/projection.js';
import { DmaReplayError, UsageError } from '../errors.js';
import { formatEvent } from '../events/format.js';
import { deleteTrace, getTrace, openDb, readChunks, type TraceRow } from '../store/db.js';
import { loadProjections, saveProjections } from '../store/projections.js';
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

function hashesOf(db: Database.Database, t: TraceRow, fresh: Map<number, OpHash[]>, progress?: ProgressFn, what?: string): OpHash[] {
  const cached = loadProjections(db, t.id);
  if (cached) return cached;
  const h = opHashes(project(counted(readChunks(db, t), t.events, progress, what), -1));
  fresh.set(t.id, h);
  return h;
}

/**
 * Keeps newly computed projection hashes for the next bisect: a cache, written after the answer
 * is known, in its own short transaction, and skipped silently when the database cannot be written
 * now (read-only file, another writer). Bisect itself only reads.
 */
function cacheProjections(dbPath: string, fresh: Map<number, OpHash[]>): void {
  if (!fresh.size) return;
  let db: Database.Database | null = null;
  try {
    db = new BetterSqlite(dbPath, { fileMustExist: true, timeout: 0 });
    const w = db;
    w.transaction(() => {
      for (const [id, h] of fresh) saveProjections(w, id, h);
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
  const fresh = new Map<number, OpHash[]>();
  const report = bisectReadOnly(dbPath, idA, idB, fresh, progress);
  cacheProjections(dbPath, fresh);
  return report;
}

function bisectReadOnly(dbPath: string, idA: string, idB: string, fresh: Map<number, OpHash[]>, progress?: ProgressFn): BisectReport {
  const a = parseTraceId(idA);
  const b = parseTraceId(idB);
  const db = openDb(dbPath);
  try {
    const ta = getTrace(db, a);
    const tb = getTrace(db, b);
    const ia = intentsOf(readChunks(db, ta));
    const ib = intentsOf(readChunks(db, tb));
    refuseWithoutIntents(ta, ia.length);
    refuseWithoutIntents(tb, ib.length);
    // The same intents, or one trace's intents a prefix of the other's (a run that stopped early, e.g. a
    // device that broke, is comparable up to where it stopped; the first missing operation diverges).
    const common = Math.min(ia.length, ib.length);
    const differsAt = ia.findIndex((x, i) => i < common && x !== ib[i]);
    if (differsAt >= 0 || (ia.length !== ib.length && !(ta.complete && tb.complete)))
      throw new NotComparable(
        `traces ${a} and ${b} do not carry the same guest intents (${ia.length} vs ${ib.length}${differsAt >= 0 ? `; first difference at op ${differsAt}` : ''}): not comparable`,
      );
    const ha = hashesOf(db, ta, fresh, progress, `projecting trace ${a}`);
    const hb = hashesOf(db, tb, fresh, progress, `projecting trace ${b}`);
    const { index, probes } = firstDivergence(ha, hb);
    const base = { probes, ops: ha.length, bytes: [], chain: [] };
    if (index === null) return { ...base, diverged: false, op: null, a: { trace: a, seq: null }, b: { trace: b, seq: null } };
    const op = ha[index]!.op;
    const d = explain(() => readChunks(db, ta), () => readChunks(db, tb), op);
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
