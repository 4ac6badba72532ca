// explore: run a campaign's seeds on worker threads, store what fails, and report the signatures.
// Blocks of seeds go to the workers; their results are written in seed order, one transaction per
// block, so the database after any stop (the end, --time, Ctrl-C, a killed process) holds exactly
// the finished blocks, and a later run with the same campaign skips them. Wall-clock time is only
// read here, for the budget and the progress line; it never reaches a run.
import type Database from 'better-sqlite3';
import { InputError, UsageError } from '../errors.js';
import { type BlockResult, type Candidate, encodedRun, firstDifference, mergeBlockResults, SIM_FAILED } from '../analysis/explore.js';
import { verifySeed } from '../analysis/explore-worker.js';
import { type Campaign, campaignKey, configFor, shardBlocks } from '../analysis/explore-plan.js';
import { recordCommandLine, shellQuote } from './sim-args.js';
import { defaultDevices, type SimConfig } from '../sim/config.js';
import { pctBound } from '../sim/schedule.js';
import { Sim } from '../sim/sim.js';
import { closeWritable, openDb } from '../store/db.js';
import {
  blockTotals,
  ensureExploreTables,
  offerRepro,
  putBlock,
  putCampaign,
  type SignatureTotal,
  signatureTotals,
  storedBlock,
} from '../store/explore.js';
import { ENGINE_VERSION, Recorder } from '../store/recorder.js';
import { createRunner, type TaskRunner } from './explore-pool.js';
import type { DmaEvent } from '../events/schema.js';

export const EXIT_NONDETERMINISM = 5;

export interface Shard {
  index: number;
  count: number;
}

/**
 * The shard: --shard i/n, else a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with the completions
 * count in JOB_COMPLETIONS (Kubernetes sets only the index; the manifest passes the count), else a
 * Slurm array's SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT, else 0/1.
 */
export function shardOf(flag: string | undefined, env: Record<string, string | undefined>): Shard {
  const parse = (i: string, n: string, what: string): Shard => {
    if (!/^[0-9]+$/.test(i) || !/^[0-9]+$/.test(n) || Number(n) < 1 || Number(i) >= Number(n) || Number(n) > 1_000_000)
      throw new UsageError(`${what}: a shard is i/n with 0 <= i < n, got ${i}/${n}`);
    return { index: Number(i), count: Number(n) };
  };
  if (flag !== undefined) {
    const m = /^([^/]*)\/(.*)$/.exec(flag);
    if (!m) throw new UsageError(`--shard must be i/n (e.g. 0/4), got ${JSON.stringify(flag)}`);
    return parse(m[1]!, m[2]!, '--shard');
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    if (env.JOB_COMPLETIONS === undefined) throw new UsageError('JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job\'s .spec.completions');
    return parse(env.JOB_COMPLETION_INDEX, env.JOB_COMPLETIONS, 'JOB_COMPLETION_INDEX/JOB_COMPLETIONS');
  }
  if (env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_COUNT !== undefined) {
    const id = Number(env.SLURM_ARRAY_TASK_ID) - Number(env.SLURM_ARRAY_TASK_MIN ?? 0);
    return parse(String(id), env.SLURM_ARRAY_TASK_COUNT, 'SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT');
  }
  return { index: 0, count: 1 };
}

export interface Progress {
  blocks: number;
  seeds: number;
  runs: number;
  failing: number;
  signatures: number;
  elapsedMs: number;
  /** seeds this shard still has to run (null: unbounded) */
  seedsLeft: number | null;
  budgetMs: number | null;
}

export interface ExploreRequest {
  db: string;
  campaign: Campaign;
  from: number;
  to: number;
  shard: Shard;
  jobs: number;
  verifyEvery: number;
  /** the re-runs of --verify-every use another seed: checks that the nondeterminism alarm fires */
  selftest?: boolean;
  minimize?: boolean;
  budgetMs?: number;
  /** set when the user asked to stop (SIGINT): no new block starts, the running ones are kept */
  stop?: { requested: boolean };
  onProgress?: (p: Progress) => void;
  runner?: TaskRunner;
  checkpointEvery?: number;
  /** the wall clock in ms (tests drive the budget with their own) */
  now?: () => number;
}

export interface Mismatch {
  seed: number;
  point: number;
  hash: string;
  rerunHash: string;
  seq: number;
  recorded: DmaEvent | null;
  rerun: DmaEvent | null;
}

export interface SignatureReport {
  sig: string;
  class: string;
  rule: string;
  shape: string;
  message: string;
  count: number;
  firstSeed: number;
  firstPoint: number;
  /** `dmareplay record …` of the first run that hit it */
  firstRecord: string;
  repro: { trace: number; events: number; minimized: boolean; seed: number; point: number; origEvents: number; origHash: string; replay: string; record: string } | null;
}

