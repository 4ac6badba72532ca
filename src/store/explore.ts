// Explore results in the trace database, beside the traces (new tables only; nothing existing
// changes, so older dmareplay versions open the file as before). The counts are stored per block
// (an aligned seed range), never as running totals: a block is written once, in one transaction,
// and a block already present is left alone. That makes merging shard databases idempotent and
// commutative by construction (a union of blocks), and a killed run leaves every finished block.
//
//   explore_campaigns  (id, params)                 what decides each seed's run (JSON)
//   explore_blocks     (campaign, lo, hi, seeds, passing, runs, failing)   the summary row of a seed range
//   explore_block_sigs (campaign, lo, sig, count, first_seed, first_point)
//   explore_signatures (campaign, sig, class, rule, shape, message, seed, point)   message of the first run
//   explore_repro      (campaign, sig, seed, point, orig_events, orig_hash, orig_config, trace, events, minimized)
//                      the reproducer of a signature: its smallest run (fewest events, then lowest
//                      seed and point), stored in `traces` minimized once the minimization is done
import type Database from 'better-sqlite3';
import { CHUNK_ID_SHIFT, copyCheckpoints, deleteCheckpoints } from './db.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS explore_campaigns (id TEXT PRIMARY KEY, params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS explore_blocks (
  campaign TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
  seeds INTEGER NOT NULL, passing INTEGER NOT NULL,   -- seeds none of whose runs failed
  runs INTEGER NOT NULL, failing INTEGER NOT NULL,     -- runs (a sweep runs a seed once per injection point) and failing runs
  PRIMARY KEY (campaign, lo)
);
CREATE TABLE IF NOT EXISTS explore_block_sigs (
  campaign TEXT NOT NULL, lo INTEGER NOT NULL, sig TEXT NOT NULL,
  count INTEGER NOT NULL, first_seed INTEGER NOT NULL, first_point INTEGER NOT NULL,
  PRIMARY KEY (campaign, lo, sig)
);
CREATE TABLE IF NOT EXISTS explore_signatures (
  campaign TEXT NOT NULL, sig TEXT NOT NULL, class TEXT NOT NULL, rule TEXT NOT NULL, shape TEXT NOT NULL,
  message TEXT NOT NULL, seed INTEGER NOT NULL, point INTEGER NOT NULL,  -- the message of the first run that hit it
  PRIMARY KEY (campaign, sig)
);
CREATE TABLE IF NOT EXISTS explore_repro (
  campaign TEXT NOT NULL, sig TEXT NOT NULL,
  seed INTEGER NOT NULL, point INTEGER NOT NULL,
  orig_events INTEGER NOT NULL, orig_hash TEXT NOT NULL, orig_config TEXT NOT NULL,  -- the run as explore ran it (what is compared)
  trace INTEGER NOT NULL,             -- the stored trace (traces.id)
  events INTEGER NOT NULL,            -- its events
  minimized INTEGER NOT NULL,         -- 1 once it is the minimized run, 0 while it is the run itself
  PRIMARY KEY (campaign, sig)
);
`;

export function ensureExploreTables(db: Database.Database): void {
  db.exec(SCHEMA);
}

export function hasExploreTables(db: Database.Database): boolean {
  return !!db.prepare(`SELECT 1 FROM sqlite_master WHERE type='table' AND name='explore_blocks'`).get();
}

export interface BlockRow {
  lo: number;
  hi: number;
  seeds: number;
  passing: number;
  runs: number;
  failing: number;
}
export interface BlockSigRow {
  sig: string;
  count: number;
  first_seed: number;
  first_point: number;
}
export interface SignatureRow {
  sig: string;
  class: string;
  rule: string;
  shape: string;
  message: string;
  seed: number;
  point: number;
}
export interface ReproRow {
  sig: string;
  seed: number;
  point: number;
  orig_events: number;
  orig_hash: string;
  orig_config: string;
  trace: number;
  events: number;
  minimized: number;
}

const REPRO_COLS = 'sig, seed, point, orig_events, orig_hash, orig_config, trace, events, minimized';

export function putCampaign(db: Database.Database, id: string, params: unknown): void {
  db.prepare(`INSERT OR IGNORE INTO explore_campaigns VALUES (?, ?)`).run(id, JSON.stringify(params));
}

export function campaignParams(db: Database.Database, id: string): unknown {
  const r = db.prepare(`SELECT params FROM explore_campaigns WHERE id = ?`).get(id) as { params: string } | undefined;
  return r ? JSON.parse(r.params) : null;
}

/** The stored block starting at lo, if any. */
export function storedBlock(db: Database.Database, campaign: string, lo: number): BlockRow | undefined {
  return db.prepare(`SELECT lo, hi, seeds, passing, runs, failing FROM explore_blocks WHERE campaign = ? AND lo = ?`).get(campaign, lo) as BlockRow | undefined;
}

/**
 * Writes one block: its summary row, its per-signature counts and the signatures it names (a block
 * covering more seeds than the stored one with the same start replaces it; a narrower one is ignored).
 * Call inside a transaction.
 */
export function putBlock(db: Database.Database, campaign: string, b: BlockRow, sigs: BlockSigRow[], info: SignatureRow[]): boolean {
  const old = storedBlock(db, campaign, b.lo);
  if (old && old.hi >= b.hi) return false;
  if (old) db.prepare(`DELETE FROM explore_block_sigs WHERE campaign = ? AND lo = ?`).run(campaign, b.lo);
  db.prepare(`INSERT OR REPLACE INTO explore_blocks VALUES (?, ?, ?, ?, ?, ?, ?)`).run(campaign, b.lo, b.hi, b.seeds, b.passing, b.runs, b.failing);
  const ins = db.prepare(`INSERT INTO explore_block_sigs VALUES (?, ?, ?, ?, ?, ?)`);
  for (const s of sigs) ins.run(campaign, b.lo, s.sig, s.count, s.first_seed, s.first_point);
  putSignatures(db, campaign, info);
  return true;
}

/** Adds signatures; one already known keeps the message of whichever run came first (lower seed, then point). */
export function putSignatures(db: Database.Database, campaign: string, info: SignatureRow[]): void {
  const get = db.prepare(`SELECT seed, point FROM explore_signatures WHERE campaign = ? AND sig = ?`);
  const put = db.prepare(`INSERT OR REPLACE INTO explore_signatures VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  for (const s of info) {
    const old = get.get(campaign, s.sig) as { seed: number; point: number } | undefined;
    if (old && (old.seed < s.seed || (old.seed === s.seed && old.point <= s.point))) continue;
    put.run(campaign, s.sig, s.class, s.rule, s.shape, s.message, s.seed, s.point);
  }
}

