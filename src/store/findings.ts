// Reading a trace's findings without loading them all: a trace can hold hundreds of thousands
// (a fault that fires on every invalidation), so readers count them in SQL, take the first few,
// or stream them in seq order from the (trace, seq) primary key.
import type Database from 'better-sqlite3';
import { InputError } from '../errors.js';
import type { FindingRow, TraceRow } from './db.js';

type Raw = Omit<FindingRow, 'chain'> & { chain: string };

function parsed(trace: TraceRow, r: Raw): FindingRow {
  let chain: unknown;
  try {
    chain = JSON.parse(r.chain);
  } catch {
    chain = null;
  }
  if (!Array.isArray(chain) || !chain.every((x) => Number.isSafeInteger(x))) throw new InputError(`trace ${trace.id} is corrupt: the chain of finding #${r.seq} is not a list of seqs`);
  return { seq: r.seq, class: r.class, message: r.message, iova: r.iova, gpa: r.gpa, chain: chain as number[] };
}

/** The findings within the committed prefix. */
export function countFindings(db: Database.Database, trace: TraceRow): number {
  return (db.prepare(`SELECT count(*) AS n FROM findings WHERE trace = ? AND seq <= ?`).get(trace.id, trace.events) as { n: number }).n;
}

/** The findings with seq in [from, to] (and within the committed prefix), in seq order, one row at a time; at most `limit`. */
export function* eachFinding(db: Database.Database, trace: TraceRow, opts: { from?: number; to?: number; limit?: number } = {}): Generator<FindingRow> {
  const to = Math.min(opts.to ?? trace.events, trace.events);
  const stmt = db.prepare(`SELECT seq, class, message, iova, gpa, chain FROM findings WHERE trace = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`);
  for (const r of stmt.iterate(trace.id, opts.from ?? 0, to, opts.limit ?? -1) as Iterable<Raw>) yield parsed(trace, r);
}

/** The first `limit` findings, in seq order. */
export function firstFindings(db: Database.Database, trace: TraceRow, limit: number): FindingRow[] {
  return [...eachFinding(db, trace, { limit })];
}