export interface ExploreReport {
  campaign: string;
  strategy: string;
  sweep: string | null;
  db: string;
  seeds: { from: number; to: number };
  shard: Shard;
  jobs: number;
  /** this invocation */
  run: { blocks: number; skipped: number; seeds: number; runs: number; failing: number; verified: number };
  /** every stored block of the campaign (earlier runs and merged shards included) */
  total: { blocks: number; seeds: number; passing: number; runs: number; failing: number };
  signatures: SignatureReport[];
  stopped: 'done' | 'interrupted' | 'time' | 'mismatch';
  mismatch: Mismatch | null;
  pct: { actors: number; steps: number; depth: number; bound: number } | null;
  elapsedMs: number;
}

/** Actors a run of `config` schedules: the guest CPU, the VMM and one worker per virtqueue. */
export function actorCount(config: SimConfig): number {
  return 2 + (config.devices ?? defaultDevices(config)).reduce((n, d) => n + (d.name === 'virtio-net' ? 2 : 1), 0);
}

function storeTrace(db: Database.Database, name: string, config: SimConfig, seed: string, every: number): number {
  const rec = new Recorder(db, { name, source: 'sim', seed, config, checkpointEvery: every }, { worker: false });
  new Sim(config, seed, { event: (e) => rec.event(e), checkpoint: rec.checkpoint.bind(rec) }, every).run();
  rec.finish();
  return rec.traceId;
}

const traceName = (key: string, c: Candidate, minimized: boolean) =>
  `explore ${key.slice(0, 8)} ${c.sig} ${c.point ? `seed ${c.seed} point ${c.point}` : `seed ${c.seed}`}${minimized ? ' (minimized)' : ''}`;

/** Writes a finished block; returns the candidates that became their signature's reproducer (to minimize). */
function commitBlock(db: Database.Database, key: string, r: BlockResult, every: number): Candidate[] {
  const kept: Candidate[] = [];
  db.transaction(() => {
    const info = r.info.map((s) => {
      const b = r.sigs.find((x) => x.sig === s.id)!;
      return { sig: s.id, class: s.cls, rule: s.rule, shape: s.shape, message: s.message, seed: b.firstSeed, point: b.firstPoint };
    });
    const sigs = r.sigs.map((s) => ({ sig: s.sig, count: s.count, first_seed: s.firstSeed, first_point: s.firstPoint }));
    if (!putBlock(db, key, { lo: r.lo, hi: r.hi, seeds: r.seeds, passing: r.passing, runs: r.runs, failing: r.failing }, sigs, info)) return;
    for (const c of r.candidates)
      if (offerRepro(db, key, reproOf(c, c.events, 0), () => storeTrace(db, traceName(key, c, false), c.config, String(c.seed), every))) kept.push(c);
  })();
  return kept;
}

const reproOf = (c: Candidate, events: number, minimized: number) => ({
  sig: c.sig,
  seed: c.seed,
  point: c.point,
  orig_events: c.events,
  orig_hash: c.hash,
  orig_config: JSON.stringify(c.config),
  events,
  minimized,
});

/** The minimized run of a reproducer: stored in its place if it is still the signature's reproducer. */
function commitMinimized(db: Database.Database, key: string, c: Candidate, m: { config: SimConfig; events: number }, every: number): void {
  db.transaction(() => void offerRepro(db, key, reproOf(c, m.events, 1), () => storeTrace(db, traceName(key, c, true), m.config, String(c.seed), every)))();
}

function countSeeds(c: Campaign, from: number, to: number, shard: Shard): number | null {
  if ((to - from) / c.block > 1e6) return null;
  let n = 0;
  for (const b of shardBlocks(c.block, from, to, shard.index, shard.count)) n += b.hi - b.lo + 1;
  return n;
}

/** The smallest piece a block is split into at the end of a run (about 15 ms of work at 1k events a seed). */
const MIN_PIECE = 25;

/**
 * The pieces a block runs as, in seed order: the whole block, except near the end of a bounded run
 * on more than one worker, where a piece is about half the seeds each worker has left (guided
 * self-scheduling), so the workers finish together instead of one idling while the other runs a
 * last full block (not smaller: each piece encodes its own smallest run of each signature). The
 * pieces merge into the block's result (mergeBlockResults), so how a block is cut never shows in
 * what is stored.
 */
