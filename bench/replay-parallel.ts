// Parallel replay, measured: the simulation alone (null sink, the trace's own config), replay on this
// thread, and replay on N worker threads, each in wall and CPU time (process.cpuUsage: every thread),
// on one stored trace. Ratios are against the simulation alone in the same process.
//
//   node --expose-gc dist/bench/replay-parallel.js --db PATH [--trace 1] [--jobs 1,2] [--reps 2] [--no-sim]
// (--jobs 0: the synchronous replayTrace; --jobs none: the simulation alone.) For a command's own
// peak RSS, run the CLI under /usr/bin/time -v instead.
import { availableParallelism, loadavg } from 'node:os';
import { replayTrace, replayTraceParallel } from '../src/app/replay.js';
import type { SimConfig } from '../src/sim/config.js';
import { Sim } from '../src/sim/sim.js';
import { getTrace, openDb } from '../src/store/db.js';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1]! : d;
};
const dbPath = opt('--db', 'dmareplay.db');
const id = opt('--trace', '1');
// 0: replayTrace on this thread; none: the simulation alone
const jobsList = opt('--jobs', `1,${availableParallelism()}`).split(',').filter((j) => j !== 'none').map(Number);
const reps = Number(opt('--reps', '2'));
const noSim = args.includes('--no-sim');
const gc = () => (globalThis as { gc?: () => void }).gc?.();

async function timed<T>(fn: () => T | Promise<T>): Promise<[T, number, number]> {
  gc();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const c = process.cpuUsage(c0);
  return [r, performance.now() - t0, (c.user + c.system) / 1000];
}

const db = openDb(dbPath);
const trace = getTrace(db, Number(id));
db.close();
const config = JSON.parse(trace.config) as SimConfig;
const events = trace.events;
const meps = (ms: number) => (events / ms / 1000).toFixed(3);
const rows: Record<string, { wall: number; cpu: number }[]> = {};
const add = (k: string, wall: number, cpu: number) => {
  (rows[k] ??= []).push({ wall, cpu });
  process.stderr.write(`[replay-bench] ${k}: wall ${(wall / 1000).toFixed(2)} s (${meps(wall)} M ev/s), cpu ${(cpu / 1000).toFixed(2)} s (${meps(cpu)} M ev/cpu-s), load ${loadavg()[0]!.toFixed(1)}\n`);
};
for (let r = 0; r < reps; r++) {
  if (!noSim) {
    const [, w, c] = await timed(() => {
      let n = 0;
      new Sim(config, trace.seed!, { event: () => void n++ }, trace.checkpoint_every).run();
      return n;
    });
    add('sim alone', w, c);
  }
  for (const jobs of jobsList) {
    const [rep, w, c] = await timed(() => (jobs === 0 ? replayTrace(dbPath, id) : replayTraceParallel(dbPath, id, { jobs })));
    if (!rep.ok || rep.events !== events) throw new Error(`replay failed: ${JSON.stringify(rep.mismatch)}`);
    add(jobs === 0 ? 'replay (this thread)' : `replay --jobs ${jobs}`, w, c);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out: Record<string, unknown> = { events, load: loadavg()[0] };
for (const [k, v] of Object.entries(rows)) out[k] = { wall_meps: Number(meps(med(v.map((x) => x.wall)))), cpu_meps: Number(meps(med(v.map((x) => x.cpu)))) };
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
process.stderr.write(`[replay-bench] max RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (whole bench)\n`);
