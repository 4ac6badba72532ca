// sql: one SQL statement over a database, opened read-only, with the event virtual table, the kind
// table and the finding views of src/store/sql.ts registered. Values come back BigInt-safe: an
// integer beyond 2^53 stays a bigint (printed exactly), never a rounded double. Rows are read one at
// a time as the caller takes them (streamSql): `select * from event(1)` on a 10M-event trace is 10M
// rows, which held whole took gigabytes.
import type Database from 'better-sqlite3';
import { UsageError } from '../errors.js';
import { openDb } from '../store/db.js';
import { registerSql } from '../store/sql.js';

export interface SqlResult {
  columns: string[];
  rows: unknown[][];
}

export interface SqlStream {
  columns: string[];
  /** the rows, read as they are taken; the databases close when it ends or is returned */
  rows: Generator<unknown[]>;
  /** closes the databases (also when the rows were never read) */
  close(): void;
}

const safe = (v: unknown) => (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

export function streamSql(dbPath: string, sql: string): SqlStream {
  const db = openDb(dbPath); // read-only: the file must exist and is never written
  let reader: Database.Database | null = null;
  const close = () => {
    if (db.open) db.close();
    if (reader?.open) reader.close();
  };
  try {
    reader = openDb(dbPath);
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
    const it = stmt;
    function* rows(): Generator<unknown[]> {
      try {
        // returning this generator returns the statement's iterator first, then closes the databases
        for (const r of it.iterate() as Iterable<unknown[]>) yield r.map(safe);
      } catch (e) {
        throw new UsageError(`SQL: ${(e as Error).message}`);
      } finally {
        close();
      }
    }
    return { columns, rows: rows(), close };
  } catch (e) {
    close();
    throw e;
  }
}

/** The whole result at once (small queries, tests). */
export function runSql(dbPath: string, sql: string): SqlResult {
  const s = streamSql(dbPath, sql);
  try {
    return { columns: s.columns, rows: [...s.rows] };
  } finally {
    s.close();
  }
}
