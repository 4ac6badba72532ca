// Perturbation analysis: when did the race become inevitable? Re-run a failing simulated trace from
// points along it (in-memory checkpoints at actor-step boundaries) with the scheduler's RNG replaced
// by N seeded variants, and count how many variants still produce the failure. Early points leave
// the schedule free to avoid the race; from some point on every variant fails. The events between the
// last point below 100% and the first at 100% are the window in which the race was decided.
import type { DmaEvent } from '../events/schema.js';
import { cloneWorld, type World } from '../model/world.js';
import type { SimConfig } from '../sim/config.js';
import { Rng } from '../sim/rng.js';
import { Sim, type SimState } from '../sim/sim.js';

export interface PerturbPoint {
  seq: number;
  failing: number;
  variants: number;
  fraction: number;
}

export interface PerturbResult {
  signature: string;
  /** the failure is this class while the guest is at this many operations issued (the same request) */
  atOps: number;
  points: PerturbPoint[];
  /** the first point at which every variant fails */
  inevitableAt: number | null;
  /** the last point below it */
  lastAvoidableAt: number | null;
  /** the events between the two: the window of the race */
  window: DmaEvent[];
  /** invalidations requested before the window and still owed to the device IOTLB during it (the late ones) */
  owed: DmaEvent[];
}

interface Snapshot {
  seq: number;
  world: World;
  state: SimState;
}

/** The failure a trace shows: the class of its first finding. */
export function signatureOf(events: readonly DmaEvent[]): string | null {
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
export function perturb(config: SimConfig, seed: string, opts: { variants?: number; every?: number; progress?: (done: number, total: number) => void } = {}): PerturbResult {
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
