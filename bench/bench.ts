// npm run bench: every row of issue 12's table as a ratio against a baseline measured in this same
// run, with the absolute figures beside it, on a >= 1M-event trace (`-- --big`: the 10M-event
// remap/iommu trace and a 3.18M-event net-rx trace for perturb).
//
//   npm run bench                      # 1M events, table on stdout, progress on stderr
//   npm run bench -- --big             # the 10M rows
//   npm run bench -- --events 200000   # a smaller trace
//   npm run bench -- --json            # one JSON object on stdout
//
// Baselines (each measured here, on the same trace):
// - simulation alone: the Sim with a null sink (it includes the pipeline and the checkers), on this
//   thread, so its CPU time is one core's;
// - bare decode: decoding the stored chunks of the recorded trace, nothing else;
// - raw insert: the recorded `events` rows inserted into a fresh database as the recorder does;
// - event bytes: the sum of the stored event chunks (for the disk row).
// Commands (replay, export, import, bisect, perturb, minimize, log | head) run as child processes, as
// a user runs them: wall time measured here, CPU time (all threads) and peak RSS by the child
// (bench/usage-hook.ts). CPU time is the figure to trust on a shared machine; the load average is
// printed. Nothing here asserts: a FAIL is a figure to work on, not an error.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { JUDGE } from '../src/check/index.js';
import { logTrace } from '../src/app/log.js';
import { record, type RecordResult } from '../src/app/record.js';
import { fold } from '../src/engine/replay.js';
import { decodeChunk } from '../src/events/binary.js';
import type { SimConfig } from '../src/sim/config.js';
import { Sim } from '../src/sim/sim.js';
import { closeWritable, getTrace, openDb, readChunks } from '../src/store/db.js';
import { importLogBench } from './qemu-import.js';
import { fileBytes, fmtRate, gc, log, median, medianRun, now, percentile, perSec, rmDb, round, runCli, type ChildRun, timed, type Timing } from './measure.js';

// --- targets (issue 12; issue 2's record/raw) --------------------------------------------------
const T = {
  simPerCore: 3_000_000,
  recordOverSim: 1.15,
  replayOverSimPerCore: 1.8,
  foldOverDecode: 0.5,
  recordOverRaw: 0.7,
  bisectMs: 1000,
  rssMb: 300,
  diskPerEvent: 1.2,
  seekP99Ms: 10,
  perturbMs: 60_000,
  importLinesPerSec: 1_000_000,
};

interface Args {
  events: number;
  big: boolean;
  json: boolean;
  reps: number;
  seeks: number;
  keep: boolean;
  explore: boolean;
  commands: boolean;
}

const USAGE = `usage: node --expose-gc dist/bench/bench.js [options]
  --events N      trace size (default 1000000; --big: 10000000)
  --big           the 10M-event rows (and perturb on a 3.18M-event net-rx trace)
  --json          print one JSON object on stdout (progress stays on stderr)
  --reps N        repetitions of sim, record, decode, replay (median of CPU time; default 3)
  --seeks N       stateAt samples (default 200)
  --no-commands   skip the child-process rows (bisect, perturb, minimize, export, log | head, import)
  --no-explore    skip explore's seeds/s (bench/explore.ts)
  --keep          keep the temp directory with the databases
`;

