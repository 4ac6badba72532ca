// A trace's findings as a stream: opened, read one row at a time in seq order, closed when the
// reader is done (or stops early: the generator's return closes the database).
import { eachFinding } from '../store/findings.js';
import type { FindingRow } from '../store/db.js';
import { loadTrace } from './load.js';

export function* streamFindings(dbPath: string, id: string, opts: { from?: number; to?: number; limit?: number } = {}): Generator<FindingRow> {
  const { db, trace } = loadTrace(dbPath, id);
  try {
    yield* eachFinding(db, trace, opts);
  } finally {
    db.close();
  }
}
