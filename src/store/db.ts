// The SQLite store. One file holds many traces. Events are packed CHUNK to a row, keyed by
// id = trace * 2^32 + chunk number, so the table is clustered by (trace, seq) through its INTEGER
// PRIMARY KEY alone: no secondary index is maintained while recording, and a scan is one range.
import Database from 'better-sqlite3';
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { SCHEMA_VERSION } from '../events/schema.js';
import { InputError } from '../errors.js';

export const STORE_VERSION = 1;
export const CHUNK = 256;
export const CHUNK_ID_SHIFT = 0x1_0000_0000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  source TEXT NOT NULL,              -- 'sim' (re-executable from seed) or 'import' (fold only)
  seed TEXT,                         -- always a string: 1 and "1" are different seeds
  config TEXT NOT NULL,              -- JSON
  schema_version INTEGER NOT NULL,   -- event schema the trace was written with
  engine_version TEXT NOT NULL,
  created TEXT NOT NULL,
  checkpoint_every INTEGER NOT NULL,
  complete INTEGER NOT NULL DEFAULT 0,
  events INTEGER NOT NULL DEFAULT 0, -- events committed so far: the consistent prefix
  findings INTEGER NOT NULL DEFAULT 0,
  hash TEXT                          -- SHA-256 of the encoded event stream, set when complete
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,            -- trace * 2^32 + chunk number
  trace INTEGER NOT NULL,
  seq0 INTEGER NOT NULL,             -- seq of the first event in the chunk
  n INTEGER NOT NULL,                -- events in the chunk
  data BLOB NOT NULL                 -- n encoded events (see src/events/binary.ts)
);
CREATE TABLE IF NOT EXISTS checkpoints (
  trace INTEGER NOT NULL,
  seq INTEGER NOT NULL,              -- state after applying events 1..seq
  state_hash TEXT NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (trace, seq)
);
CREATE TABLE IF NOT EXISTS findings (
  trace INTEGER NOT NULL,
  seq INTEGER NOT NULL,              -- the finding event's own seq
  class TEXT NOT NULL,
  message TEXT NOT NULL,
  iova TEXT, gpa TEXT,
  chain TEXT NOT NULL,               -- JSON array of seqs
  PRIMARY KEY (trace, seq)
);
`;

export interface TraceRow {
  id: number;
  name: string;
  source: 'sim' | 'import';
  seed: string | null;
  config: string;
  schema_version: number;
  engine_version: string;
  created: string;
  checkpoint_every: number;
  complete: number;
  events: number;
  findings: number;
  hash: string | null;
}

export interface OpenOptions {
  /** create the file and schema if missing (record, import); otherwise the file must exist */
  create?: boolean;
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/** Opens a dmareplay database, or throws an InputError naming what is wrong with it. */
export function openDb(path: string, opts: OpenOptions = {}): Database.Database {
  const exists = existsSync(path);
  if (!exists && !opts.create) throw new InputError(`database ${path} does not exist (record a trace first, or pass --db)`);
  if (exists) {
    if (statSync(path).isDirectory()) throw new InputError(`database path ${path} is a directory`);
    if (statSync(path).size > 0) {
      const head = Buffer.alloc(16);
      const fd = openSync(path, 'r');
      try {
        readSync(fd, head, 0, 16, 0);
      } finally {
        closeSync(fd);
      }
      if (head.toString('latin1') !== SQLITE_MAGIC) throw new InputError(`${path} is not a SQLite database`);
    }
  }
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: !opts.create, fileMustExist: !opts.create });
  } catch (e) {
    throw new InputError(`cannot open database ${path}: ${(e as Error).message}`);
  }
  try {
    const hasMeta = db.prepare(`SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'`).get();
    if (hasMeta) {
      const row = db.prepare(`SELECT value FROM meta WHERE key='store_version'`).get() as { value: string } | undefined;
      const v = row ? Number(row.value) : 0;
      if (v > STORE_VERSION)
        throw new InputError(`database ${path} has schema version ${v}, newer than this dmareplay supports (${STORE_VERSION}); upgrade dmareplay`);
      if (v < STORE_VERSION && opts.create) migrate(db, v);
    } else if (opts.create) {
      const tables = db.prepare(`SELECT count(*) AS n FROM sqlite_master`).get() as { n: number };
      if (tables.n > 0) throw new InputError(`${path} is a SQLite database but not a dmareplay one`);
      db.pragma('journal_mode = WAL');
      db.exec(SCHEMA);
      db.prepare(`INSERT INTO meta VALUES ('store_version', ?), ('event_schema', ?)`).run(String(STORE_VERSION), String(SCHEMA_VERSION));
    } else {
      throw new InputError(`${path} is a SQLite database but not a dmareplay one`);
    }
    if (opts.create) {
      db.pragma('journal_mode = WAL');
      // A killed process loses nothing committed in WAL mode with NORMAL; only power loss could.
      db.pragma('synchronous = NORMAL');
    }
  } catch (e) {
    db.close();
    if (e instanceof InputError) throw e;
    const msg = (e as Error).message;
    if (/not a database|malformed|file is encrypted/i.test(msg)) throw new InputError(`${path} is not a valid SQLite database (${msg})`);
    throw new InputError(`cannot open database ${path}: ${msg}`);
  }
  return db;
}

