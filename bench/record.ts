// The record row alone, as bench.ts measures it (record() into a fresh database, CPU of every thread
// over the simulation alone with a null sink, both after the same warm-up in this process), with
// the CPU split by thread: the recording thread, the writer thread (what is left once the threads
// still alive are counted: it has exited), and V8's platform threads (compile, concurrent GC).
// Sim and record runs alternate, so a change in load hits both.
//
//   node --expose-gc dist/bench/record.js [--events N] [--reps N] [--every N] [--mode M]
// --mode runs part of the record path in place of record(), to see what each part costs:
// encode (EventWriter), ops (+ OpHasher), ck (+ checkpoint rows), cknoop / ckro (the Sim with a
// checkpoint sink that does nothing, the pipeline copying pages after a checkpoint or not).
// RECORD_WINDOWS=1 prints each record's CLOCK_MONOTONIC window (perf record -k CLOCK_MONOTONIC).
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { record } from '../src/app/record.js';
import type { SimConfig } from '../src/sim/config.js';
import { Sim } from '../src/sim/sim.js';
import { fileBytes, gc, log, median, now, rmDb } from './measure.js';
import { EventWriter } from '../src/events/binary.js';
import { OpHasher } from '../src/analysis/op-table.js';
import { encodeCheckpointRow } from '../src/store/recorder.js';
import type { DmaEvent } from '../src/events/schema.js';

const argv = process.argv.slice(2);
const opt = (k: string, d: number): number => {
  const i = argv.indexOf(k);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const EVENTS = opt('--events', 1_000_000);
const REPS = opt('--reps', 5);
const SEED = '1';
const remap = (ops: number): SimConfig => ({ workload: 'remap', path: 'iommu', ops, ringNum: 16, faults: [] });

/** CPU ns of each live thread of this process (/proc schedstat: exact, not tick-granular). */
function threads(): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      m.set(t, Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      /* exited meanwhile */
    }
  }
  return m;
}

interface Split {
  wall: number;
  cpu: number;
  main: number;
  v8: number;
  writer: number;
  /** minor page faults of the whole process (thousands) */
  faults: number;
}

function timedSplit(fn: () => unknown): Split {
  gc();
  const main = String(process.pid);
  const th0 = threads();
  const f0 = process.resourceUsage().minorPageFault;
  const c0 = process.cpuUsage();
  const t0 = now();
  fn();
  const wall = now() - t0;
  const c = process.cpuUsage(c0);
  const th1 = threads();
  const faults = (process.resourceUsage().minorPageFault - f0) / 1000;
  const cpu = (c.user + c.system) / 1000;
  let v8 = 0;
  for (const [t, v] of th1) if (t !== main && th0.has(t)) v8 += (v - th0.get(t)!) / 1e6;
  const mainMs = (th1.get(main)! - th0.get(main)!) / 1e6;
  return { wall, cpu, main: mainMs, v8, writer: Math.max(0, cpu - mainMs - v8), faults };
}

const warm: Sim[] = [];
let perOp = 0;
{
  const sim = new Sim(remap(2000), SEED, { event: () => void perOp++ });
  sim.run();
  warm.push(sim); // keeps the simulation's hidden classes alive through gc() (see bench.ts eventsPerOp)
  perOp /= 2000;
}
const ops = Math.ceil((EVENTS / perOp) * 1.005) + 8;
const config = remap(ops);
const every = opt('--every', 16384);
// --mode: what runs in place of record() (the ablation: each adds one part of the record path)
//   record (default) | encode (EventWriter only) | ops (encode + OpHasher) | ck (encode + ops + checkpoint rows)
const mode = argv.includes('--mode') ? argv[argv.indexOf('--mode') + 1]! : 'record';
function partial(): string {
  if (mode === 'cknoop' || mode === 'ckro') {
    let n = 0;
    new Sim(config, SEED, { event: () => void n++, checkpoint: () => {}, checkpointReadsOnly: mode === 'ckro' }, every).run();
    return String(n);
  }
  const w = new EventWriter(1 << 16);
  const ops = new OpHasher();
  let n = 0;
  let ckBytes = 0;
  const sink = {
    event: (ev: DmaEvent) => {
      const kind = ev.kind;
      w.write(ev, kind);
      if (mode !== 'encode') ops.observe(ev, kind);
      if (++n === 4096) {
        n = 0;
        w.reset();
      }
    },
    ...(mode === 'ck' ? { checkpoint: (seq: number, world: Parameters<typeof encodeCheckpointRow>[1], st: Parameters<typeof encodeCheckpointRow>[2]) => void (ckBytes += encodeCheckpointRow(seq, world, st).pages.length) } : {}),
  };
  const sim = new Sim(config, SEED, sink, every);
  if (mode !== 'encode') ops.follow(sim.world);
  sim.run();
  return String(ckBytes);
}
const dir = mkdtempSync(join(tmpdir(), 'dmareplay-bench-record-'));
const db = join(dir, 'r.db');
const f = (ms: number) => (ms / 1000).toFixed(3);
const sims: Split[] = [];
const recs: Split[] = [];
let events = 0;
let hash = '';
try {
  for (let i = 0; i < REPS; i++) {
    const s = timedSplit(() => {
      let n = 0;
      new Sim(config, SEED, { event: () => void n++ }, 0).run();
      events = n;
    });
    sims.push(s);
    rmDb(db);
    const m0 = process.hrtime.bigint(); // perf record -k CLOCK_MONOTONIC: the record's window
    const r = timedSplit(() => {
      hash = mode === 'record' ? record({ db, config, seed: SEED, checkpointEvery: every }).hash : partial();
    });
    if (process.env.RECORD_WINDOWS) log(`window ${m0} ${process.hrtime.bigint()}`);
    recs.push(r);
    log(`rep ${i + 1}: sim ${f(s.cpu)} s CPU (main ${f(s.main)}, v8 ${f(s.v8)}); record ${f(r.cpu)} s CPU (main ${f(r.main)}, writer ${f(r.writer)}, v8 ${f(r.v8)}), wall ${f(r.wall)} s; ratio ${(r.cpu / s.cpu).toFixed(2)}x; load ${loadavg()[0]!.toFixed(2)}`);
  }
  const med = (xs: Split[], k: keyof Split) => median(xs.map((x) => x[k]));
  log(`${events} events, hash ${hash}, db ${(fileBytes(db) / 2 ** 20).toFixed(1)} MiB`);
  log(`median: sim ${f(med(sims, 'cpu'))} s CPU, ${f(med(sims, 'wall'))} s wall; record ${f(med(recs, 'cpu'))} s CPU (main ${f(med(recs, 'main'))}, writer ${f(med(recs, 'writer'))}, v8 ${f(med(recs, 'v8'))}), ${f(med(recs, 'wall'))} s wall, ${med(recs, 'faults').toFixed(1)}k page faults`);
  log(`record / sim: CPU ${(med(recs, 'cpu') / med(sims, 'cpu')).toFixed(3)}x, wall ${(med(recs, 'wall') / med(sims, 'wall')).toFixed(3)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
