// The bench's "simulation alone" row by itself (same warm-up Sim kept alive, same forced gc() before
// each rep, same config), for iterating on the simulation's speed without the other rows.
// Usage: node --expose-gc dist/bench/sim-row.js [events=1000000] [reps=3]
import type { SimConfig } from '../src/sim/config.js';
import { Sim } from '../src/sim/sim.js';
import { readFileSync } from 'node:fs';
import { fmtRate, log, perSec, timed } from './measure.js';
/** this thread's CPU (ns), from the scheduler */
const threadNs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);

const events = Number(process.argv[2] ?? 1_000_000);
const reps = Number(process.argv[3] ?? 3);
const remap = (ops: number): SimConfig => ({ workload: 'remap', path: 'iommu', ops, ringNum: 16, faults: [] });
const warm: Sim[] = [];
let n0 = 0;
const w = new Sim(remap(2000), '1', { event: () => void n0++ });
w.run();
warm.push(w);
const ops = Math.ceil((events / (n0 / 2000)) * 1.005) + 8;
const cpus: number[] = [];
for (let i = 0; i < reps; i++) {
  const m0 = threadNs();
  const [n, t] = timed(() => {
    let n = 0;
    new Sim(remap(ops), '1', { event: () => void n++ }, 0).run();
    return n;
  });
  const mainMs = (threadNs() - m0) / 1e6;
  cpus.push(perSec(n, t.cpuMs));
  log(`sim alone ${i + 1}/${reps}: ${n} events ${fmtRate(perSec(n, t.cpuMs))} CPU, ${fmtRate(perSec(n, t.wallMs))} wall, main thread ${fmtRate(perSec(n, mainMs))} (other threads ${(t.cpuMs - mainMs).toFixed(0)} ms of ${t.cpuMs.toFixed(0)})`);
}
cpus.sort((a, b) => a - b);
console.log(`median ${fmtRate(cpus[cpus.length >> 1]!)} CPU (${warm.length} warm)`);