// Schema changes between store versions go here, oldest first; each runs in a transaction.
function migrate(db: Database.Database, from: number): void {
  const steps: Record<number, (db: Database.Database) => void> = {};
  db.transaction(() => {
    for (let v = from; v < STORE_VERSION; v++) steps[v]?.(db);
    db.prepare(`INSERT OR REPLACE INTO meta VALUES ('store_version', ?)`).run(String(STORE_VERSION));
  })();
}

export function getTrace(db: Database.Database, id: number): TraceRow {
  const row = db.prepare(`SELECT * FROM traces WHERE id = ?`).get(id) as TraceRow | undefined;
  if (!row) throw new InputError(`no trace ${id} in this database (see: dmareplay traces)`);
  return row;
}

export function listTraces(db: Database.Database): TraceRow[] {
  return db.prepare(`SELECT * FROM traces ORDER BY id`).all() as TraceRow[];
}

export interface Chunk {
  seq0: number;
  n: number;
  data: Buffer;
}

/** Streams the chunks holding seqs [from, to] (clipped to the committed prefix). */
export function* readChunks(db: Database.Database, trace: TraceRow, from = 1, to = trace.events): Generator<Chunk> {
  const last = Math.min(to, trace.events);
  if (from > last) return;
  const lo = trace.id * CHUNK_ID_SHIFT + Math.floor((from - 1) / CHUNK);
  const hi = trace.id * CHUNK_ID_SHIFT + Math.floor((last - 1) / CHUNK);
  const stmt = db.prepare(`SELECT seq0, n, data FROM events WHERE id BETWEEN ? AND ? ORDER BY id`).raw();
  let expect = (Math.floor((from - 1) / CHUNK)) * CHUNK + 1;
  for (const row of stmt.iterate(lo, hi) as Iterable<[number, number, Buffer]>) {
    const [seq0, n, data] = row;
    if (seq0 !== expect) throw new InputError(`trace ${trace.id} is corrupt: events ${expect}..${seq0 - 1} are missing`);
    expect = seq0 + n;
    yield { seq0, n, data };
  }
  if (expect <= last) throw new InputError(`trace ${trace.id} is corrupt: events ${expect}..${last} are missing`);
}

export function checkpointBefore(db: Database.Database, trace: TraceRow, seq: number): { seq: number; state: Buffer; state_hash: string } | null {
  return (
    (db
      .prepare(`SELECT seq, state, state_hash FROM checkpoints WHERE trace = ? AND seq <= ? AND seq <= ? ORDER BY seq DESC LIMIT 1`)
      .get(trace.id, seq, trace.events) as { seq: number; state: Buffer; state_hash: string } | undefined) ?? null
  );
}

export function checkpointHashes(db: Database.Database, trace: TraceRow): Map<number, string> {
  const rows = db.prepare(`SELECT seq, state_hash FROM checkpoints WHERE trace = ? AND seq <= ? ORDER BY seq`).all(trace.id, trace.events) as {
    seq: number;
    state_hash: string;
  }[];
  return new Map(rows.map((r) => [r.seq, r.state_hash]));
}

export interface FindingRow {
  seq: number;
  class: string;
  message: string;
  iova: string | null;
  gpa: string | null;
  chain: number[];
}

export function listFindings(db: Database.Database, trace: TraceRow): FindingRow[] {
  const rows = db.prepare(`SELECT seq, class, message, iova, gpa, chain FROM findings WHERE trace = ? AND seq <= ? ORDER BY seq`).all(trace.id, trace.events) as (Omit<FindingRow, 'chain'> & { chain: string })[];
  return rows.map((r) => ({ ...r, chain: JSON.parse(r.chain) as number[] }));
}

/**
 * Closes a database a command wrote to. Recording runs in WAL mode (readers see committed chunks,
 * a killed writer loses nothing committed); once complete the file goes back to a rollback journal,
 * so later read-only commands leave no -wal/-shm files behind.
 */
export function closeWritable(db: Database.Database): void {
  try {
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
}
