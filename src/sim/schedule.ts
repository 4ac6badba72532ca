// PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, "A randomized
// scheduler with probabilistic guarantees of finding bugs", ASPLOS 2010): every actor gets a
// random distinct priority d..d+n-1, d-1 change points are drawn among the first k steps, the
// highest-priority runnable actor always runs, and at change point j the actor that runs drops to
// priority j (below every initial one). A bug of depth d (d ordering constraints between events) is
// then hit with probability at least 1/(n·k^(d-1)) per run.
//
// The priorities, the change points and the step count live in the sim's fault/scheduler counters
// (SimState.counters), drawn from the scheduler's RNG stream, so a checkpoint resumes the schedule
// and replay reproduces it.
import type { Actor } from '../events/schema.js';
import type { Schedule } from './config.js';
import type { Sim } from './sim.js';

/** Every actor a run can have: the guest CPU, one worker per virtqueue, the VMM. */
export const PCT_ACTORS: readonly Actor[] = ['cpu0', 'vq0', 'vq1', 'vq2', 'vq3', 'vmm'];

const STEP = 'pct:step';

function init(sim: Sim, s: Schedule): void {
  const c = sim.counters;
  // a uniform permutation (Fisher-Yates) of the initial priorities d .. d+n-1
  const prios = PCT_ACTORS.map((_, i) => s.depth + i);
  for (let i = prios.length - 1; i > 0; i--) {
    const j = sim.rng.int(i + 1);
    [prios[i], prios[j]] = [prios[j]!, prios[i]!];
  }
  PCT_ACTORS.forEach((a, i) => (c[`pct:prio:${a}`] = prios[i]!));
  for (let j = 1; j < s.depth; j++) c[`pct:cp:${j}`] = 1 + sim.rng.int(s.steps);
  c[STEP] = 0;
}

/** The actor PCT runs next among `runnable` (called once per scheduler step). */
export function pctPick(sim: Sim, s: Schedule, runnable: readonly Actor[]): Actor {
  const c = sim.counters;
  if (c[STEP] === undefined) init(sim, s);
  const step = (c[STEP] = c[STEP]! + 1);
  let pick = runnable[0]!;
  let best = -1;
  for (const a of runnable) {
    const p = c[`pct:prio:${a}`] ?? 0;
    if (p > best) (best = p), (pick = a);
  }
  for (let j = 1; j < s.depth; j++) if (c[`pct:cp:${j}`] === step) c[`pct:prio:${pick}`] = j;
  return pick;
}

/** The PCT guarantee for n actors, k steps, depth d: a lower bound on the chance one run hits a given depth-d bug. */
export function pctBound(n: number, k: number, d: number): number {
  return 1 / (n * Math.pow(k, d - 1));
}

/** PCT's k when not given: about the scheduler steps a run takes (10 to 25 per guest operation). */
export function pctStepsFor(ops: number): number {
  return Math.max(32, 16 * ops);
}
