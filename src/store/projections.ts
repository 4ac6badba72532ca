// Per-operation tables of traces (analysis/op-table.ts), kept so bisect reads a few megabytes
// instead of folding traces. A recording writes its table when it finishes; a trace without one
// (recorded before the table existed, imported, or a recording that was killed) gets it computed
// on its first bisect and cached here. The table is created on first use (older stores lack it).
//
// A row is valid for the trace it was built from: it names the trace's length and stream hash, and a
// trace id reused after a delete (or a longer prefix of an incomplete trace) does not match it.
//
// (Stores written before this table may also hold `projections`, the per-operation SHA-256 hashes
// of the first bisect; nothing reads them any more.)
import type Database from 'better-sqlite3';
import { endianness } from 'node:os';
import type { TraceRow } from './db.js';

const LE = endianness() === 'LE';

/** Rows of u32 words, as analysis/op-table.ts lays them out (the store only keeps them). */
export interface StoredOpTable {
  rows: Uint32Array;
  n: number;
}

/** The layout the caller reads: a table stored with another format is not returned (it gets computed again). */
export interface OpTableLayout {
  format: number;
  /** u32 words per row */
  words: number;
}

const DDL = `CREATE TABLE IF NOT EXISTS op_table (
  trace INTEGER PRIMARY KEY,
  format INTEGER NOT NULL,   -- row layout (analysis/op-table.ts TABLE_FORMAT)
  events INTEGER NOT NULL,   -- traces.events when it was built
  stream TEXT,               -- traces.hash when it was built
  n INTEGER NOT NULL,        -- rows (one per intent, in trace order)
  rows BLOB NOT NULL         -- n * ROW little-endian u32
)`;

export function loadOpTable(db: Database.Database, t: TraceRow, layout: OpTableLayout): StoredOpTable | null {
  const has = db.prepare(`SELECT 1 FROM sqlite_master WHERE type='table' AND name='op_table'`).get();
  if (!has) return null;
  const r = db.prepare(`SELECT format, events, stream, n, rows FROM op_table WHERE trace = ?`).get(t.id) as
    | { format: number; events: number; stream: string | null; n: number; rows: unknown }
    | undefined;
  if (!r || r.format !== layout.format || r.events !== t.events || r.stream !== t.hash || !t.hash) return null;
  if (!Buffer.isBuffer(r.rows) || r.rows.length !== r.n * layout.words * 4) return null;
  const b = r.rows;
  const rows = LE ? new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)) : new Uint32Array(r.n * layout.words);
  if (!LE) for (let i = 0; i < rows.length; i++) rows[i] = b.readUInt32LE(i * 4);
  return { rows, n: r.n };
}

/** Stores a complete trace's table (an incomplete one has no stream hash to tie it to: not stored). */
export function saveOpTable(db: Database.Database, t: Pick<TraceRow, 'id' | 'events' | 'hash'>, table: StoredOpTable, layout: OpTableLayout): void {
  if (!t.hash) return;
  db.exec(DDL);
  const words = table.rows.subarray(0, table.n * layout.words);
  let b: Buffer;
  if (LE) b = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
  else {
    b = Buffer.allocUnsafe(words.length * 4);
    for (let i = 0; i < words.length; i++) b.writeUInt32LE(words[i]!, i * 4);
  }
  db.prepare(`INSERT OR REPLACE INTO op_table (trace, format, events, stream, n, rows) VALUES (?, ?, ?, ?, ?, ?)`).run(t.id, layout.format, t.events, t.hash, table.n, b);
}

/** After a recording: its table, or nothing if it cannot be written now (bisect then computes it). */
export function saveOpTableQuietly(db: Database.Database, t: Pick<TraceRow, 'id' | 'events' | 'hash'>, table: StoredOpTable, layout: OpTableLayout): void {
  try {
    db.transaction(() => saveOpTable(db, t, table, layout))();
  } catch {
    /* only a cache */
  }
}
