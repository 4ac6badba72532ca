// Appends a trace while it is being produced. Events are encoded into CHUNK-sized rows; rows,
// checkpoints and findings are committed together every FLUSH_CHUNKS chunks, each commit also
// advancing traces.events, so a recording killed at any instant leaves a complete, consistent
// prefix (the trace stays marked incomplete). The stream hash covers every encoded event in order.
import type Database from 'better-sqlite3';
import { createHash, type Hash } from 'node:crypto';
import { EventWriter } from '../events/binary.js';
import { hex } from '../events/json.js';
import { type DmaEvent, SCHEMA_VERSION } from '../events/schema.js';
import { encodeCheckpoint, hashBytes } from '../engine/snapshot.js';
import type { World } from '../model/world.js';
import type { SimState } from '../sim/sim.js';
import { CHUNK, CHUNK_ID_SHIFT } from './db.js';

export const ENGINE_VERSION = '0.1.0';
const FLUSH_CHUNKS = 16;

export interface TraceMeta {
  name: string;
  source: 'sim' | 'import';
  seed: string | null;
  config: unknown;
  checkpointEvery: number;
}

export class Recorder {
  readonly traceId: number;
  private readonly writer = new EventWriter(1 << 16);
  private inChunk = 0;
  private chunkNo = 0;
  private seq = 0;
  private committed = 0;
  private pending: [number, number, number, number, Buffer][] = [];
  private pendingCk: [number, number, string, Buffer][] = [];
  private pendingFindings: [number, number, string, string, string, string, string][] = [];
  private findingCount = 0;
  private readonly hash: Hash = createHash('sha256');
  private readonly insChunk: Database.Statement;
  private readonly insCk: Database.Statement;
  private readonly insFinding: Database.Statement;
  private readonly updTrace: Database.Statement;
  private readonly flushTx: () => void;

  constructor(
    private readonly db: Database.Database,
    meta: TraceMeta,
  ) {
    const info = db
      .prepare(
        `INSERT INTO traces (name, source, seed, config, schema_version, engine_version, created, checkpoint_every)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(meta.name, meta.source, meta.seed, JSON.stringify(meta.config), SCHEMA_VERSION, ENGINE_VERSION, new Date().toISOString(), meta.checkpointEvery);
    this.traceId = Number(info.lastInsertRowid);
    this.insChunk = db.prepare(`INSERT INTO events (id, trace, seq0, n, data) VALUES (?, ?, ?, ?, ?)`);
    this.insCk = db.prepare(`INSERT INTO checkpoints (trace, seq, state_hash, state) VALUES (?, ?, ?, ?)`);
    this.insFinding = db.prepare(`INSERT INTO findings (trace, seq, class, message, iova, gpa, chain) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.updTrace = db.prepare(`UPDATE traces SET events = ?, findings = ? WHERE id = ?`);
    this.flushTx = db.transaction(() => {
      for (const r of this.pending) this.insChunk.run(r);
      for (const r of this.pendingCk) this.insCk.run(r);
      for (const r of this.pendingFindings) this.insFinding.run(r);
      this.updTrace.run(this.committed, this.findingCount, this.traceId);
    });
  }

  event(ev: DmaEvent): void {
    this.writer.write(ev);
    this.seq = ev.seq;
    if (ev.kind === 'finding') {
      this.findingCount++;
      this.pendingFindings.push([this.traceId, ev.seq, ev.cls, ev.message, hex(ev.iova), hex(ev.gpa), JSON.stringify(ev.chain)]);
    }
    if (++this.inChunk === CHUNK) this.closeChunk();
  }

  /** Stores the world (and RNG state) after event seq; committed with the chunks up to it. */
  checkpoint(seq: number, world: World, sim: SimState | null): void {
    const blob = encodeCheckpoint(world, sim);
    this.pendingCk.push([this.traceId, seq, hashBytes(encodeCheckpoint(world, null)), blob]);
  }

  private closeChunk(): void {
    if (this.inChunk === 0) return;
    const data = Buffer.from(this.writer.bytes());
    this.hash.update(data);
    const seq0 = this.seq - this.inChunk + 1;
    this.pending.push([this.traceId * CHUNK_ID_SHIFT + this.chunkNo, this.traceId, seq0, this.inChunk, data]);
    this.committed = this.seq;
    this.chunkNo++;
    this.inChunk = 0;
    this.writer.reset();
    if (this.pending.length >= FLUSH_CHUNKS) this.flush();
  }

  private flush(): void {
    this.flushTx();
    this.pending = [];
    this.pendingCk = [];
    this.pendingFindings = [];
  }

  /** Commits the tail and marks the trace complete; returns the stream hash. */
  finish(): { events: number; hash: string; findings: number } {
    this.closeChunk();
    this.flush();
    const hash = this.hash.digest('hex');
    this.db.prepare(`UPDATE traces SET complete = 1, hash = ? WHERE id = ?`).run(hash, this.traceId);
    return { events: this.seq, hash, findings: this.findingCount };
  }
}