function piecesOf(lo: number, hi: number, threads: number, unsubmitted: number | null): { lo: number; hi: number }[] {
  if (threads < 2 || unsubmitted === null) return [{ lo, hi }];
  const pieces: { lo: number; hi: number }[] = [];
  for (let at = lo, left = unsubmitted; at <= hi; ) {
    const size = Math.max(MIN_PIECE, Math.ceil(left / (2 * threads)));
    const end = Math.min(hi, at + size - 1);
    pieces.push({ lo: at, hi: end });
    left -= end - at + 1;
    at = end + 1;
  }
  return pieces;
}

export async function explore(req: ExploreRequest): Promise<ExploreReport> {
  const c = req.campaign;
  const key = campaignKey(c, ENGINE_VERSION);
  const every = req.checkpointEvery ?? 16384;
  const now = req.now ?? Date.now;
  const t0 = now();
  // the workers start first: they boot and load the simulation while this thread opens the database
  let runner: TaskRunner | null = req.runner ?? null;
  let closing: Promise<void> | null = null;
  let opened: Database.Database | null = null;
  try {
    runner ??= createRunner(req.jobs);
    const db = (opened = openDb(req.db, { create: true }));
    ensureExploreTables(db);
    putCampaign(db, key, { engine: ENGINE_VERSION, ...c });
    const r = runner;
    const run = { blocks: 0, skipped: 0, seeds: 0, runs: 0, failing: 0, verified: 0 };
    const sigsSeen = new Set<string>();
    let seedsLeft = countSeeds(c, req.from, req.to, req.shard);
    let unsubmitted = seedsLeft;
    let mismatch: Mismatch | null = null;
    let failure: unknown = null;
    let timedOut = false;
    const stopped = () => !!(mismatch || failure || req.stop?.requested || (timedOut ||= req.budgetMs !== undefined && now() - t0 >= req.budgetMs));

    const blocks = shardBlocks(c.block, req.from, req.to, req.shard.index, req.shard.count);
    const results = new Map<number, BlockResult>();
    // pieces of started blocks not yet handed to a worker; a started block always runs to its end
    const queue: { i: number; lo: number; hi: number; parts: BlockResult[]; k: number; left: { n: number } }[] = [];
    let submitted = 0;
    let committed = 0;
    const active = new Set<Promise<void>>();
    const launch = (p: Promise<void>) => {
      const q: Promise<void> = p.catch((e) => void (failure ??= e)).finally(() => active.delete(q));
      active.add(q);
    };
    const verify = async (config: SimConfig, seed: number, point: number, hash: string, bytes: Uint8Array, thread: number) => {
      let again: { hash: string; bytes: Uint8Array } | null = null;
      for (let tries = 0; tries < 8 && !again && r.threads > 1; tries++) again = (await r.run({ type: 'verify', config, seed: String(seed), avoid: thread, selftest: req.selftest })).verify ?? null;
      again ??= encodedRun(config, verifySeed(String(seed), req.selftest)); // one worker: this thread is the other one
      run.verified++;
      if (again.hash === hash || mismatch) return;
      const d = firstDifference(bytes, again.bytes);
      mismatch = { seed, point, hash, rerunHash: again.hash, seq: d?.seq ?? 0, recorded: d?.a ?? null, rerun: d?.b ?? null };
    };
    const progress = () =>
      req.onProgress?.({ blocks: run.blocks, seeds: run.seeds, runs: run.runs, failing: run.failing, signatures: sigsSeen.size, elapsedMs: now() - t0, seedsLeft, budgetMs: req.budgetMs ?? null });
    // a block starts unless the run is stopping; the next block is taken only when no piece waits
    const nextPiece = (): (typeof queue)[number] | undefined => {
      while (!queue.length && !stopped()) {
        const b = blocks.next();
        if (b.done) return undefined;
        const size = b.value.hi - b.value.lo + 1;
        const old = storedBlock(db, key, b.value.lo);
        if (old && old.hi >= b.value.hi) {
          run.skipped++;
          if (seedsLeft !== null) seedsLeft -= size;
          if (unsubmitted !== null) unsubmitted -= size;
          continue;
        }
        const pieces = piecesOf(b.value.lo, b.value.hi, r.threads, unsubmitted);
        if (unsubmitted !== null) unsubmitted -= size;
        const i = submitted++;
        const parts: BlockResult[] = [];
        const left = { n: pieces.length };
        pieces.forEach((p, k) => queue.push({ i, ...p, parts, k, left }));
      }
      return mismatch || failure ? undefined : queue.shift();
    };

    // each worker holds two tasks (the pool's concurrentTasksPerWorker): the next one waits in its
    // port and starts the moment the last one ends, without a round trip through this thread. With
    // a budget, a handed-out block runs to its end, so a worker holds a second one only while the
    // budget has room for two more blocks of the pace so far (not before the first block tells
    // it): the run ends at most one block per worker past its budget, not two
    const perWorker = (): number => {
      if (req.budgetMs === undefined) return 2;
      if (run.seeds === 0) return 1;
      const elapsed = now() - t0;
      const blockMs = ((elapsed * r.threads) / run.seeds) * c.block;
      return req.budgetMs - elapsed > 2 * blockMs ? 2 : 1;
    };
    for (;;) {
      while (active.size < perWorker() * r.threads) {
        const p = nextPiece();
        if (!p) break;
        const task = { campaign: c, lo: p.lo, hi: p.hi, verifyEvery: req.verifyEvery };
        launch(
          r.run({ type: 'block', block: task }).then((reply) => {
            const res = reply.block!;
            p.parts[p.k] = res;
            if (--p.left.n === 0) results.set(p.i, mergeBlockResults(p.parts));
            for (const v of res.verify) launch(verify(configFor(c, v.seed, v.point), v.seed, v.point, v.hash, v.bytes, reply.threadId));
          }),
        );
      }
      if (active.size === 0 && !results.has(committed)) break;
      if (active.size) await Promise.race(active);
      // write finished blocks in seed order
      while (results.has(committed)) {
        const res = results.get(committed)!;
        results.delete(committed++);
        // a run that became its signature's reproducer is minimized on a worker, then stored in its place
        for (const cand of commitBlock(db, key, res, every))
          if (req.minimize ?? true)
            launch(
              r.run({ type: 'minimize', config: cand.config, seed: String(cand.seed), sig: cand.sig, sweep: c.sweep }).then((reply) => {
                if (reply.minimized && reply.minimized.events < cand.events) commitMinimized(db, key, cand, reply.minimized, every);
              }),
            );
        run.blocks++;
        run.seeds += res.seeds;
        run.runs += res.runs;
        run.failing += res.failing;
        if (seedsLeft !== null) seedsLeft -= res.seeds;
        for (const s of res.sigs) sigsSeen.add(s.sig);
      }
      progress();
    }
    // the workers are done: they shut down while the summary is read
    if (!req.runner) closing = r.close();
    if (failure) {
      // a run that threw: name the command that reproduces it
      const m = failure instanceof Error ? SIM_FAILED.exec(failure.message) : null;
      const line = m ? recordCommandLine(configFor(c, Number(m[1]), Number(m[2] ?? 0)), m[1]!) : null;
      if (line) (failure as Error).message += ` (reproduce: ${line})`;
      throw failure;
    }
    const total = blockTotals(db, key);
    const replayLine = (trace: number) => `npx dmareplay replay ${trace} --db ${shellQuote(req.db)}`;
    const recordLine = (config: SimConfig, seed: number) => recordCommandLine(config, String(seed), req.db) ?? '';
    const signatures = signatureTotals(db, key).map((s: SignatureTotal): SignatureReport => {
      const rp = s.repro;
      return {
        sig: s.sig,
        class: s.class,
        rule: s.rule,
        shape: s.shape,
        message: s.message,
        count: s.count,
        firstSeed: s.first_seed,
        firstPoint: s.first_point,
        firstRecord: recordLine(configFor(c, s.first_seed, s.first_point), s.first_seed),
        repro: rp
          ? {
              trace: rp.trace,
              events: rp.events,
              minimized: !!rp.minimized,
              seed: rp.seed,
              point: rp.point,
              origEvents: rp.orig_events,
              origHash: rp.orig_hash,
              replay: replayLine(rp.trace),
              record: recordLine(JSON.parse(rp.orig_config) as SimConfig, rp.seed),
            }
          : null,
      };
    });
    const pct = c.strategy === 'pct' && c.pct ? { actors: actorCount(c.base), steps: c.pct.steps, depth: c.pct.depth, bound: pctBound(actorCount(c.base), c.pct.steps, c.pct.depth) } : null;
    return {
      campaign: key,
      strategy: c.strategy,
      sweep: c.sweep ?? null,
      db: req.db,
      seeds: { from: req.from, to: req.to },
      shard: req.shard,
      jobs: r.threads,
      run,
      total,
      signatures,
      stopped: mismatch ? 'mismatch' : req.stop?.requested ? 'interrupted' : timedOut ? 'time' : 'done',
      mismatch,
      pct,
      elapsedMs: now() - t0,
    };
  } catch (e) {
    if (e instanceof Error && /SQLITE_|database/i.test(e.message) && !(e instanceof InputError)) throw new InputError(`cannot write ${req.db}: ${e.message}`);
    throw e;
  } finally {
    if (runner && !req.runner) await (closing ?? runner.close());
    if (opened) closeWritable(opened);
  }
}
