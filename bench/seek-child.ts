// The seek row's measurement, run in a process of its own (bench.ts spawns it): the latency of a
// process that opens a recorded trace and seeks in it, without the benchmark's own heap (a 10M-event
// simulation and recording just ran there, and their old-generation garbage made the GC pauses of
// that process part of every figure measured after them).
//   node --expose-gc dist/bench/seek-child.js DB EVENTS SEEKS   → one JSON line: { wall: [...], cpu: [...] } in ms
import seedrandom from 'seedrandom';
import { stateAt } from '../src/app/state.js';
import { gc, now } from './measure.js';

const [db, eventsArg, seeksArg] = process.argv.slice(2);
const events = Number(eventsArg);
const seeks = Number(seeksArg);
if (!db || !(events > 0) || !(seeks > 0)) throw new Error('usage: seek-child.js DB EVENTS SEEKS');
const rng = seedrandom('dmareplay-bench');
const positions = Array.from({ length: seeks }, () => 1 + Math.floor(rng() * events));
for (const at of positions.slice(0, 3)) stateAt(db, '1', { at });
gc();
// CPU time per seek beside the wall: on a loaded machine the wall is mostly waiting for a core
const cpu: number[] = [];
const wall = positions.map((at) => {
  const c = process.cpuUsage();
  const s = now();
  stateAt(db, '1', { at });
  const w = now() - s;
  const u = process.cpuUsage(c);
  cpu.push((u.user + u.system) / 1000);
  return w;
});
process.stdout.write(JSON.stringify({ wall, cpu }) + '\n');
