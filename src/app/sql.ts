// sql: one SQL statement over a database, opened read-only, with the event virtual table, the kind
// table and the finding views of src/store/sql.ts registered. Values come back BigInt-safe: an
// integer beyond 2^53 stays a bigint (printed exactly), never a rounded double.
import { UsageError } from '../errors.js';
import { openDb } from '../store/db.js';
import { registerSql } from '../store/sql.js';

export interface SqlResult {
  columns: string[];
  rows: unknown[][];
}

export function runSql(dbPath: string, sql: string): SqlResult {
  const db = openDb(dbPath); // read-only: the file must exist and is never written
  const reader = openDb(dbPath);
  try {
    registerSql(db, reader); // its views are TEMP: in memory, not in the file
    db.pragma('query_only = ON');
    let stmt;
    try {
      stmt = db.prepare(sql);
    } catch (e) {
      throw new UsageError(`SQL: ${(e as Error).message}`);
    }
    if (!stmt.reader) throw new UsageError('SQL: only queries (SELECT, WITH, PRAGMA that return rows): the database is opened read-only');
    stmt.safeIntegers(true).raw(true);
    const columns = stmt.columns().map((c) => c.name);
    let rows: unknown[][];
    try {
      rows = (stmt.all() as unknown[][]).map((r) => r.map((v) => (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)));
    } catch (e) {
      throw new UsageError(`SQL: ${(e as Error).message}`);
    }
    return { columns, rows };
  } finally {
    db.close();
    reader.close();
  }
}
