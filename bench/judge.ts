// The judging and record-path figures of issue 12, measured in one process (CPU time and wall):
//   - record (src/app/record.ts: sim + encode + SQLite + stream hash) against the simulation alone
//     (the Sim with a null sink: pipeline and checkers included, no checkpoint encoding);
//   - fold with every checker (src/engine/replay.ts fold, JUDGE) against bare decode of the same
//     stored chunks (src/events/binary.ts decodeAt).
//
//   node --expose-gc dist/bench/judge.js [--events N] [--reps N] [--workloads remap,net-rx,mixed] [--no-record] [--no-fold] [--inline]
//
// --inline also records with the writer thread off (src/store/recorder.ts { worker: false }): the
// same bytes, SQLite and hashing on the simulation's thread.
//
// Each row alternates baseline and measured runs (ABAB...) and reports the medians, so a change in
// the machine's load hits both sides alike.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CHECKPOINT_EVERY, record } from '../src/app/record.js';
import { JUDGE } from '../src/check/index.js';
import { decodeAt, sizeAt } from '../src/events/binary.js';
import { fold, type RecordedChunk } from '../src/engine/replay.js';
import type { SimConfig, WorkloadName } from '../src/sim/config.js';
import { Sim } from '../src/sim/sim.js';
import { closeWritable, getTrace, openDb, readChunks } from '../src/store/db.js';
import { Recorder } from '../src/store/recorder.js';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1]! : d;
};
const EVENTS = Number(opt('--events', '1000000'));
const REPS = Number(opt('--reps', '3'));
const WORKLOADS = opt('--workloads', 'remap,net-rx,mixed').split(',') as WorkloadName[];
const SEED = '1';
const log = (s: string) => process.stderr.write(`[judge] ${s}\n`);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

interface T {
  wall: number;
  cpu: number;
}
function timed<R>(fn: () => R): [R, T] {
  gc();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return [r, { wall, cpu: (c.user + c.system) / 1000 }];
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const med = (ts: T[]): T => ({ wall: median(ts.map((t) => t.wall)), cpu: median(ts.map((t) => t.cpu)) });
const meps = (n: number, ms: number) => (n / ms / 1000).toFixed(3);
const rm = (p: string) => {
  for (const s of ['', '-wal', '-shm', '-journal']) rmSync(p + s, { force: true });
};

const cfg = (w: WorkloadName, ops: number): SimConfig => ({ workload: w, path: 'iommu', ops, ringNum: 16, faults: [] });

/** record() with the writer thread off. */
function recordInline(db: string, c: SimConfig): number {
  const h = openDb(db, { create: true });
  try {
    const r = new Recorder(h, { name: 'inline', source: 'sim', seed: SEED, config: c, checkpointEvery: DEFAULT_CHECKPOINT_EVERY }, { worker: false });
    new Sim(c, SEED, { event: (ev) => r.event(ev), checkpoint: r.checkpoint.bind(r) }, DEFAULT_CHECKPOINT_EVERY).run();
    return r.finish().events;
  } finally {
    closeWritable(h);
  }
}

function simOnly(c: SimConfig): number {
  let n = 0;
  new Sim(c, SEED, { event: () => void n++ }, DEFAULT_CHECKPOINT_EVERY).run();
  return n;
}

const dir = mkdtempSync(join(tmpdir(), 'dmareplay-judge-'));
try {
  for (const wl of WORKLOADS) {
    const per = simOnly(cfg(wl, 2000)) / 2000;
    const ops = Math.ceil(EVENTS / per);
    const c = cfg(wl, ops);
    const db = join(dir, `${wl}.db`);
    let events = 0;
    let traceId = 0;
    if (!args.includes('--no-record')) {
      const sims: T[] = [];
      const recs: T[] = [];
      const inl: T[] = [];
      for (let i = 0; i < REPS; i++) {
        const [n, ts] = timed(() => simOnly(c));
        sims.push(ts);
        rm(db);
        const [r, tr] = timed(() => record({ db, config: c, seed: SEED }));
        recs.push(tr);
        events = n;
        traceId = r.trace;
        if (r.events !== n) throw new Error(`record ${r.events} events, sim ${n}`);
        if (args.includes('--inline')) {
          const idb = join(dir, `${wl}-inline.db`);
          rm(idb);
          const [ni, ti] = timed(() => recordInline(idb, c));
          if (ni !== n) throw new Error(`inline record ${ni} events, sim ${n}`);
          inl.push(ti);
          rm(idb);
        }
        log(`${wl} ${n} ev: sim ${(ts.wall / 1000).toFixed(2)} s wall ${(ts.cpu / 1000).toFixed(2)} cpu; record ${(tr.wall / 1000).toFixed(2)} wall ${(tr.cpu / 1000).toFixed(2)} cpu`);
      }
      const s = med(sims);
      const r = med(recs);
      process.stdout.write(
        `${wl.padEnd(7)} ${events} ev  sim ${meps(events, s.wall)} M/s wall ${meps(events, s.cpu)} M/s cpu | record ${meps(events, r.wall)} wall ${meps(events, r.cpu)} cpu | record/sim wall ${(r.wall / s.wall).toFixed(3)}x cpu ${(r.cpu / s.cpu).toFixed(3)}x\n`,
      );
      if (inl.length) {
        const i = med(inl);
        process.stdout.write(`${wl.padEnd(7)} ${events} ev  record inline (no writer thread) ${meps(events, i.wall)} wall ${meps(events, i.cpu)} cpu | over sim: wall ${(i.wall / s.wall).toFixed(3)}x cpu ${(i.cpu / s.cpu).toFixed(3)}x\n`);
      }
    } else {
      rm(db);
      const r = record({ db, config: c, seed: SEED });
      events = r.events;
      traceId = r.trace;
    }
    if (!args.includes('--no-fold')) {
      const h = openDb(db);
      const chunks: RecordedChunk[] = [...readChunks(h, getTrace(h, traceId))].map((k) => ({ seq0: k.seq0, n: k.n, data: Buffer.from(k.data) }));
      h.close();
      const decodes: T[] = [];
      const folds: T[] = [];
      for (let i = 0; i < REPS; i++) {
        const [, td] = timed(() => {
          let x = 0;
          for (const k of chunks) {
            let off = 0;
            for (let j = 0; j < k.n; j++) {
              const ev = decodeAt(k.data, off, k.seq0 + j);
              off += sizeAt(k.data, off);
              x += ev.cause;
            }
          }
          return x;
        });
        decodes.push(td);
        const [fr, tf] = timed(() => fold(chunks, JUDGE));
        folds.push(tf);
        if (fr.events !== events) throw new Error(`fold ${fr.events} events`);
      }
      const d = med(decodes);
      const f = med(folds);
      process.stdout.write(
        `${wl.padEnd(7)} ${events} ev  decode ${meps(events, d.wall)} M/s wall ${meps(events, d.cpu)} cpu | fold+checks ${meps(events, f.wall)} wall ${meps(events, f.cpu)} cpu | fold/decode (throughput) wall ${(d.wall / f.wall).toFixed(3)}x cpu ${(d.cpu / f.cpu).toFixed(3)}x\n`,
      );
    }
    rm(db);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