export function getRepro(db: Database.Database, campaign: string, sig: string): ReproRow | undefined {
  return db.prepare(`SELECT ${REPRO_COLS} FROM explore_repro WHERE campaign = ? AND sig = ?`).get(campaign, sig) as ReproRow | undefined;
}

type Run = Pick<ReproRow, 'orig_events' | 'seed' | 'point'>;

/** Smaller first: fewer events, then the lower seed and injection point. */
export function smaller(a: Run, b: Run): boolean {
  return a.orig_events !== b.orig_events ? a.orig_events < b.orig_events : a.seed !== b.seed ? a.seed < b.seed : a.point < b.point;
}

const sameRun = (a: Run, b: Run) => a.seed === b.seed && a.point === b.point && a.orig_events === b.orig_events;

/**
 * Keeps `r` as the reproducer of its signature if its run is smaller than the stored one's, or is the
 * same run, minimized where the stored one is not; `store` writes its trace. True if kept.
 */
export function offerRepro(db: Database.Database, campaign: string, r: Omit<ReproRow, 'trace'>, store: () => number): boolean {
  const old = getRepro(db, campaign, r.sig);
  if (old && !smaller(r, old) && !(sameRun(r, old) && r.minimized && !old.minimized)) return false;
  const trace = store();
  db.prepare(`INSERT OR REPLACE INTO explore_repro (campaign, ${REPRO_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
    campaign,
    r.sig,
    r.seed,
    r.point,
    r.orig_events,
    r.orig_hash,
    r.orig_config,
    trace,
    r.events,
    r.minimized,
  );
  if (old && old.trace !== trace && !traceStillUsed(db, old.trace)) deleteTrace(db, old.trace);
  return true;
}

function traceStillUsed(db: Database.Database, trace: number): boolean {
  return !!db.prepare(`SELECT 1 FROM explore_repro WHERE trace = ?`).get(trace);
}

export function deleteTrace(db: Database.Database, trace: number): void {
  db.prepare(`DELETE FROM events WHERE id BETWEEN ? AND ?`).run(trace * CHUNK_ID_SHIFT, trace * CHUNK_ID_SHIFT + CHUNK_ID_SHIFT - 1);
  deleteCheckpoints(db, trace);
  db.prepare(`DELETE FROM findings WHERE trace = ?`).run(trace);
  db.prepare(`DELETE FROM traces WHERE id = ?`).run(trace);
}

/** Copies trace `id` of `src` into `dst` (a new id there) with its events, checkpoints and findings. */
export function copyTrace(src: Database.Database, dst: Database.Database, id: number): number {
  const t = src.prepare(`SELECT * FROM traces WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
  if (!t) throw new Error(`trace ${id} is missing`);
  const cols = Object.keys(t).filter((c) => c !== 'id');
  const info = dst.prepare(`INSERT INTO traces (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((c) => t[c]));
  const to = Number(info.lastInsertRowid);
  const insEv = dst.prepare(`INSERT INTO events (id, trace, seq0, n, data) VALUES (?, ?, ?, ?, ?)`);
  for (const e of src.prepare(`SELECT id, seq0, n, data FROM events WHERE id BETWEEN ? AND ? ORDER BY id`).iterate(id * CHUNK_ID_SHIFT, id * CHUNK_ID_SHIFT + CHUNK_ID_SHIFT - 1) as Iterable<{
    id: number;
    seq0: number;
    n: number;
    data: Buffer;
  }>)
    insEv.run(to * CHUNK_ID_SHIFT + (e.id - id * CHUNK_ID_SHIFT), to, e.seq0, e.n, e.data);
  copyCheckpoints(src, dst, id, to);
  const insF = dst.prepare(`INSERT INTO findings (trace, seq, class, message, iova, gpa, chain) VALUES (?, ?, ?, ?, ?, ?, ?)`);
  for (const f of src.prepare(`SELECT seq, class, message, iova, gpa, chain FROM findings WHERE trace = ?`).iterate(id) as Iterable<Record<string, unknown>>)
    insF.run(to, f.seq, f.class, f.message, f.iova, f.gpa, f.chain);
  return to;
}

export interface SignatureTotal extends SignatureRow {
  count: number;
  first_seed: number;
  first_point: number;
  repro: ReproRow | null;
}

/** Per signature of a campaign: the runs that hit it over every stored block, the first run, the reproducer. */
export function signatureTotals(db: Database.Database, campaign: string): SignatureTotal[] {
  const rows = db
    .prepare(
      `SELECT s.sig, s.class, s.rule, s.shape, s.message, s.seed, s.point, sum(b.count) AS count
       FROM explore_signatures s JOIN explore_block_sigs b ON b.campaign = s.campaign AND b.sig = s.sig
       WHERE s.campaign = ? GROUP BY s.sig`,
    )
    .all(campaign) as (SignatureRow & { count: number })[];
  const first = db.prepare(`SELECT first_seed, first_point FROM explore_block_sigs WHERE campaign = ? AND sig = ? ORDER BY first_seed, first_point LIMIT 1`);
  return rows
    .map((r) => {
      const f = first.get(campaign, r.sig) as { first_seed: number; first_point: number };
      return { ...r, ...f, repro: getRepro(db, campaign, r.sig) ?? null };
    })
    .sort((a, b) => a.first_seed - b.first_seed || a.first_point - b.first_point || (a.sig < b.sig ? -1 : 1));
}

export function blockTotals(db: Database.Database, campaign: string): { blocks: number; seeds: number; passing: number; runs: number; failing: number } {
  return db
    .prepare(
      `SELECT count(*) AS blocks, coalesce(sum(seeds), 0) AS seeds, coalesce(sum(passing), 0) AS passing, coalesce(sum(runs), 0) AS runs, coalesce(sum(failing), 0) AS failing
       FROM explore_blocks WHERE campaign = ?`,
    )
    .get(campaign) as { blocks: number; seeds: number; passing: number; runs: number; failing: number };
}

export function listBlocks(db: Database.Database, campaign: string): BlockRow[] {
  return db.prepare(`SELECT lo, hi, seeds, passing, runs, failing FROM explore_blocks WHERE campaign = ? ORDER BY lo`).all(campaign) as BlockRow[];
}

export function listBlockSigs(db: Database.Database, campaign: string, lo: number): BlockSigRow[] {
  return db.prepare(`SELECT sig, count, first_seed, first_point FROM explore_block_sigs WHERE campaign = ? AND lo = ? ORDER BY sig`).all(campaign, lo) as BlockSigRow[];
}

export function listCampaigns(db: Database.Database): string[] {
  return (db.prepare(`SELECT id FROM explore_campaigns ORDER BY id`).all() as { id: string }[]).map((r) => r.id);
}

export function listSignatures(db: Database.Database, campaign: string): SignatureRow[] {
  return db.prepare(`SELECT sig, class, rule, shape, message, seed, point FROM explore_signatures WHERE campaign = ? ORDER BY sig`).all(campaign) as SignatureRow[];
}

export function listRepros(db: Database.Database, campaign: string): ReproRow[] {
  return db.prepare(`SELECT ${REPRO_COLS} FROM explore_repro WHERE campaign = ? ORDER BY sig`).all(campaign) as ReproRow[];
}
