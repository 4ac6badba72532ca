// The seek row's measurement, run in a process of its own (bench.ts spawns it): the latency of a
// process that opens a recorded trace and seeks in it, without the benchmark's own heap (a 10M-event
// simulation and recording just ran there, and their old-generation garbage made the GC pauses of
// that process part of every figure measured after them).
//   node --expose-gc dist/bench/seek-child.js DB EVENTS SEEKS
//   → one JSON line: { wall: [...], cpu: [...], main?: [...], wait?: [...], openMs } in ms, one entry per seek
// cpu: the process's CPU time (its JIT compiler and GC threads included); main and wait, where Linux
// gives them (/proc/thread-self/schedstat): the CPU time of the thread that seeks, and the time it
// waited for a core. On a shared machine the wall is that thread's CPU plus its wait. Both come from
// the kernel's accounting, brought up to date at each context switch and scheduler tick: one seek's
// figure can be off by up to a tick (4 ms at HZ=250), so their percentiles are approximate.
import { readFileSync } from 'node:fs';
import seedrandom from 'seedrandom';
import { openStates } from '../src/app/state.js';
import { gc, now } from './measure.js';

const [db, eventsArg, seeksArg] = process.argv.slice(2);
const events = Number(eventsArg);
const seeks = Number(seeksArg);
if (!db || !(events > 0) || !(seeks > 0)) throw new Error('usage: seek-child.js DB EVENTS SEEKS');
const rng = seedrandom('dmareplay-bench');
const positions = Array.from({ length: seeks }, () => 1 + Math.floor(rng() * events));
// the trace is opened once, as a tool that seeks many times holds it (openStates); the open itself is
// not a seek, and is reported beside the seeks (openMs)
const o = now();
const states = openStates(db, '1');
const openMs = now() - o;
for (const at of positions.slice(0, 3)) states.at({ at });
gc();

/** [run time, run-queue wait] of the calling thread in ns, or null where there is no schedstat. */
function schedstat(): [number, number] | null {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ').map(Number);
    return Number.isFinite(run) && Number.isFinite(wait) ? [run!, wait!] : null;
  } catch {
    return null;
  }
}

const cpu: number[] = [];
const main: number[] = [];
const wait: number[] = [];
const wall = positions.map((at) => {
  const t = schedstat();
  const c = process.cpuUsage();
  const s = now();
  states.at({ at });
  const w = now() - s;
  const u = process.cpuUsage(c);
  const t2 = t && schedstat();
  cpu.push((u.user + u.system) / 1000);
  if (t && t2) {
    main.push((t2[0] - t[0]) / 1e6);
    wait.push((t2[1] - t[1]) / 1e6);
  }
  return w;
});
states.close();
process.stdout.write(JSON.stringify(main.length === wall.length ? { wall, cpu, main, wait, openMs } : { wall, cpu, openMs }) + '\n');