function parseArgs(argv: string[]): Args {
  const a: Args = { events: 0, big: false, json: false, reps: 3, seeks: 200, keep: false, explore: true, commands: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const val = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${k} needs a positive integer`);
      return v;
    };
    if (k === '--events') a.events = val();
    else if (k === '--big') a.big = true;
    else if (k === '--json') a.json = true;
    else if (k === '--reps') a.reps = val();
    else if (k === '--seeks') a.seeks = val();
    else if (k === '--keep') a.keep = true;
    else if (k === '--no-explore') a.explore = false;
    else if (k === '--no-commands') a.commands = false;
    else if (k === '--help' || k === '-h') {
      process.stderr.write(USAGE);
      process.exit(0);
    } else {
      process.stderr.write(`unknown argument ${k}\n${USAGE}`);
      process.exit(2);
    }
  }
  if (!a.events) a.events = a.big ? 10_000_000 : 1_000_000;
  return a;
}

// --- one row of the report ---------------------------------------------------------------------
interface Row {
  what: string;
  /** the figure compared with the target: a ratio to the baseline, or an absolute where the target is one */
  value: number;
  unit: 'x' | 'ms' | 'MB' | 'ev/s' | 'lines/s';
  target: string;
  pass: boolean | null;
  /** absolute figures and the baseline, as a side note */
  note: string;
}

const SEED = '1';
const remap = (ops: number): SimConfig => ({ workload: 'remap', path: 'iommu', ops, ringNum: 16, faults: [] });

/**
 * Events per op of a workload, from a short run. With `keep`, its Sim is pushed there and the
 * caller keeps it alive: while one Sim lives, so do its hidden classes, which `timed`'s forced
 * gc() (a forced GC retains no map without a live object) would otherwise drop after each rep.
 * V8 then deoptimizes every function whose code embeds those maps ("weak objects": ~50-100
 * simulation functions), and each rep after the first re-optimized them all: at 1M events that
 * re-JIT was 30-40% of a rep's CPU. No single run of a command pays it (a natural GC keeps the
 * maps), so the baseline must not either.
 */
function eventsPerOp(cfg: (ops: number) => SimConfig, keep?: Sim[]): number {
  let n = 0;
  const sim = new Sim(cfg(2000), SEED, { event: () => void n++ });
  sim.run();
  keep?.push(sim);
  return n / 2000;
}

function simAlone(config: SimConfig, checkpointEvery: number): number {
  let n = 0;
  new Sim(config, SEED, { event: () => void n++ }, checkpointEvery).run();
  return n;
}

/** Reads every stored chunk of a trace into memory (the rows the raw insert and the decode run over). */
function storedChunks(dbPath: string, trace: number) {
  const db = openDb(dbPath);
  try {
    return [...readChunks(db, getTrace(db, trace))].map((c) => ({ seq0: c.seq0, n: c.n, data: Uint8Array.from(c.data) }));
  } finally {
    db.close();
  }
}

/** The baseline of the record rows: the recorded rows inserted into a fresh database, as the recorder does. */
function rawInsert(dbPath: string, chunks: { seq0: number; n: number; data: Uint8Array }[]): Timing {
  rmDb(dbPath);
  const db = openDb(dbPath, { create: true });
  const [, t] = timed(() => {
    const ins = db.prepare(`INSERT INTO events (id, trace, seq0, n, data) VALUES (?, ?, ?, ?, ?)`);
    const tx = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) ins.run(1 * 2 ** 32 + i, 1, chunks[i]!.seq0, chunks[i]!.n, chunks[i]!.data);
    });
    for (let i = 0; i < chunks.length; i += 16) tx(i, Math.min(chunks.length, i + 16));
    closeWritable(db);
  });
  rmDb(dbPath);
  return t;
}

function decodeAll(chunks: { seq0: number; n: number; data: Uint8Array }[]): number {
  let n = 0;
  for (const c of chunks) n += decodeChunk(c.data, c.seq0, c.n).length;
  return n;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!(globalThis as { gc?: unknown }).gc) log('note: run with --expose-gc (npm run bench does) for steadier numbers');
  const load0 = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'dmareplay-bench-'));
  process.env.DMAREPLAY_BENCH_DIR = dir;
  const rows: Row[] = [];
  const extra: Record<string, unknown> = {};
  const t0 = now();
  /** a Sim alive until the rows are done (see eventsPerOp) */
  const warm: Sim[] = [];
  try {
    const perOp = eventsPerOp(remap, warm);
    const ops = Math.ceil((args.events / perOp) * 1.005) + 8;
    const config = remap(ops);
    log(`trace: remap/iommu, ${ops} ops (~${perOp.toFixed(1)} events/op) for >= ${args.events.toLocaleString('en-US')} events`);

    // 1. baseline: the simulation alone, on this thread
    const simRuns: Timing[] = [];
    let events = 0;
    for (let i = 0; i < args.reps; i++) {
      const [n, t] = timed(() => simAlone(config, 0));
      events = n;
      simRuns.push(t);
      log(`sim alone ${i + 1}/${args.reps}: ${fmtRate(perSec(n, t.cpuMs))} CPU, ${fmtRate(perSec(n, t.wallMs))} wall`);
    }
    const sim = medianRun(simRuns);
    const simEps = perSec(events, sim.cpuMs);
    rows.push({ what: 'simulation alone, per core (CPU)', value: simEps, unit: 'ev/s', target: `>= ${fmtRate(T.simPerCore)}`, pass: simEps >= T.simPerCore, note: `baseline; wall ${fmtRate(perSec(events, sim.wallMs))}` });

    // 2. record (sim + encode + SQLite + stream hash + checkpoints), each into a fresh database
    const dbPath = join(dir, 'trace.db');
    const recRuns: Timing[] = [];
    let rec!: RecordResult;
    for (let i = 0; i < args.reps; i++) {
      rmDb(dbPath);
      const [r, t] = timed(() => record({ db: dbPath, config, seed: SEED }));
      if (r.events !== events) throw new Error(`record made ${r.events} events, the sim ${events}`);
      rec = r;
      recRuns.push(t);
      log(`record ${i + 1}/${args.reps}: ${(t.wallMs / 1000).toFixed(2)} s wall, ${(t.cpuMs / 1000).toFixed(2)} s CPU`);
    }
    const recT = medianRun(recRuns);
    const recWall = median(recRuns.map((t) => t.wallMs));
    rows.push({
      what: 'record, over the simulation alone (CPU)',
      value: recT.cpuMs / sim.cpuMs,
      unit: 'x',
      target: `<= ${T.recordOverSim}x`,
      pass: recT.cpuMs / sim.cpuMs <= T.recordOverSim,
      note: `wall ${(recWall / sim.wallMs).toFixed(2)}x; record ${fmtRate(perSec(events, recT.cpuMs))} CPU, ${fmtRate(perSec(events, recWall))} wall`,
    });

    // 3. disk per event, raw insert, bare decode (the stored rows of that trace)
    const chunks = storedChunks(dbPath, rec.trace);
    const eventBytes = chunks.reduce((s, c) => s + c.data.length, 0);
    const dbBytes = fileBytes(dbPath);
    rows.push({ what: 'disk per event (DB size / event bytes)', value: dbBytes / eventBytes, unit: 'x', target: `<= ${T.diskPerEvent}x`, pass: dbBytes / eventBytes <= T.diskPerEvent, note: `db ${(dbBytes / 2 ** 20).toFixed(0)} MiB, events ${(eventBytes / 2 ** 20).toFixed(0)} MiB` });
    const rawRuns = Array.from({ length: args.reps }, () => rawInsert(join(dir, 'raw.db'), chunks));
    const raw = medianRun(rawRuns);
    const rawWall = median(rawRuns.map((t) => t.wallMs));
    rows.push({
      what: 'record, over raw insert of its rows (wall)',
      value: rawWall / recWall,
      unit: 'x',
      target: `>= ${T.recordOverRaw}x`,
      pass: rawWall / recWall >= T.recordOverRaw,
      note: `raw insert ${fmtRate(perSec(events, rawWall))} wall, ${fmtRate(perSec(events, raw.cpuMs))} CPU (issue 2's target)`,
    });
    const decRuns = Array.from({ length: args.reps }, () => timed(() => decodeAll(chunks))[1]);
    const dec = medianRun(decRuns);
    const decodeEps = perSec(events, dec.cpuMs);
    log(`bare decode: ${fmtRate(decodeEps)} CPU`);
    chunks.length = 0; // the commands below run in children: this process need not hold the trace

    // 4. replay with verification, as a command (its own threads), wall against one core's simulation
    {
      const repRuns: ChildRun[] = [];
      for (let i = 0; i < args.reps; i++) {
        const r = await runCli(['replay', '1', '--db', dbPath]);
        if (r.code !== 0) throw new Error(`replay exited ${r.code}: ${r.stderr}`);
        repRuns.push(r);
        log(`replay ${i + 1}/${args.reps}: ${(r.wallMs / 1000).toFixed(2)} s wall, ${(r.cpuMs / 1000).toFixed(2)} s CPU, ${r.maxRssMb.toFixed(0)} MB`);
      }
      // the median by wall (the mean of the two middle runs for an even count), its CPU and RSS alike
      const rep = { wallMs: median(repRuns.map((r) => r.wallMs)), cpuMs: median(repRuns.map((r) => r.cpuMs)), maxRssMb: median(repRuns.map((r) => r.maxRssMb)) };
      const repEps = perSec(events, rep.wallMs);
      rows.push({
        what: `replay, verified, wall on ${availableParallelism()} cores, over sim per core`,
        value: repEps / simEps,
        unit: 'x',
        target: `>= ${T.replayOverSimPerCore}x`,
        pass: repEps / simEps >= T.replayOverSimPerCore,
        note: `replay ${fmtRate(repEps)} wall, ${fmtRate(perSec(events, rep.cpuMs))} CPU (whole command)`,
      });
      extra.replay = { wallMs: round(rep.wallMs, 0), cpuMs: round(rep.cpuMs, 0), maxRssMb: round(rep.maxRssMb, 0) };
    }

    // 5. seek latency at fixed-seed random positions, in a process that holds the trace open and only
    // seeks (bench/seek-child.ts; the library's openStates, which a timeline or report tool uses)
    const sk = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(new URL('./seek-child.js', import.meta.url)), dbPath, String(events), String(args.seeks)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
    if (sk.status !== 0) throw new Error(`seek-child exited ${sk.status}`);
    const { wall: lat, cpu: seekCpu, main: seekMain, wait: seekWait, openMs } = JSON.parse(sk.stdout) as { wall: number[]; cpu: number[]; main?: number[]; wait?: number[]; openMs: number };
    // the seeks after a process's first 20 (V8 compiles the seek path during those: 10-18 ms each,
    // then none above ~7 ms at 10M), shown beside the row, not judged
    const settled = lat.slice(20).sort((a, b) => a - b);
    lat.sort((a, b) => a - b);
    seekCpu.sort((a, b) => a - b);
    // the seeking thread's own CPU and its wait for a core (Linux, tick-granular: approximate): what the wall is made of on a shared machine
    const thread = seekMain && seekWait ? `; seeking thread (approx.) CPU p50 ${percentile(seekMain.sort((a, b) => a - b), 50).toFixed(1)} ms, p99 ${percentile(seekMain, 99).toFixed(1)} ms, waiting for a core p99 ${percentile(seekWait.sort((a, b) => a - b), 99).toFixed(1)} ms` : '';
    const p99 = percentile(lat, 99);
    rows.push({
      what: 'seek p99, in a process that holds the trace open and seeks',
      value: p99,
      unit: 'ms',
      target: `< ${T.seekP99Ms} ms`,
      pass: p99 < T.seekP99Ms,
      note: `p50 ${percentile(lat, 50).toFixed(1)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms over ${lat.length} positions (opening the trace: ${openMs.toFixed(1)} ms, once); after the first 20 seeks p99 ${settled.length ? percentile(settled, 99).toFixed(1) : '-'} ms; CPU p50 ${percentile(seekCpu, 50).toFixed(1)} ms, p99 ${percentile(seekCpu, 99).toFixed(1)} ms${thread}`,
    });

    if (args.commands) await commandRows(args, dir, dbPath, config, events, rows, extra);
  } finally {
    warm.length = 0; // released only now
    extra.loadavg = [round(load0, 2), round(loadavg()[0]!, 2)];
    extra.wall_s = round((now() - t0) / 1000, 1);
    if (args.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }

  let exploreOut = '';
  let exploreJson: unknown = null;
  if (args.explore) {
    // explore's seeds/s and the --jobs 2 speed-up, in a child: its own worker pool and CPU accounting
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./explore.js', import.meta.url)), ...(args.json ? ['--json'] : [])], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
    if (args.json) exploreJson = r.status === 0 ? JSON.parse(r.stdout) : null;
    else exploreOut = r.stdout;
  }
  if (args.json) process.stdout.write(JSON.stringify({ rows, ...extra, explore: exploreJson, cores: availableParallelism(), node: process.version }) + '\n');
  else process.stdout.write(table(rows, extra, args) + exploreOut);
}

