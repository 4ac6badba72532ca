// Perturbation analysis: when did the race become inevitable? Re-run a failing simulated trace from
// points along it (actor-step boundaries, one every `every` events) with the scheduler's RNG
// replaced by N seeded variants, and count how many variants still produce the failure. Early
// points leave the schedule free to avoid the race; from some point on every variant fails. The
// events between the last point below 100% and the first at 100% are the window in which the race
// was decided.
//
// Bounded memory and time at any trace length: nothing is kept per event or per point. The points
// are the last `points` before the first finding (all of them on a short trace); the simulation
// resumes from the stored checkpoint before them (a recorded trace's `source`), and each point's
// variants run the moment the simulation reaches it, from a copy of the world there. A variant stops
// as soon as it hits the failure or the guest has issued more operations than at the failure (the
// operation count only grows: it cannot hit after that). The window and the invalidations owed
// across it are read back from the recorded events afterwards.
import type { DmaEvent, Kind } from '../events/schema.js';
import { InputError } from '../errors.js';
import { cloneWorld, type World } from '../model/world.js';
import type { SimConfig } from '../sim/config.js';
import { Rng } from '../sim/rng.js';
import { type Resume, Sim, type SimState } from '../sim/sim.js';

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
  /** points from this seq on were examined (0: every point from the start of the trace) */
  examinedFrom: number;
  points: PerturbPoint[];
  /** the first point at which every variant fails */
  inevitableAt: number | null;
  /** the last point below it */
  lastAvoidableAt: number | null;
  /** the events between the two: the window of the race (the first MAX_WINDOW of them) */
  window: DmaEvent[];
  /** how many events the window has */
  windowEvents: number;
  /** invalidations requested before the window ends and still owed to the device IOTLB at its end (the late ones; the last MAX_OWED) */
  owed: DmaEvent[];
  owedCount: number;
}

/** Where the analysis reads the recorded trace from (a stored trace, or the simulation itself). */
export interface PerturbSource {
  /** the trace's first finding */
  firstFinding(): { seq: number; cls: string } | null;
  /** a state to resume the simulation from at or before `seq` (a checkpoint), or null: run from the start */
  resumeBefore(seq: number): Resume | null;
  /** calls `each` with the recorded events of seqs [from, to], only those of `kinds` if given */
  scan(from: number, to: number, each: (ev: DmaEvent) => void, kinds?: ReadonlySet<Kind>): void;
}

export interface PerturbOptions {
  variants?: number;
  every?: number;
  /** examine at most this many points, the last ones before the first finding */
  points?: number;
  progress?: (done: number, total: number) => void;
  /** the recorded trace (default: the simulation of config and seed, run again as needed) */
  source?: PerturbSource;
}

export const DEFAULT_POINTS = 128;
export const MAX_WINDOW = 10_000;
export const MAX_OWED = 1_000;

/** thrown from a simulation's sink to end the run there (the run is thrown away) */
const STOP = Symbol('stop');

function runUntilStopped(sim: Sim): void {
  try {
    sim.run();
  } catch (e) {
    if (e !== STOP) throw e;
  }
}

/** The failure a trace shows: the class of its first finding. */
export function signatureOf(events: readonly DmaEvent[]): string | null {
  const f = events.find((e) => e.kind === 'finding');
  return f && f.kind === 'finding' ? f.cls : null;
}

interface Point {
  seq: number;
  world: World;
  state: SimState;
}

/** Does a run resumed from `from` with another scheduler stream hit the same failure (class, at the same guest operation)? */
function fails(config: SimConfig, seed: string, from: Point, rngSeed: string, signature: string, atOps: number): boolean {
  let hit = false;
  const resume = { seq: from.seq, world: cloneWorld(from.world), state: { rng: new Rng(rngSeed).state(), counters: { ...from.state.counters } } };
  const sim: Sim = new Sim(
    config,
    seed,
    {
      event: (e) => {
        const ops = sim.world.guest.ops;
        if (e.kind === 'finding' && e.cls === signature && ops === atOps) {
          hit = true;
          throw STOP;
        }
        if (ops > atOps) throw STOP; // past the failing operation: it can no longer be hit
      },
    },
    0,
    resume,
  );
  runUntilStopped(sim);
  return hit;
}

/** The recorded trace as the simulation of `config` and `seed` produces it (each question re-runs it from the start). */
export function simulationSource(config: SimConfig, seed: string): PerturbSource {
  return {
    firstFinding() {
      let first: { seq: number; cls: string } | null = null;
      runUntilStopped(
        new Sim(config, seed, {
          event: (e) => {
            if (e.kind !== 'finding') return;
            first = { seq: e.seq, cls: e.cls };
            throw STOP;
          },
        }),
      );
      return first;
    },
    resumeBefore: () => null,
    scan(from, to, each, kinds) {
      if (from > to) return;
      runUntilStopped(
        new Sim(config, seed, {
          event: (e) => {
            if (e.seq >= from && (!kinds || kinds.has(e.kind))) each({ ...e });
            if (e.seq >= to) throw STOP;
          },
        }),
      );
    },
  };
}

