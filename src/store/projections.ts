// Per-operation projection hashes of a trace, kept so a second bisect of the same trace reads them
// instead of folding it again. The table is created on first use (older stores simply lack it).
import type Database from 'better-sqlite3';

/** One operation's projection hash and the running hash up to it (analysis/bisect.ts computes them). */
export interface OpHash {
  op: number;
  hash: string;
  cum: string;
}

const DDL = `CREATE TABLE IF NOT EXISTS projections (
  trace INTEGER NOT NULL,
  op INTEGER NOT NULL,
  hash TEXT NOT NULL,   -- what guest and device observed for this operation
  cum TEXT NOT NULL,    -- running hash of operations 0..op
  PRIMARY KEY (trace, op)
)`;

export function loadProjections(db: Database.Database, trace: number): OpHash[] | null {
  const has = db.prepare(`SELECT 1 FROM sqlite_master WHERE type='table' AND name='projections'`).get();
  if (!has) return null;
  const rows = db.prepare(`SELECT op, hash, cum FROM projections WHERE trace = ? ORDER BY op`).all(trace) as OpHash[];
  return rows.length ? rows : null;
}

export function saveProjections(db: Database.Database, trace: number, hashes: OpHash[]): void {
  db.exec(DDL);
  const ins = db.prepare(`INSERT OR REPLACE INTO projections (trace, op, hash, cum) VALUES (?, ?, ?, ?)`);
  db.transaction(() => {
    for (const h of hashes) ins.run(trace, h.op, h.hash, h.cum);
  })();
}
