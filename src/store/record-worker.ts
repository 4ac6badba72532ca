// The recorder's writer thread (see recorder.ts): its own connection to the database file, fed one
// commit group at a time (chunks, checkpoints, findings, and the new committed count), each written
// in one transaction exactly as the recorder would have written it inline; it also keeps the stream
// hash, so SQLite and SHA-256 run beside the simulation instead of inside it.
//
// Protocol (all from the recorder's thread, in order): the worker opens its connection and sets
// [READY]; then 'start' (the chunks the recorder committed itself, which the stream hash starts
// with), 'group' messages, and one 'finish' ('finish' alone: the recorder never handed over).
// Progress and the outcome go through the shared Int32Array: [GROUPS_DONE] counts written groups,
// [STATE] turns from RUNNING to DONE or FAILED; the result ({hash} or {error}) is posted on `port` first.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { CheckpointWriter, type CheckpointRowParts } from './checkpoints.js';

export const GROUPS_DONE = 0;
export const STATE = 1;
export const READY = 2;
/** with `newTrace`: the id of the trace the worker inserted (set before READY) */
export const TRACE_ID = 3;
/** pages in the WAL before the writer thread's commit copies it into the database (see main) */
export const WAL_AUTOCHECKPOINT_PAGES = 16384;
export const RUNNING = 0;
export const DONE = 1;
export const FAILED = 2;

export interface WorkerInit {
  path: string;
  traceId: number;
  shared: SharedArrayBuffer;
  port: MessagePort;
  /** events.id of the trace's first chunk */
  firstChunkId: number;
  /** how long a commit waits for another writer (db.ts busyTimeoutMs) */
  busyTimeoutMs: number;
  /**
   * One transaction for the whole trace, on this thread (an import: all or nothing): the worker
   * begins it, inserts the trace's row (its id in [TRACE_ID]; `traceId` and `firstChunkId` are then
   * ignored: the chunk ids follow from the id and `chunkIdShift`), writes every group into it, and on
   * 'finish' marks the trace complete with the stream hash and commits; 'abort' (or a failure) rolls
   * it back.
   */
  newTrace?: { values: (string | number | null)[]; chunkIdShift: number };
}

/** The traces row of a new trace: the columns the Recorder fills in, in order. */
export const INSERT_TRACE = `INSERT INTO traces (name, source, seed, config, schema_version, engine_version, created, checkpoint_every)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;

export type ChunkRow = [number, number, number, number, Uint8Array];
export type FindingRow = [number, number, string, string, string, string, string];

/**
 * One commit group, as posted to the writer thread: the chunks' bytes back to back in one buffer
 * (transferred), and per chunk its seq0, event count and end offset in `ends` (plain numbers: a list
 * of typed-array views costs the structured clone ~2 us each, on both threads).
 */
export interface Group {
  type: 'group';
  data: Uint8Array;
  /** the group's first chunk number in the trace (its events.id is firstChunkId + it) */
  firstChunk: number;
  /** [seq0, n, end] per chunk */
  chunks: number[];
  /** each with only the pages that changed, when the recorder knows (see recorder.ts `pageIdentity`) */
  checkpoints: CheckpointRowParts[];
  findings: FindingRow[];
  committed: number;
  findingCount: number;
}

function main(init: WorkerInit): void {
  const flags = new Int32Array(init.shared);
  let db: Database.Database | null = null;
  const stop = (state: number, result: unknown) => {
    try {
      db?.close();
    } catch {
      /* reporting the first failure matters more */
    }
    init.port.postMessage(result);
    Atomics.store(flags, STATE, state);
    Atomics.notify(flags, STATE);
    parentPort!.close();
  };
  try {
    db = new Database(init.path, { fileMustExist: true, timeout: init.busyTimeoutMs });
    db.pragma('synchronous = NORMAL'); // per connection; WAL mode is already set on the file
    // the WAL is copied into the file when it reaches this many pages (64 MiB) rather than SQLite's
    // default 1000 (4 MiB): the same pages are copied, in 16 times fewer checkpoints, each of which
    // syncs the WAL and the file (synchronous = NORMAL syncs only there); closeWritable copies the rest
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    const own = init.newTrace !== undefined;
    if (own) {
      db.exec('BEGIN IMMEDIATE');
      init.traceId = Number(db.prepare(INSERT_TRACE).run(...init.newTrace!.values).lastInsertRowid);
      init.firstChunkId = init.traceId * init.newTrace!.chunkIdShift; // db.ts CHUNK_ID_SHIFT
      Atomics.store(flags, TRACE_ID, init.traceId);
    }
    const hash = createHash('sha256');
    const first = db.prepare(`SELECT data FROM events WHERE id BETWEEN ? AND ? ORDER BY id`).pluck();
    const insChunk = db.prepare(`INSERT INTO events (id, trace, seq0, n, data) VALUES (?, ?, ?, ?, ?)`);
    const insCk = new CheckpointWriter(db, init.traceId);
    const insFinding = db.prepare(`INSERT INTO findings (trace, seq, class, message, iova, gpa, chain) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const updTrace = db.prepare(`UPDATE traces SET events = ?, findings = ? WHERE id = ?`);
    const writeGroup = (g: Group): void => {
      const data = asBuffer(g.data);
      for (let i = 0, k = 0, from = 0; k < g.chunks.length; i++, k += 3) {
        const to = g.chunks[k + 2]!;
        insChunk.run(init.firstChunkId + g.firstChunk + i, init.traceId, g.chunks[k]!, g.chunks[k + 1]!, data.subarray(from, to));
        from = to;
      }
      for (const c of g.checkpoints) insCk.writeRow(c);
      for (const f of g.findings) insFinding.run(f);
      updTrace.run(g.committed, g.findingCount, init.traceId);
    };
    // inside the trace's own transaction a group needs none (a savepoint per group would cost)
    const write = own ? writeGroup : db.transaction(writeGroup);
    const markComplete = db.prepare(`UPDATE traces SET complete = 1, hash = ? WHERE id = ?`);
    Atomics.store(flags, READY, 1);
    Atomics.notify(flags, READY);
    parentPort!.on('message', (m: Group | { type: 'start'; chunksBefore: number } | { type: 'finish' } | { type: 'abort' }) => {
      try {
        if (m.type === 'abort') {
          if (db!.inTransaction) db!.exec('ROLLBACK');
          return stop(DONE, {});
        }
        if (m.type === 'finish') {
          const h = hash.digest('hex');
          if (own) {
            markComplete.run(h, init.traceId);
            db!.exec('COMMIT');
          }
          return stop(DONE, { hash: h });
        }
        if (m.type === 'start') {
          // the chunks the recorder committed itself before handing over: the stream hash starts with them
          if (m.chunksBefore > 0) for (const data of first.iterate(init.firstChunkId, init.firstChunkId + m.chunksBefore - 1) as Iterable<Buffer>) hash.update(data);
          return;
        }
        hash.update(m.data); // the chunks in order, back to back: the stream hash as if fed chunk by chunk
        write(m);
        Atomics.add(flags, GROUPS_DONE, 1);
        Atomics.notify(flags, GROUPS_DONE);
      } catch (e) {
        stop(FAILED, { error: (e as Error).message ?? String(e), code: (e as { code?: string }).code });
      }
    });
  } catch (e) {
    stop(FAILED, { error: (e as Error).message ?? String(e), code: (e as { code?: string }).code });
  }
}

export const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

if (parentPort && (workerData as { recordWorker?: WorkerInit } | null)?.recordWorker) main((workerData as { recordWorker: WorkerInit }).recordWorker);
