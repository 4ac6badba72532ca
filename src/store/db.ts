// The SQLite store. One file holds many traces. Events are packed CHUNK to a row, keyed by
// id = trace * 2^32 + chunk number, so the table is clustered by (trace, seq) through its INTEGER
// PRIMARY KEY alone: no secondary index is maintained while recording, and a scan is one range.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { SCHEMA_VERSION } from '../events/schema.js';
import { eachFinding } from './findings.js';
import { InputError, IntegrityError } from '../errors.js';
import { deleteCheckpoints, migrateCheckpointsToPages, PAGE_BYTES, partsBefore, partsToBlob, type StoredCheckpoint, storedCheckpoints } from './checkpoints.js';
import type { Checkpoint, PlainWorld, SimState } from '../engine/snapshot.js';
import { worldFromPlain } from '../model/world.js';

export { type CheckpointParts, checkpointStateHash, CheckpointWriter, copyCheckpoints, deleteCheckpoints, partsBefore, type StoredCheckpoint } from './checkpoints.js';

/** 2: checkpoints store each page content once (checkpoints.ts); version-1 files are migrated on the first write */
export const STORE_VERSION = 2;
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
  state BLOB NOT NULL,               -- the JSON header, deflated (version 1: the whole blob, pages included)
  pages BLOB,                        -- deflated list of (u64 pfn, u48 pages.id); NULL in a version-1 row
  PRIMARY KEY (trace, seq)
);
CREATE TABLE IF NOT EXISTS pages (   -- each guest page content once, whichever checkpoints and traces hold it
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,         -- SHA-256 of data
  data BLOB NOT NULL                 -- the 4096 bytes without their trailing zeros
);
CREATE TABLE IF NOT EXISTS trace_pages (  -- which traces use a page: deleting a trace deletes the pages only it used
  trace INTEGER NOT NULL,
  page INTEGER NOT NULL,
  PRIMARY KEY (trace, page)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_pages_page ON trace_pages (page);
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
  /** create the file and schema if missing (record, import); otherwise the file is opened read-only */
  create?: boolean;
}

