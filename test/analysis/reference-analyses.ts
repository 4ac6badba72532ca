// The perturbation and minimization as they were before they streamed (main at acbb132): whole
// traces and a snapshot per point in memory, every run to its end. Kept only as the reference the
// streaming versions must agree with on small traces (test/analysis/streaming.test.ts).
import type { DmaEvent, EventOf } from '../../src/events/schema.js';
import { cloneWorld, type World } from '../../src/model/world.js';
import type { Fault, ScriptOp, SimConfig } from '../../src/sim/config.js';
import { Rng } from '../../src/sim/rng.js';
import { Sim, type SimState } from '../../src/sim/sim.js';
import { workloadFor } from '../../src/sim/workload.js';
import { ddmin, scriptOf } from '../../src/analysis/minimize.js';
import type { PerturbPoint } from '../../src/analysis/perturb.js';

interface Snapshot {
  seq: number;
  world: World;
  state: SimState;
}

/** The failure a trace shows: the class of its first finding. */
function signatureOf(events: readonly DmaEvent[]): string | null {
  const f = events.find((e) => e.kind === 'finding');
  return f && f.kind === 'finding' ? f.cls : null;
}

/** Does a run resumed from `from` with another scheduler stream hit the same failure (class, at the same guest operation)? */
function fails(config: SimConfig, seed: string, from: Snapshot, rngSeed: string, signature: string, atOps: number): boolean {
  let hit = false;
  const resume = { seq: from.seq, world: cloneWorld(from.world), state: { rng: new Rng(rngSeed).state(), counters: { ...from.state.counters } } };
  const sim: Sim = new Sim(config, seed, { event: (e) => void (e.kind === 'finding' && e.cls === signature && sim.world.guest.ops === atOps && (hit = true)) }, 0, resume);
  sim.run();
  return hit;
}

/** `opts.progress`, if given, is called after each perturbed run with the runs done and the runs planned. */
export function referencePerturb(config: SimConfig, seed: string, opts: { variants?: number; every?: number; progress?: (done: number, total: number) => void } = {}) {
  const variants = opts.variants ?? 8;
  const events: DmaEvent[] = [];
  const snaps: Snapshot[] = [];
  const every = opts.every ?? 16;
  let atOps = -1;
  const sim: Sim = new Sim(config, seed, {
    event: (e) => {
      events.push({ ...e });
      if (e.kind === 'finding' && atOps < 0) atOps = sim.world.guest.ops;
    },
    checkpoint: (seq, world, state) => snaps.push({ seq, world: cloneWorld(world), state: { ...state, counters: { ...state.counters } } }),
  }, every);
  sim.run();
  const signature = signatureOf(events);
  if (!signature) return { signature: '', atOps, points: [], inevitableAt: null, lastAvoidableAt: null, window: [], owed: [] };
  const firstFinding = events.find((e) => e.kind === 'finding')!.seq;
  const points: PerturbPoint[] = [];
  const planned = snaps.filter((s) => s.seq < firstFinding).length * variants;
  let runs = 0;
  for (const s of snaps) {
    if (s.seq >= firstFinding) break;
    let failing = 0;
    for (let k = 0; k < variants; k++) {
      if (fails(config, seed, s, `${seed}/perturb/${s.seq}/${k}`, signature, atOps)) failing++;
      opts.progress?.(++runs, planned);
    }
    points.push({ seq: s.seq, failing, variants, fraction: failing / variants });
  }
  const firstFull = points.findIndex((p, i) => p.failing === p.variants && points.slice(i).every((q) => q.failing === q.variants));
  const inevitableAt = firstFull >= 0 ? points[firstFull]!.seq : firstFinding;
  const lastAvoidableAt = firstFull > 0 ? points[firstFull - 1]!.seq : firstFull === 0 ? null : (points.at(-1)?.seq ?? null);
  const window = events.filter((e) => e.seq > (lastAvoidableAt ?? 0) && e.seq <= inevitableAt);
  // an invalidation is owed across the window if it was requested before the window ends and delivered after it
  const start = lastAvoidableAt ?? 0;
  const owed = events.filter(
    (e) => e.kind === 'iommu.inv' && e.seq <= inevitableAt && !events.some((d) => d.kind === 'iotlb.invalidate' && d.cause === e.seq && d.seq <= start),
  ).filter((e) => !events.some((d) => d.kind === 'iotlb.invalidate' && d.cause === e.seq && d.seq <= inevitableAt));
  return { signature, atOps, points, inevitableAt, lastAvoidableAt, window, owed };
}

function simulate(config: SimConfig, seed: string): DmaEvent[] {
  const out: DmaEvent[] = [];
  new Sim(config, seed, { event: (e) => out.push({ ...e }) }).run();
  return out;
}

const firstClass = (events: DmaEvent[]) => (events.find((e) => e.kind === 'finding') as EventOf<'finding'> | undefined)?.cls ?? null;

/** `progress`, if given, is called after each test run with the number of runs so far (no clock: the caller draws). */
export function referenceMinimize(config: SimConfig, seed: string, progress?: (tests: number) => void) {
  const original = simulate(config, seed);
  const signature = firstClass(original);
  if (!signature) return null;
  const script = scriptOf(original);
  const inflight = config.workload === 'script' ? (config.scriptInflight ?? 1) : workloadFor(config.workload).maxInflight;
  const as = (ops: ScriptOp[], faults: Fault[]): SimConfig => ({ ...config, workload: 'script', script: ops, ops: ops.length, faults, scriptInflight: inflight });
  let tests = 0;
  const test = (ops: ScriptOp[], faults: Fault[]) => {
    tests++;
    const hit = ops.length > 0 && simulate(as(ops, faults), seed).some((e) => e.kind === 'finding' && e.cls === signature);
    progress?.(tests);
    return hit;
  };
  let ops = script;
  let faults = config.faults;
  if (!test(ops, faults)) {
    // the scripted form must reproduce; if it does not, there is nothing sound to shrink
    return null;
  }
  ops = ddmin(ops, (subset) => test(subset, faults));
  if (faults.length > 1) faults = ddmin(faults, (subset) => test(ops, subset));
  else if (faults.length === 1 && test(ops, [])) faults = [];
  const final = as(ops, faults);
  const events = simulate(final, seed);
  return {
    signature,
    before: { events: original.length, intents: script.length, faults: config.faults.length },
    after: { events: events.length, intents: ops.length, faults: faults.length },
    config: final,
    tests,
    events,
  };
}