/** The rows that run commands as a user does: fold of an import, bisect, perturb, minimize, memory. */
async function commandRows(args: Args, dir: string, dbPath: string, config: SimConfig, events: number, rows: Row[], extra: Record<string, unknown>): Promise<void> {
  // fold of an imported trace with every check, against bare decode of its chunks
  const jsonl = join(dir, 'trace.jsonl');
  const exp = await runCli(['export', '1', '--db', dbPath], { stdoutFile: jsonl });
  if (exp.code !== 0) throw new Error(`export exited ${exp.code}: ${exp.stderr}`);
  const impDb = join(dir, 'imported.db');
  const imp = await runCli(['import', jsonl, '--db', impDb]);
  if (imp.code !== 0) throw new Error(`import exited ${imp.code}: ${imp.stderr}`);
  rmSync(jsonl, { force: true });
  const ichunks = storedChunks(impDb, 1);
  const foldRuns = Array.from({ length: args.reps }, () => {
    const [, t] = timed(() => fold(ichunks, JUDGE));
    return t;
  });
  const f = medianRun(foldRuns);
  const idec = medianRun(Array.from({ length: args.reps }, () => timed(() => decodeAll(ichunks))[1]));
  const foldEps = perSec(events, f.cpuMs);
  const idecEps = perSec(events, idec.cpuMs);
  rows.push({ what: 'fold of an imported trace with checks, over bare decode', value: foldEps / idecEps, unit: 'x', target: `>= ${T.foldOverDecode}x`, pass: foldEps / idecEps >= T.foldOverDecode, note: `fold ${fmtRate(foldEps)}, decode ${fmtRate(idecEps)} CPU` });
  ichunks.length = 0;
  const mem: [string, ChildRun][] = [['export', exp], ['import (JSONL)', imp]];
  log(`export ${(exp.wallMs / 1000).toFixed(1)} s, import ${(imp.wallMs / 1000).toFixed(1)} s; fold ${fmtRate(foldEps)} vs decode ${fmtRate(idecEps)}`);

  // replay --json: every finding streamed, not loaded
  mem.push(['replay --json', await runCli(['replay', '1', '--json', '--db', dbPath])]);

  // log | head -1: the command must end as soon as the pipe closes
  const head = await runCli(['log', '1', '--db', dbPath], { head: true, timeoutMs: 120_000 });
  rows.push({
    what: '`log | head -1`: exit after the pipe closes',
    value: head.exitAfterCloseMs ?? NaN,
    unit: 'ms',
    target: 'at once (< 1000 ms)',
    pass: head.exitAfterCloseMs !== undefined && head.exitAfterCloseMs < 1000 && !head.timedOut && head.stderr === '',
    note: `exit ${head.code}${head.stderr ? ', stderr: ' + head.stderr.split('\n')[0] : ''}, peak ${head.maxRssMb.toFixed(0)} MB`,
  });
  mem.push(['log | head -1', head]);

  // bisect: the same workload under a second path, both recorded once; the repeat bisect is the row
  const biDb = join(dir, 'bisect.db');
  const faultAt = Math.floor(config.ops * 0.9);
  const biCfg = { ...config, faults: [{ kind: 'drop-invalidate' as const, arg: 3 * faultAt + 2 }] };
  log(`bisect: recording ${config.ops} ops under direct and iommu (a dropped invalidation near 90%) ...`);
  record({ db: biDb, config: { ...biCfg, path: 'direct' }, seed: SEED });
  record({ db: biDb, config: biCfg, seed: SEED });
  const bi1 = await runCli(['bisect', '1', '2', '--db', biDb, '--json'], { capture: true });
  const bi2 = await runCli(['bisect', '1', '2', '--db', biDb, '--json'], { capture: true });
  if (bi2.code !== 4 && bi2.code !== 0) throw new Error(`bisect exited ${bi2.code}: ${bi2.stderr}`);
  let op: unknown = null;
  try {
    op = (JSON.parse(bi2.stdout) as { op?: unknown }).op ?? null;
  } catch {
    /* printed below as null */
  }
  rows.push({
    what: 'bisect, two traces once recorded (wall)',
    value: bi2.wallMs,
    unit: 'ms',
    target: `< ${T.bisectMs} ms, < ${T.rssMb} MB`,
    pass: bi2.wallMs < T.bisectMs && bi2.maxRssMb < T.rssMb,
    note: `${bi2.maxRssMb.toFixed(0)} MB, CPU ${bi2.cpuMs.toFixed(0)} ms; first run ${bi1.wallMs.toFixed(0)} ms; exit ${bi2.code}, divergence at op ${op}`,
  });
  mem.push(['bisect', bi2]);
  rmDb(biDb);

  // perturb and minimize on a failing trace: net-rx with a skipped unmap (leaks at teardown)
  const pEvents = args.big ? 3_180_000 : Math.min(events, 1_000_000);
  const netrx = (ops: number): SimConfig => ({ workload: 'net-rx', path: 'iommu', ops, ringNum: 256, faults: [] });
  const pOps = Math.ceil(pEvents / eventsPerOp(netrx));
  const pDb = join(dir, 'perturb.db');
  const pr = record({ db: pDb, config: { ...netrx(pOps), faults: [{ kind: 'skip-unmap', arg: pOps }] }, seed: SEED });
  log(`perturb: net-rx/iommu, ${pr.events} events, ${pr.findingCount} findings ...`);
  const pt = await runCli(['perturb', '1', '--db', pDb, '--json'], { timeoutMs: 2 * T.perturbMs });
  rows.push({
    what: `perturb, ${(pr.events / 1e6).toFixed(2)}M-event net-rx trace (wall)`,
    value: pt.wallMs,
    unit: 'ms',
    target: `< ${T.perturbMs / 1000} s (3.18M events, --big)`,
    pass: !pt.timedOut && pt.code === 0 && pt.wallMs < T.perturbMs,
    note: `${pt.timedOut ? 'killed after ' + (2 * T.perturbMs) / 1000 + ' s, ' : ''}exit ${pt.code}, CPU ${(pt.cpuMs / 1000).toFixed(1)} s, ${pt.maxRssMb.toFixed(0)} MB`,
  });
  mem.push(['perturb', pt]);
  // minimize: the big remap trace with the remap race from its first invalidation on (ddmin needs a
  // failure that survives removing intents; a fault counted to the Nth unmap moves when intents go)
  const m = record({ db: pDb, config: { ...config, faults: [{ kind: 'delay-invalidate', arg: 1 }] }, seed: SEED });
  log(`minimize: remap/iommu, ${m.events} events, ${m.findingCount} findings ...`);
  const mn = await runCli(['minimize', String(m.trace), '--db', pDb, '--json', '--out', join(dir, 'min.jsonl')], { timeoutMs: 2 * T.perturbMs });
  mem.push(['minimize', mn]);
  log(`minimize: exit ${mn.code}, ${(mn.wallMs / 1000).toFixed(1)} s, ${mn.maxRssMb.toFixed(0)} MB`);
  // the commands that read findings, on that trace (a finding every operation or so): memory must
  // not grow with them (why: the avail ring index of queue 1, rewritten at every post, as of the end)
  const id = String(m.trace);
  let availIdx = 0n;
  logTrace(pDb, id, { to: 64 }, (ev) => void (ev.kind === 'vring.setup' && ev.q === 1 && (availIdx = ev.availGpa + 2n)));
  for (const [what, argv] of [
    ['replay', ['replay', id]],
    ['replay --json', ['replay', id, '--json']],
    ['log --kind finding', ['log', id, '--kind', 'finding']],
    ['why', ['why', id, '--gpa', `0x${availIdx.toString(16)}`, '--len', '64', '--at', String(m.events)]],
    ['export --format perfetto', ['export', id, '--format', 'perfetto']],
    ['report', ['report', id, '--out', join(dir, 'report.html')]],
  ] as const) {
    const r = await runCli([...argv, '--db', pDb]);
    if (r.code !== 0) throw new Error(`${what} on the findings trace exited ${r.code}: ${r.stderr}`);
    mem.push([`${what} (${m.findingCount} findings)`, r]);
    log(`${what} (${m.findingCount} findings): ${(r.wallMs / 1000).toFixed(1)} s, ${r.maxRssMb.toFixed(0)} MB`);
  }
  rmDb(pDb);

  // memory: every command above, on the big trace
  const worst = mem.reduce((a, b) => (b[1].maxRssMb > a[1].maxRssMb ? b : a));
  rows.push({
    what: 'peak RSS of any command',
    value: worst[1].maxRssMb,
    unit: 'MB',
    target: `< ${T.rssMb} MB`,
    pass: worst[1].maxRssMb < T.rssMb,
    note: `worst: ${worst[0]}; ` + mem.map(([k, r]) => `${k} ${r.maxRssMb.toFixed(0)}${r.timedOut ? '(killed)' : ''}`).join(', '),
  });
  extra.commands = Object.fromEntries(mem.map(([k, r]) => [k, { code: r.code, wallMs: round(r.wallMs, 0), cpuMs: round(r.cpuMs, 0), maxRssMb: round(r.maxRssMb, 0) }]));

  // import of a QEMU trace log, against reading its lines
  const q = await importLogBench(dir, args.big ? 10_000_000 : 2_000_000);
  if (q) rows.push({ what: 'import of a QEMU log (lines/s, wall)', value: q.linesPerSec, unit: 'lines/s', target: `>= ${fmtRate(T.importLinesPerSec, 'lines/s')}`, pass: q.linesPerSec >= T.importLinesPerSec, note: q.note });
}

