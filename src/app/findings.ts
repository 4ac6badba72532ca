// A trace's findings as a stream: opened, read one row at a time in seq order, closed when the
// reader is done (or stops early: the generator's return closes the database).
import { eachFinding } from '../store/findings.js';
import type { FindingRow } from '../store/db.js';
import { loadTrace } from './load.js';

/**
 * How many findings a command's result lists (record, import): the rest are counted and stored, never
 * held (`log TRACE --kind finding` or `replay --json` stream them all), so a trace with millions of
 * findings costs no more memory than one with a thousand.
 */
export const MAX_FINDINGS_LISTED = 1000;

export function* streamFindings(dbPath: string, id: string, opts: { from?: number; to?: number; limit?: number } = {}): Generator<FindingRow> {
  const { db, trace } = loadTrace(dbPath, id);
  try {
    yield* eachFinding(db, trace, opts);
  } finally {
    db.close();
  }
}