const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * How long a writer waits for another one to finish its transaction (SQLite's busy handler) before
 * giving up with a clear error; readers never wait in WAL mode. $DMAREPLAY_BUSY_TIMEOUT_MS overrides it.
 */
export function busyTimeoutMs(): number {
  const v = Number(process.env.DMAREPLAY_BUSY_TIMEOUT_MS);
  return Number.isSafeInteger(v) && v >= 0 ? v : 60_000;
}

/** A SQLite error while using a database, as the InputError a user can act on (busy, read-only, full, corrupt). */
export function storeError(path: string, e: unknown): unknown {
  const err = e as { code?: string; message?: string };
  if (typeof err?.code !== 'string' || !err.code.startsWith('SQLITE_')) return e;
  const msg = err.message ?? err.code;
  if (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED'))
    return new InputError(`database ${path} is busy: another process kept it locked for more than ${busyTimeoutMs() / 1000} s (set DMAREPLAY_BUSY_TIMEOUT_MS to wait longer); nothing was written`);
  if (err.code.startsWith('SQLITE_READONLY') || err.code.startsWith('SQLITE_CANTOPEN') || err.code.startsWith('SQLITE_PERM'))
    return new InputError(`cannot write database ${path}: ${msg}`);
  if (err.code.startsWith('SQLITE_FULL') || err.code.startsWith('SQLITE_IOERR')) return new InputError(`cannot write database ${path}: ${msg}`);
  if (err.code.startsWith('SQLITE_CORRUPT') || err.code.startsWith('SQLITE_NOTADB')) return new InputError(`${path} is not a valid SQLite database (${msg})`);
  return new InputError(`database ${path}: ${msg}`);
}

/**
 * A writer killed mid-transaction leaves a hot rollback journal (or a WAL to recover) that only a
 * read-write connection may replay: a reader that meets one lets SQLite recover it once (the same
 * recovery any writer would do first) and then opens read-only as usual.
 */
function recoverAfterCrash(path: string): void {
  const w = new Database(path, { fileMustExist: true, timeout: busyTimeoutMs() });
  try {
    w.prepare(`SELECT count(*) FROM sqlite_master`).get();
  } finally {
    w.close();
  }
}

const needsRecovery = (e: unknown): boolean => /^SQLITE_READONLY_(ROLLBACK|RECOVERY|CANTINIT|CANTLOCK)$/.test((e as { code?: string })?.code ?? '');

/** Opens a dmareplay database, or throws an InputError naming what is wrong with it. */
export function openDb(path: string, opts: OpenOptions = {}): Database.Database {
  try {
    return openDbOnce(path, opts);
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    if (opts.create || !needsRecovery(cause)) throw e;
    try {
      recoverAfterCrash(path);
    } catch (r) {
      throw storeError(path, r);
    }
    return openDbOnce(path, opts);
  }
}

/**
 * A new database file appears whole: the schema is written to a file beside it and linked into
 * place (link() never replaces a file another process made first), so a kill at any instant leaves
 * either no database or one with all its tables, never an empty or half-made file.
 */
function createFile(path: string): void {
  const tmp = `${path}.${process.pid}.creating`;
  try {
    const t = new Database(tmp);
    try {
      t.transaction(() => {
        t.exec(SCHEMA);
        t.prepare(`INSERT INTO meta VALUES ('store_version', ?), ('event_schema', ?)`).run(String(STORE_VERSION), String(SCHEMA_VERSION));
      })();
    } finally {
      t.close();
    }
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } catch (e) {
    throw new InputError(`cannot open database ${path} to create it: ${(e as Error).message}`);
  } finally {
    for (const f of [tmp, `${tmp}-journal`])
      try {
        rmSync(f, { force: true });
      } catch {
        /* nothing was made there (a path through a file, a missing directory) */
      }
  }
}

function openDbOnce(path: string, opts: OpenOptions): Database.Database {
  if (opts.create && !existsSync(path)) createFile(path);
  const exists = existsSync(path);
  if (!exists && !opts.create) throw new InputError(`database ${path} does not exist (record a trace first, or pass --db)`);
  if (exists) {
    if (statSync(path).isDirectory()) throw new InputError(`database path ${path} is a directory`);
    if (statSync(path).size > 0) {
      const head = Buffer.alloc(16);
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (e) {
        throw new InputError(`cannot open database ${path}: ${(e as Error).message}`);
      }
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
    // readers are read-only connections: they never take a write lock, and in WAL mode never wait
    db = new Database(path, { readonly: !opts.create, fileMustExist: !opts.create, timeout: busyTimeoutMs() });
  } catch (e) {
    throw new InputError(`cannot open database ${path}: ${(e as Error).message}`);
  }
  try {
    if (opts.create) {
      // refuse another program's database or a newer one before changing anything in the file
      const t = tableNames(db);
      if (!t.has('meta') && t.size > 0) throw new InputError(`${path} is a SQLite database but not a dmareplay one`);
      if (t.has('meta')) checkVersions(db, path);
      // WAL: readers go on while one writer appends; a killed writer loses nothing committed
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      createSchema(db, path);
    } else checkSchema(db, path);
  } catch (e) {
    db.close();
    if (e instanceof InputError) throw e;
    const msg = (e as Error).message;
    if (/not a database|malformed|file is encrypted/i.test(msg)) throw new InputError(`${path} is not a valid SQLite database (${msg})`);
    const err = storeError(path, e);
    if (err instanceof Error) (err as { cause?: unknown }).cause = e; // openDb looks at it: crash recovery
    throw err;
  }
  return db;
}

function tableNames(db: Database.Database): Set<string> {
  return new Set((db.prepare(`SELECT name FROM sqlite_master WHERE type='table'`).all() as { name: string }[]).map((r) => r.name));
}

/** Refuses a database written by a newer dmareplay, whichever of its version fields is newer. */
function checkVersions(db: Database.Database, path: string): number {
  const rows = db.prepare(`SELECT key, value FROM meta`).all() as { key: string; value: unknown }[];
  const meta = new Map(rows.map((r) => [r.key, r.value]));
  const num = (k: string): number => {
    const v = meta.get(k);
    if (v === undefined) return 0;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new InputError(`database ${path} is corrupt: meta.${k} is ${JSON.stringify(String(v))}, not a version number`);
    return n;
  };
  const store = num('store_version');
  if (store > STORE_VERSION) throw new InputError(`database ${path} has schema version ${store}, newer than this dmareplay supports (${STORE_VERSION}); upgrade dmareplay`);
  const events = num('event_schema');
  if (events > SCHEMA_VERSION) throw new InputError(`database ${path} holds event schema ${events}, newer than this dmareplay supports (${SCHEMA_VERSION}); upgrade dmareplay`);
  return store;
}

function checkSchema(db: Database.Database, path: string): void {
  const t = tableNames(db);
  if (!t.has('meta')) throw new InputError(`${path} is a SQLite database but not a dmareplay one`);
  const version = checkVersions(db, path);
  for (const need of ['traces', 'events', 'checkpoints', 'findings', ...(version >= 2 ? ['pages', 'trace_pages'] : [])])
    if (!t.has(need)) throw new InputError(`database ${path} is incomplete (no ${need} table: its creation was interrupted); record or import into it to repair it`);
}

/**
 * Creates the schema, or checks and upgrades an existing one, in one IMMEDIATE transaction: a kill at
 * any instant leaves either no schema or all of it, and two processes creating the same new file at
 * once take turns (the second finds the tables and the meta rows there).
 */
function createSchema(db: Database.Database, path: string): void {
  db.transaction(() => {
    const t = tableNames(db);
    if (!t.has('meta') && t.size > 0) throw new InputError(`${path} is a SQLite database but not a dmareplay one`);
    const from = t.has('meta') ? checkVersions(db, path) : STORE_VERSION;
    db.exec(SCHEMA); // IF NOT EXISTS throughout: also completes a schema an older version left half made
    db.prepare(`INSERT OR IGNORE INTO meta VALUES ('store_version', ?), ('event_schema', ?)`).run(String(STORE_VERSION), String(SCHEMA_VERSION));
    if (from < STORE_VERSION) migrate(db, from);
  }).immediate();
}

// Schema changes between store versions go here, oldest first; they run inside createSchema's transaction.
function migrate(db: Database.Database, from: number): void {
  const steps: Record<number, (db: Database.Database) => void> = { 1: migrateCheckpointsToPages };
  for (let v = from; v < STORE_VERSION; v++) steps[v]?.(db);
  db.prepare(`INSERT OR REPLACE INTO meta VALUES ('store_version', ?)`).run(String(STORE_VERSION));
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

/**
 * Streams the chunks holding seqs [from, to] (clipped to the committed prefix). What is read is
 * checked against what was stored with it: every chunk must be a blob in its place, the rows must hold
 * exactly traces.events events, and a read of a whole complete trace must hash to traces.hash (the
 * error comes at the end of the stream, before the reader reports success).
 */
export function* readChunks(db: Database.Database, trace: TraceRow, from = 1, to = trace.events): Generator<Chunk> {
  const last = Math.min(to, trace.events);
  if (from > last) return;
  const lo = trace.id * CHUNK_ID_SHIFT + Math.floor((from - 1) / CHUNK);
  const hi = trace.id * CHUNK_ID_SHIFT + Math.floor((last - 1) / CHUNK);
  const stmt = db.prepare(`SELECT seq0, n, data FROM events WHERE id BETWEEN ? AND ? ORDER BY id`).raw();
  const whole = from === 1 && last === trace.events && !!trace.complete && typeof trace.hash === 'string';
  const hash = whole ? createHash('sha256') : null;
  let expect = (Math.floor((from - 1) / CHUNK)) * CHUNK + 1;
  for (const row of stmt.iterate(lo, hi) as Iterable<[unknown, unknown, unknown]>) {
    const [seq0, n, data] = row;
    if (typeof seq0 !== 'number' || typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > CHUNK)
      throw new IntegrityError(`trace ${trace.id} is corrupt: the events row after seq ${expect - 1} has seq0 ${String(seq0)} and n ${String(n)}`);
    if (!Buffer.isBuffer(data)) throw new InputError(`trace ${trace.id} is corrupt: events ${seq0}..${seq0 + n - 1} are stored as ${typeof data === 'string' ? 'TEXT' : typeof data}, not a blob`);
    if (seq0 !== expect) throw new IntegrityError(`trace ${trace.id} is corrupt: events ${expect}..${seq0 - 1} are missing (traces.events says ${trace.events})`);
    expect = seq0 + n;
    hash?.update(data);
    yield { seq0, n, data };
  }
  if (expect <= last) throw new IntegrityError(`trace ${trace.id} is corrupt: traces.events says ${trace.events} events, the database holds ${expect - 1}`);
  if (hash) {
    const got = hash.digest('hex');
    if (got !== trace.hash) throw new IntegrityError(`trace ${trace.id} is corrupt: its stored events hash to ${got.slice(0, 16)}…, not to the hash stored when it was written (${String(trace.hash).slice(0, 16)}…)`);
  }
}

/** The nearest checkpoint at or before seq, its state checked against its stored hash before use. */
export function checkpointBefore(db: Database.Database, trace: TraceRow, seq: number): StoredCheckpoint | null {
  const c = partsBefore(db, trace.id, seq, trace.events);
  return c && { seq: c.seq, state: partsToBlob(c), state_hash: c.stateHash };
}

/**
 * The nearest checkpoint of a trace at or before seq (and `last`), checked and decoded, or null: what
 * engine/snapshot.ts decodeCheckpoint makes of its blob, without putting the blob together. The
 * world's pages are views of the bytes read (never written: guest memory is copy-on-write).
 */
export function checkpointAt(db: Database.Database, trace: number, seq: number, last: number): Checkpoint | null {
  const c = partsBefore(db, trace, seq, last);
  if (!c) return null;
  const head = JSON.parse(c.head.toString('utf8')) as { world: PlainWorld; sim: SimState | null };
  const mem = new Map<number, Uint8Array>(); // pfns < 2^52: exact numbers
  for (let i = 0; i < c.pages.length; i++) {
    const p = c.pages[i]!;
    mem.set(Number(c.pfns[i]!), new Uint8Array(p.buffer, p.byteOffset, PAGE_BYTES));
  }
  return { seq: c.seq, world: worldFromPlain(head.world, mem), sim: head.sim };
}

/** Reads a whole trace only to check it: its rows against traces.events, its stream against traces.hash. */
export function verifyStream(db: Database.Database, trace: TraceRow): void {
  for (const _ of readChunks(db, trace));
}

/** Checks every stored checkpoint of a trace against its state hash (replay does, before saying ok). */
export function verifyCheckpoints(db: Database.Database, trace: TraceRow): number {
  let n = 0;
  for (const _ of storedCheckpoints(db, trace.id, trace.events)) n++;
  return n;
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
  return [...eachFinding(db, trace)];
}

/**
 * Closes a database a command wrote to. Recording runs in WAL mode (readers see committed chunks,
 * a killed writer loses nothing committed); when this was the only connection the file goes back to a
 * rollback journal, so later read-only commands leave no -wal/-shm files behind. With other
 * connections open (a reader, a second writer) that switch would need an exclusive lock: the file
 * then stays in WAL mode (the WAL is checkpointed as far as the readers allow, and the last writer to
 * close alone switches it). Nothing here can fail a command whose data is committed.
 */
export function closeWritable(db: Database.Database): void {
  try {
    if (db.open && !db.inTransaction) {
      db.pragma('busy_timeout = 0');
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.pragma('journal_mode = DELETE');
    }
  } catch {
    // another connection is open: stay in WAL mode
  } finally {
    db.close();
  }
}

/**
 * Runs a command's writes with the database open for writing, inside one IMMEDIATE transaction: all
 * of them are committed, or none (an error rolls back). A database file this call created is removed
 * again when nothing was committed to it, so a failed first import leaves no empty file behind.
 */
export async function withWriteTransaction<T>(path: string, body: (db: Database.Database) => Promise<T> | T): Promise<T> {
  const existed = existsSync(path);
  const db = openDb(path, { create: true });
  let ok = false;
  try {
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      throw storeError(path, e);
    }
    try {
      const r = await body(db);
      db.exec('COMMIT');
      ok = true;
      return r;
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw storeError(path, e);
    }
  } finally {
    if (!ok && !existed) removeIfEmpty(db, path);
    else closeWritable(db);
  }
}

/**
 * {@link withWriteTransaction} for a body that holds its transaction itself (a Recorder made with
 * `transaction: true`: its writer thread begins and commits it, or rolls it back): the same handling
 * of the file around it (created if missing, removed again when nothing was committed to a file this
 * call created, SQLite errors as one-line messages).
 */
export async function withWriteConnection<T>(path: string, body: (db: Database.Database) => Promise<T> | T): Promise<T> {
  const existed = existsSync(path);
  const db = openDb(path, { create: true });
  let ok = false;
  try {
    const r = await body(db);
    ok = true;
    return r;
  } catch (e) {
    throw storeError(path, e);
  } finally {
    if (!ok && !existed) removeIfEmpty(db, path);
    else closeWritable(db);
  }
}

/** Removes a trace and everything stored with it, in one transaction (a command undoing its own write). */
export function deleteTrace(path: string, id: number): void {
  const db = openDb(path, { create: true });
  try {
    const lo = id * CHUNK_ID_SHIFT;
    db.transaction(() => {
      db.prepare(`DELETE FROM events WHERE id BETWEEN ? AND ?`).run(lo, lo + CHUNK_ID_SHIFT - 1);
      deleteCheckpoints(db, id);
      db.prepare(`DELETE FROM findings WHERE trace = ?`).run(id);
      // bisect's per-operation table (src/store/projections.ts creates it on first use)
      if (db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'op_table'`).get()) db.prepare(`DELETE FROM op_table WHERE trace = ?`).run(id);
      db.prepare(`DELETE FROM traces WHERE id = ?`).run(id);
    }).immediate();
  } finally {
    closeWritable(db);
  }
}

/** Closes and deletes a database this process created, if it holds no trace and no one else uses it. */
export function removeIfEmpty(db: Database.Database, path: string): void {
  let empty = false;
  try {
    db.pragma('busy_timeout = 0');
    db.exec('BEGIN EXCLUSIVE');
    empty = (db.prepare(`SELECT count(*) AS n FROM traces`).get() as { n: number }).n === 0;
    db.exec('ROLLBACK');
  } catch {
    empty = false;
  }
  closeWritable(db);
  if (empty) for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) rmSync(f, { force: true });
}