function fmtValue(r: Row): string {
  if (Number.isNaN(r.value)) return 'n/a';
  if (r.unit === 'x') return `${r.value.toFixed(2)}x`;
  if (r.unit === 'ms') return `${r.value.toFixed(r.value < 100 ? 1 : 0)} ms`;
  if (r.unit === 'MB') return `${r.value.toFixed(0)} MB`;
  return fmtRate(r.value, r.unit);
}

function table(rows: Row[], extra: Record<string, unknown>, args: Args): string {
  const lines = [['row', 'value', 'target', '', 'absolute figures, baseline'], ...rows.map((r) => [r.what, fmtValue(r), r.target, r.pass === null ? '' : r.pass ? 'PASS' : 'FAIL', r.note])];
  const w = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => l.map((c, i) => (i === 1 ? c.padStart(w[i]!) : i === 4 ? c : c.padEnd(w[i]!))).join('  ').trimEnd();
  const [l0, l1] = extra.loadavg as [number, number];
  return [
    fmt(lines[0]!),
    w.map((n) => '-'.repeat(Math.min(n, 40))).join('  '),
    ...lines.slice(1).map(fmt),
    '',
    `${args.events.toLocaleString('en-US')}-event remap/iommu trace${args.big ? ' (--big)' : ''}; median of ${args.reps} by CPU time; load average ${l0} -> ${l1} on ${availableParallelism()} cores; ${extra.wall_s} s`,
    '',
  ].join('\n');
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
