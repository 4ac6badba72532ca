// Simulation alone (null sink) on remap/iommu: CPU time per event, for iterating on the sim's speed.
// Usage: node dist/bench/simcpu.js [ops=14900] [reps=3]
import { Sim } from '../src/sim/sim.js';
import type { SimConfig } from '../src/sim/config.js';

const ops = Number(process.argv[2] ?? 14900);
const reps = Number(process.argv[3] ?? 3);
const config: SimConfig = { workload: 'remap', path: 'iommu', ops, ringNum: 16, faults: [] };
for (let i = 0; i < reps; i++) {
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  let n = 0;
  new Sim(config, '1', { event: () => void n++ }, 0).run();
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  const wall = Number(process.hrtime.bigint() - w0) / 1e9;
  console.log(`${n} events: ${cpu.toFixed(2)} s CPU (user ${(c.user / 1e6).toFixed(2)}), ${(n / cpu / 1e6).toFixed(3)} M ev/s CPU, ${(n / wall / 1e6).toFixed(3)} M ev/s wall`);
}
