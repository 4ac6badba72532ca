// Appends a trace while it is being produced. Events are encoded into CHUNK-sized rows; rows,
// checkpoints and findings are committed together every FLUSH_CHUNKS chunks, each commit also
// advancing traces.events, so a recording killed at any instant leaves a complete, consistent
// prefix (the trace stays marked incomplete). The stream hash covers every encoded event in order.
// A commit group's chunks are encoded back to back into one buffer (each row a view of it): no copy
// per chunk, and one buffer to hand to the writer thread per group.
//
// Where the commits happen: a short trace is written on this thread. Once a trace passes
// START_CHUNKS (and the database is a file this thread is not holding a transaction on), a worker
// thread with its own connection starts (record-worker.ts) while this thread goes on writing; at the
// first commit from HANDOVER_CHUNKS on at which the worker is ready, the writing moves to it: this
// thread only simulates and encodes, and hands over each commit group as it is formed. (Starting a
// thread costs tens of ms, more on a busy machine: this thread never waits for it.) The groups are
// written in order, one transaction each, exactly as they would have been here; at most
// MAX_GROUPS_IN_FLIGHT wait for the worker (this thread blocks beyond that), and finish() waits for
// the last one.
import type Database from 'better-sqlite3';
import { createHash, type Hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { EventWriter } from '../events/binary.js';
import { hex } from '../events/json.js';
import { type DmaEvent, type Kind, SCHEMA_VERSION } from '../events/schema.js';
import { worldToPlain } from '../engine/snapshot.js';
import { PAGE } from '../model/memory.js';
import type { World } from '../model/world.js';
import type { SimState } from '../engine/snapshot.js';
import { busyTimeoutMs, CHUNK, CHUNK_ID_SHIFT, CheckpointWriter, deleteCheckpoints } from './db.js';
import type { CheckpointRowParts } from './checkpoints.js';
import { asBuffer, type ChunkRow, type FindingRow, type Group, GROUPS_DONE, INSERT_TRACE, READY, RUNNING, STATE, TRACE_ID, type WorkerInit } from './record-worker.js';

import { ENGINE_VERSION } from '../events/jsonl.js';
export { ENGINE_VERSION };
const FLUSH_CHUNKS = 16;
/** chunks written on this thread before a worker is started (a worker costs a few tens of ms to start) */
const START_CHUNKS = 32;
/** chunks written on this thread at least, before the worker (once ready) takes over */
const HANDOVER_CHUNKS = 64;
const MAX_GROUPS_IN_FLIGHT = 8;
const EMPTY = new Uint8Array(0);

// The worker is the compiled record-worker.js next to this module; when running from sources (the
// test runner) there is none, and everything is written on this thread.
const WORKER_URL = new URL('./record-worker.js', import.meta.url);
const WORKER_AVAILABLE = WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));

export interface TraceMeta {
  name: string;
  source: 'sim' | 'import';
  seed: string | null;
  config: unknown;
  checkpointEvery: number;
}

/** The writer thread and how to talk to it. */
interface Writer {
  worker: Worker;
  flags: Int32Array;
  results: MessagePort;
  sent: number;
  /** it has taken over the writing (until then it only got ready) */
  live: boolean;
}

export class Recorder {
  readonly traceId: number;
  /** the commit group being encoded: its chunks back to back */
  private readonly writer = new EventWriter(1 << 16);
  private inChunk = 0;
  private chunkNo = 0;
  private seq = 0;
  private committed = 0;
  private pending: ChunkRow[] = [];
  private pendingCk: CheckpointRowParts[] = [];
  /**
   * With `pageIdentity`: the pages of the last checkpoint sent to whoever writes them now (this
   * thread, then the writer thread), so a checkpoint carries only the pages that are new objects.
   */
  private ckPages: CheckpointPages | null;
  private pendingFindings: FindingRow[] = [];
  private findingCount = 0;
  /** the stream hash while this thread writes (the worker keeps it after the handover) */
  private readonly hash: Hash = createHash('sha256');
  private thread: Writer | null = null;
  private readonly insChunk: Database.Statement;
  private readonly insCk: CheckpointWriter;
  private readonly insFinding: Database.Statement;
  private readonly updTrace: Database.Statement;
  private readonly flushTx: () => void;