const resumeCopy = (r: Resume | null): Resume | undefined => r ? { seq: r.seq, world: cloneWorld(r.world), state: { rng: { ...r.state.rng }, counters: { ...r.state.counters } } } : undefined;

/** `opts.progress`, if given, is called after each perturbed run with the runs done and the runs planned. */
export function perturb(config: SimConfig, seed: string, opts: PerturbOptions = {}): PerturbResult {
  const variants = opts.variants ?? 8;
  const every = opts.every ?? 16;
  const maxPoints = opts.points ?? DEFAULT_POINTS;
  const source = opts.source ?? simulationSource(config, seed);
  const first = source.firstFinding();
  if (!first) return { signature: '', atOps: -1, examinedFrom: 0, points: [], inevitableAt: null, lastAvoidableAt: null, window: [], windowEvents: 0, owed: [], owedCount: 0 };
  const signature = first.cls;
  // the points examined: those in the last maxPoints * every events before the first finding
  const examinedFrom = Math.max(0, first.seq - maxPoints * every);
  // strictly before the first point examined: a resumed run reports the points after its start, not the start itself
  const resume = examinedFrom > 1 ? source.resumeBefore(examinedFrom - 1) : null;

  // the guest operation the failure belongs to: run up to the first finding
  let atOps = -1;
  const toFinding: Sim = new Sim(
    config,
    seed,
    {
      event: (e) => {
        if (e.kind !== 'finding') return;
        if (e.seq !== first.seq || e.cls !== first.cls)
          throw new InputError(`the simulation does not reproduce the recorded trace: its first finding is ${e.cls} at #${e.seq}, the recording's ${first.cls} at #${first.seq} (replay the trace to see where they part)`);
        atOps = toFinding.world.guest.ops;
        throw STOP;
      },
    },
    0,
    resumeCopy(resume),
  );
  runUntilStopped(toFinding);
  if (atOps < 0) throw new InputError(`the simulation does not reproduce the recorded trace: it ends without the finding at #${first.seq}`);

  // the points, each perturbed as the simulation reaches it
  const points: PerturbPoint[] = [];
  let planned = Math.max(1, Math.ceil((first.seq - (resume?.seq ?? 0)) / every)) * variants;
  let runs = 0;
  const walk = new Sim(
    config,
    seed,
    {
      event: (e) => {
        if (e.seq >= first.seq) throw STOP;
      },
      checkpoint: (seq, world, state) => {
        if (seq < examinedFrom) return;
        if (seq >= first.seq) throw STOP;
        if (runs === 0) planned = Math.max(1, Math.ceil((first.seq - seq) / every)) * variants;
        let failing = 0;
        for (let k = 0; k < variants; k++) {
          if (fails(config, seed, { seq, world, state }, `${seed}/perturb/${seq}/${k}`, signature, atOps)) failing++;
          runs++;
          opts.progress?.(runs, Math.max(planned, runs));
        }
        points.push({ seq, failing, variants, fraction: failing / variants });
      },
    },
    every,
    resumeCopy(resume),
  );
  runUntilStopped(walk);
  opts.progress?.(runs, runs);

  const firstFull = points.findIndex((p, i) => p.failing === p.variants && points.slice(i).every((q) => q.failing === q.variants));
  const inevitableAt = firstFull >= 0 ? points[firstFull]!.seq : first.seq;
  const lastAvoidableAt = firstFull > 0 ? points[firstFull - 1]!.seq : firstFull === 0 ? null : (points.at(-1)?.seq ?? null);
  const start = lastAvoidableAt ?? examinedFrom;

  const window: DmaEvent[] = [];
  let windowEvents = 0;
  source.scan(start + 1, inevitableAt, (e) => {
    if (windowEvents++ < MAX_WINDOW) window.push(e);
  });

  // an invalidation is owed across the window if it was requested before the window ends and not
  // delivered to the device IOTLB by then (an iotlb.invalidate whose cause is it)
  const pending = new Set<number>();
  source.scan(1, inevitableAt, (e) => {
    if (e.kind === 'iommu.inv') pending.add(e.seq);
    else if (e.kind === 'iotlb.invalidate') pending.delete(e.cause);
  }, new Set<Kind>(['iommu.inv', 'iotlb.invalidate']));
  const keep = [...pending].slice(-MAX_OWED); // in seq order: the scan added them so
  const wanted = new Set(keep);
  const owed: DmaEvent[] = [];
  if (keep.length) source.scan(keep[0]!, inevitableAt, (e) => void (wanted.has(e.seq) && owed.push(e)), new Set<Kind>(['iommu.inv']));
  return { signature, atOps, examinedFrom, points, inevitableAt, lastAvoidableAt, window, windowEvents, owed, owedCount: pending.size };
}
