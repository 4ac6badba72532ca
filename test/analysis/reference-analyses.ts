// The perturbation and minimization as they were before they streamed (main at acbb132): whole
// traces and a snapshot per point in memory, every run to its end; provenance as it was before it
// was bounded. Kept only as the references the streaming versions must agree with on small traces
// (test/analysis/streaming.test.ts).
import type { DmaEvent, EventOf } from '../../src/events/schema.js';
import { cloneWorld, emptyWorld, type World } from '../../src/model/world.js';
import type { Fault, ScriptOp, SimConfig } from '../../src/sim/config.js';
import { Rng } from '../../src/sim/rng.js';
import { Sim, type SimState } from '../../src/sim/sim.js';
import { workloadFor } from '../../src/sim/workload.js';
import { ddmin, scriptOf } from '../../src/analysis/minimize.js';
import type { PerturbPoint } from '../../src/analysis/perturb.js';
import type { ByteRun } from '../../src/analysis/provenance.js';
import { decodeAt, sizeAt } from '../../src/events/binary.js';
import { mutate } from '../../src/engine/apply.js';
import type { RecordedChunk } from '../../src/engine/replay.js';
import { PAGE, PAGE_SHIFT } from '../../src/model/memory.js';

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

/**
 * Provenance as it was before it was bounded (main at 37896ee): every translation entry and every
 * finding kept for the whole fold. The reference the bounded one must agree with.
 */
export function referenceProvenance(chunks: Iterable<RecordedChunk>, at: number, gpa: bigint, len: number): ByteRun[] {
  const world = emptyWorld();
  const writer = new Int32Array(len);
  const firstPfn = gpa >> PAGE_SHIFT;
  const lastPfn = (gpa + BigInt(len) - 1n) >> PAGE_SHIFT;
  const pfns: bigint[] = [];
  for (let p = firstPfn; p <= lastPfn; p++) pfns.push(p);
  const keep = new Map<number, DmaEvent>();
  const findings = new Map<number, EventOf<'finding'>>();
  outer: for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      if (seq > at) break outer;
      const ev = decodeAt(c.data, off, seq);
      off += sizeAt(c.data, off);
      if (ev.kind === 'finding') findings.set(ev.cause, ev);
      if (ev.kind === 'iotlb.update' || ev.kind === 'iommu.map' || ev.kind === 'iommu.notify') keep.set(seq, ev);
      const before = pfns.map((p) => world.mem.get(Number(p)));
      mutate(world, ev);
      pfns.forEach((p, k) => {
        const now = world.mem.get(Number(p));
        if (now === before[k] || !now) return;
        const old = before[k];
        const pageBase = p << PAGE_SHIFT;
        const lo = pageBase > gpa ? Number(pageBase - gpa) : 0;
        const hi = Math.min(len, Number(pageBase + BigInt(PAGE) - gpa));
        for (let j = lo; j < hi; j++) {
          const o = Number(gpa + BigInt(j) - pageBase);
          if ((old ? old[o] : 0) !== now[o]) writer[j] = seq;
        }
        keep.set(seq, ev);
      });
    }
  }
  const runs: ByteRun[] = [];
  for (let j = 0; j < len; ) {
    let k = j + 1;
    while (k < len && writer[k] === writer[j]) k++;
    const ev = writer[j] ? (keep.get(writer[j]!) ?? null) : null;
    const run: ByteRun = { from: j, to: k, gpa: gpa + BigInt(j), writer: ev };
    if (ev?.kind === 'dev.access') run.translation = { via: ev.via, dma: ev.dma, entry: ev.entry, entryEvent: keep.get(ev.entry) ?? null };
    const f = ev && findings.get(ev.seq);
    if (f) run.finding = f;
    runs.push(run);
    j = k;
  }
  return runs;
}