  /**
   * `transaction`: the whole trace is written in one transaction of its own, committed by finish()
   * and rolled back by abort() (an import: all or nothing); `db` must not be in one. With a file
   * database it is the writer thread's from the start (it begins it and inserts the trace), so
   * SQLite and the stream hash run beside the caller from the first group; otherwise it is `db`'s.
   *
   * `pageIdentity`: the worlds given to checkpoint() are one working world whose pages are copied
   * before their first write after a checkpoint (a Pipeline that is not `checkpointReadsOnly`:
   * engine/pipeline.ts maybeCheckpoint, model/memory.ts ownedPage), and never removed, so a page
   * object that was in the world at the last checkpoint holds the same bytes now. Each checkpoint
   * then copies and sends only the pages that are new objects; without it, every page.
   */
  constructor(
    private readonly db: Database.Database,
    meta: TraceMeta,
    opts: { worker?: boolean; transaction?: boolean; pageIdentity?: boolean } = {},
  ) {
    this.ckPages = opts.pageIdentity ? { pfns: [], pages: [] } : null;
    const values = [meta.name, meta.source, meta.seed, JSON.stringify(meta.config), SCHEMA_VERSION, ENGINE_VERSION, new Date().toISOString(), meta.checkpointEvery];
    this.useWorker = (opts.worker ?? true) && WORKER_AVAILABLE && !db.memory && !!db.name;
    this.ownTx = opts.transaction ? (this.useWorker ? 'worker' : 'inline') : null;
    if (this.ownTx === 'worker') {
      const t = this.startWorker({ values, chunkIdShift: CHUNK_ID_SHIFT });
      // the worker begins the transaction and inserts the trace: its id (a few tens of ms; its BEGIN
      // may wait out another writer, up to the busy timeout). A worker that died before it could say
      // so (it failed to load) is given up on after that and half a minute more.
      const limit = Math.ceil(busyTimeoutMs() / 1000) + 30;
      for (let s = 0; Atomics.load(t.flags, READY) !== 1; s++) {
        if (s > limit) {
          void t.worker.terminate();
          throw new Error('recording failed: the writer thread did not start');
        }
        this.wait(READY, 0); // at most a second; throws what the worker failed with
      }
      this.traceId = Atomics.load(t.flags, TRACE_ID);
      t.live = true;
    } else {
      if (this.ownTx === 'inline') db.exec('BEGIN IMMEDIATE');
      this.traceId = Number(db.prepare(INSERT_TRACE).run(...values).lastInsertRowid);
    }
    this.insChunk = db.prepare(`INSERT INTO events (id, trace, seq0, n, data) VALUES (?, ?, ?, ?, ?)`);
    this.insCk = new CheckpointWriter(db, this.traceId);
    this.insFinding = db.prepare(`INSERT INTO findings (trace, seq, class, message, iova, gpa, chain) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.updTrace = db.prepare(`UPDATE traces SET events = ?, findings = ? WHERE id = ?`);
    this.flushTx = db.transaction(() => {
      for (const r of this.pending) this.insChunk.run(r[0], r[1], r[2], r[3], asBuffer(r[4]));
      for (const c of this.pendingCk) this.insCk.writeRow(c);
      for (const r of this.pendingFindings) this.insFinding.run(r);
      this.updTrace.run(this.committed, this.findingCount, this.traceId);
    });
  }

  private readonly useWorker: boolean;
  /** the trace's own transaction ({@link constructor} `transaction`): whose it is */
  private readonly ownTx: 'worker' | 'inline' | null;

  /** `kind`: the event's kind, when the caller has read it already (each read of it is a megamorphic load). */
  event(ev: DmaEvent, kind: Kind = ev.kind): void {
    this.writer.write(ev, kind);
    this.seq = ev.seq;
    if (kind === 'finding' && ev.kind === 'finding') {
      this.findingCount++;
      this.pendingFindings.push([this.traceId, ev.seq, ev.cls, ev.message, hex(ev.iova), hex(ev.gpa), JSON.stringify(ev.chain)]);
    }
    if (++this.inChunk === CHUNK) this.closeChunk();
  }

  /** Stores the world (and RNG state) after event seq; committed with the chunks up to it. */
  checkpoint(seq: number, world: World, sim: SimState | null): void {
    this.pendingCk.push(encodeCheckpointRow(seq, world, sim, this.ckPages));
  }

  private closeChunk(): void {
    if (this.inChunk === 0) return;
    const seq0 = this.seq - this.inChunk + 1;
    // a view for now: the group's buffer may still grow (and move) while later chunks are encoded
    this.pending.push([this.traceId * CHUNK_ID_SHIFT + this.chunkNo, this.traceId, seq0, this.inChunk, EMPTY]);
    this.chunkEnds.push(this.writer.pos);
    this.committed = this.seq;
    this.chunkNo++;
    this.inChunk = 0;
    if (this.pending.length >= FLUSH_CHUNKS) this.flush();
  }

  /** where each pending chunk ends in the group's buffer */
  private chunkEnds: number[] = [];

  private flush(): void {
    if (this.thread?.live) {
      // the group's buffer goes to the writer thread (transferred); the next group gets a new one
      const used = this.writer.pos;
      this.send(this.writer.take(Math.max(1 << 16, used + (used >> 2))));
    } else {
      this.rowsOf(this.writer.bytes());
      if (this.pending.length) this.hash.update(this.writer.bytes());
      this.flushTx();
      this.writer.reset(); // SQLite has copied the rows
      if (this.useWorker && !this.db.inTransaction) this.toWorker();
    }
    this.chunkEnds = [];
    this.pending = [];
    this.pendingCk = [];
    this.pendingFindings = [];
  }

  /** Points each pending row at its bytes in the group's buffer (for the commit on this thread). */
  private rowsOf(group: Uint8Array): void {
    let from = 0;
    for (let i = 0; i < this.pending.length; i++) {
      const to = this.chunkEnds[i]!;
      this.pending[i]![4] = new Uint8Array(group.buffer, group.byteOffset + from, to - from);
      from = to;
    }
  }

  /** After an inline commit: starts the writer thread, or hands the writing over to it once it is ready. */
  private toWorker(): void {
    const t = this.thread;
    if (!t) {
      if (this.chunkNo >= START_CHUNKS) this.startWorker();
      return;
    }
    if (this.chunkNo < HANDOVER_CHUNKS || Atomics.load(t.flags, READY) !== 1 || Atomics.load(t.flags, STATE) !== RUNNING) return;
    // everything up to here is committed: the worker hashes it from the database, then takes the groups
    t.worker.postMessage({ type: 'start', chunksBefore: this.chunkNo });
    t.live = true;
    // the worker's checkpoint writer starts with no pages: the next checkpoint sends them all
    if (this.ckPages) this.ckPages = { pfns: [], pages: [] };
  }

  private startWorker(newTrace?: WorkerInit['newTrace']): Writer {
    const shared = new SharedArrayBuffer(16);
    const { port1, port2 } = new MessageChannel();
    const id = newTrace ? 0 : this.traceId;
    const init: WorkerInit = { path: this.db.name, traceId: id, shared, port: port2, firstChunkId: id * CHUNK_ID_SHIFT, busyTimeoutMs: busyTimeoutMs(), ...(newTrace ? { newTrace } : {}) };
    const worker = new Worker(WORKER_URL, { workerData: { recordWorker: init }, transferList: [port2] });
    worker.unref(); // a recording that fails leaves it; what it committed stays a consistent prefix
    worker.on('error', () => {}); // reported through the shared state (see wait)
    this.thread = { worker, flags: new Int32Array(shared), results: port1, sent: 0, live: false };
    return this.thread;
  }

  /** Stops the writer thread and waits (up to a minute) for it to close its connection (rolling back a transaction of its own). */
  private stopWorker(t: Writer): void {
    t.worker.postMessage({ type: this.ownTx === 'worker' ? 'abort' : 'finish' });
    for (let i = 0; i < 600 && Atomics.load(t.flags, STATE) === RUNNING; i++) Atomics.wait(t.flags, STATE, RUNNING, 100);
  }

  private send(data: Uint8Array): void {
    const t = this.thread!;
    // backpressure: never more than MAX_GROUPS_IN_FLIGHT groups queued for the writer
    while (t.sent - Atomics.load(t.flags, GROUPS_DONE) >= MAX_GROUPS_IN_FLIGHT) this.wait(GROUPS_DONE, Atomics.load(t.flags, GROUPS_DONE));
    const chunks: number[] = [];
    for (let i = 0; i < this.pending.length; i++) chunks.push(this.pending[i]![2], this.pending[i]![3], this.chunkEnds[i]!);
    const firstChunk = this.chunkNo - this.pending.length;
    const g: Group = { type: 'group', data, firstChunk, chunks, checkpoints: this.pendingCk, findings: this.pendingFindings, committed: this.committed, findingCount: this.findingCount };
    // the chunks' bytes are one buffer: transferred once, like each checkpoint's blob
    const transfer = [data.buffer as ArrayBuffer];
    for (const c of this.pendingCk) if (c.pages.byteLength) transfer.push(c.pages.buffer as ArrayBuffer);
    t.worker.postMessage(g, transfer);
    t.sent++;
  }

  /** Blocks until flags[i] is no longer `was`, or throws what the writer thread failed with. */
  private wait(i: number, was: number): void {
    const t = this.thread!;
    if (Atomics.load(t.flags, STATE) === RUNNING) Atomics.wait(t.flags, i, was, 1000);
    if (Atomics.load(t.flags, STATE) !== RUNNING && i !== STATE) this.outcome();
  }

  /** The writer thread's final message: the stream hash, or its failure (thrown). */
  private outcome(): string {
    const t = this.thread!;
    const r = receiveMessageOnPort(t.results)?.message as { hash?: string; error?: string; code?: string } | undefined;
    if (!r || r.error !== undefined || r.hash === undefined)
      // with the SQLite code, so the caller can say what went wrong (store/db.ts storeError)
      throw Object.assign(new Error(`recording failed while writing the database: ${r?.error ?? 'the writer thread stopped'}`), { code: r?.code });
    return r.hash;
  }

  /**
   * After a failure: stops the writer thread and removes what was committed of this trace, in one
   * transaction, so a record that fails (not one that is killed) leaves the database as it was.
   * Best effort: if the database cannot be written now, the trace stays as an incomplete prefix.
   */
  abort(): void {
    const t = this.thread;
    if (t) {
      this.stopWorker(t);
      this.thread = null;
    }
    try {
      if (this.ownTx === 'worker') return; // rolled back by the worker
      if (this.ownTx === 'inline') {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        return;
      }
      if (this.db.inTransaction) return; // the caller's transaction rolls everything back
      const lo = this.traceId * CHUNK_ID_SHIFT;
      this.db.transaction(() => {
        this.db.prepare(`DELETE FROM events WHERE id BETWEEN ? AND ?`).run(lo, lo + CHUNK_ID_SHIFT - 1);
        deleteCheckpoints(this.db, this.traceId);
        this.db.prepare(`DELETE FROM findings WHERE trace = ?`).run(this.traceId);
        this.db.prepare(`DELETE FROM traces WHERE id = ?`).run(this.traceId);
      })();
    } catch {
      /* the first failure is what gets reported */
    }
  }

  /** Commits the tail and marks the trace complete; returns the stream hash. */
  finish(): { events: number; hash: string; findings: number } {
    this.closeChunk();
    this.flush();
    let hash: string;
    const t = this.thread;
    if (t?.live) {
      t.worker.postMessage({ type: 'finish' });
      while (Atomics.load(t.flags, STATE) === RUNNING) this.wait(STATE, RUNNING);
      hash = this.outcome();
    } else {
      // a worker that never took over only has to close its connection (its failure, if any, cost nothing)
      if (t) this.stopWorker(t);
      hash = this.hash.digest('hex');
    }
    this.thread = null;
    // the worker with the transaction marked the trace complete before its commit
    if (this.ownTx !== 'worker') this.db.prepare(`UPDATE traces SET complete = 1, hash = ? WHERE id = ?`).run(hash, this.traceId);
    if (this.ownTx === 'inline') this.db.exec('COMMIT');
    return { events: this.seq, hash, findings: this.findingCount };
  }
}

/** The pages of the last checkpoint sent: each one's pfn and page object, in the map's order. */
export interface CheckpointPages {
  pfns: number[];
  pages: Uint8Array[];
}

/**
 * A checkpoint row, encoded once: the header of the blob (engine/snapshot.ts encodeCheckpoint(world,
 * sim)) and what its state hash starts with, the header of encodeCheckpoint(world, null), which
 * differs only in the JSON header's "sim" member: both built from one serialization of the world.
 * Then the pages (u64 pfn + 4096 bytes each): all of them, or with `last` (the pages of the last row,
 * updated here; see Recorder `pageIdentity`) only those that are not the same objects at the same
 * place in the map's order, with their indices. If the order is not the last one's with new pages
 * after it (never, as pages are only added), every page is listed. store/checkpoints.ts writeRow puts
 * the blob back together; test/store/recorder.test.ts holds the result to encodeCheckpoint and stateHash.
 */
export function encodeCheckpointRow(seq: number, world: World, sim: SimState | null, last: CheckpointPages | null = null): CheckpointRowParts {
  const worldJson = JSON.stringify(worldToPlain(world));
  const head = Buffer.from(`{"world":${worldJson},"sim":${JSON.stringify(sim)}}`);
  const nullHead = `{"world":${worldJson},"sim":null}`;
  const n = Buffer.byteLength(nullHead);
  const hashHead = Buffer.allocUnsafe(4 + n);
  hashHead.writeUInt32LE(n, 0);
  hashHead.write(nullHead, 4);
  const count = world.mem.size;
  // which pages go: with `last`, those that are new objects (and the order must be the last one's)
  let listed = count;
  const had = last ? last.pfns.length : 0;
  if (last) {
    let i = 0;
    listed = 0;
    for (const [pfn, page] of world.mem) {
      if (i < had && last.pfns[i] !== pfn) break;
      if (i >= had || last.pages[i] !== page) listed++;
      i++;
    }
    if (i < count || count < had) listed = -1; // another order: every page, and `last` starts again
  }
  const S = 8 + PAGE;
  const all = listed < 0 || !last;
  if (all) listed = count;
  const at = all ? null : new Uint32Array(listed);
  // every byte is written below: no zeroing (its own ArrayBuffer, never the pool's: it is transferred)
  const out = Buffer.allocUnsafeSlow(listed * S);
  const pages = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  let i = 0;
  let k = 0;
  for (const [pfn, page] of world.mem) {
    if (all || i >= had || last!.pages[i] !== page) {
      if (at) at[k] = i;
      const p = k * S;
      // u64 pfn little-endian (pfn < 2^52: exact), then the page
      const lo = pfn % 0x100000000;
      const hi = (pfn - lo) / 0x100000000;
      out.writeUInt32LE(lo, p);
      out.writeUInt32LE(hi, p + 4);
      out.set(page, p + 8);
      k++;
    }
    if (last) {
      last.pfns[i] = pfn;
      last.pages[i] = page;
    }
    i++;
  }
  if (last) {
    last.pfns.length = count;
    last.pages.length = count;
  }
  return { seq, head, hashHead, count, at, pages };
}
