// Minimize a failing simulated trace: delta debugging (ddmin, Zeller & Hildebrandt) over the guest
// intents and the injected faults, keeping the failure's signature (the class of the first
// finding). Removing an intent removes its whole causally closed group: its mappings, its post, the
// device's accesses and used entry, its unmaps. The trace's own intents become a script, and since
// intents never draw from the scheduler's RNG stream, the schedule is unchanged by the conversion.
import type { DmaEvent, EventOf } from '../events/schema.js';
import type { Fault, ScriptOp, SimConfig } from '../sim/config.js';
import { Sim } from '../sim/sim.js';
import { workloadFor } from '../sim/workload.js';

export interface MinimizeResult {
  signature: string;
  before: { events: number; intents: number; faults: number };
  after: { events: number; intents: number; faults: number };
  config: SimConfig;
  tests: number;
}

/** What minimize needs of the trace it shrinks (a stored trace, or the simulation itself). */
export interface MinimizeSource {
  /** the class of the trace's first finding, or null */
  signature(): string | null;
  /** the trace's guest intents, in order */
  intents(): Iterable<EventOf<'intent'>>;
  /** its length in events */
  events(): number;
}

/** thrown from a simulation's sink to end the run there (the run is thrown away) */
const STOP = Symbol('stop');

/** Does a run of config hit a finding of class `cls`? It stops at the first one. */
function hits(config: SimConfig, seed: string, cls: string): boolean {
  let hit = false;
  try {
    new Sim(config, seed, {
      event: (e) => {
        if (e.kind === 'finding' && e.cls === cls) {
          hit = true;
          throw STOP;
        }
      },
    }).run();
  } catch (e) {
    if (e !== STOP) throw e;
  }
  return hit;
}

function countEvents(config: SimConfig, seed: string): number {
  let n = 0;
  new Sim(config, seed, { event: () => void n++ }).run();
  return n;
}

/** The trace as the simulation of config and seed produces it, read in one run that keeps only the intents. */
export function simulationSource(config: SimConfig, seed: string): MinimizeSource {
  let signature: string | null = null;
  const intents: EventOf<'intent'>[] = [];
  let events = 0;
  new Sim(config, seed, {
    event: (e) => {
      events++;
      if (e.kind === 'finding') signature ??= e.cls;
      else if (e.kind === 'intent') intents.push({ ...e });
    },
  }).run();
  return { signature: () => signature, intents: () => intents, events: () => events };
}

export const scriptOp = (e: EventOf<'intent'>): ScriptOp => ({ dev: e.dev, what: e.what, sector: '0x' + e.sector.toString(16), segs: e.segs.map((g) => ({ gpa: '0x' + g.gpa.toString(16), len: g.len })) });

export function scriptOf(events: Iterable<DmaEvent>): ScriptOp[] {
  const out: ScriptOp[] = [];
  for (const e of events) if (e.kind === 'intent') out.push(scriptOp(e));
  return out;
}

/** ddmin: a 1-minimal subset of `items` for which `fails` holds (it must hold for all of them). */
export function ddmin<T>(items: T[], fails: (subset: T[]) => boolean): T[] {
  let current = items;
  let n = 2;
  while (current.length >= 2) {
    const size = Math.ceil(current.length / n);
    const parts: T[][] = [];
    for (let i = 0; i < current.length; i += size) parts.push(current.slice(i, i + size));
    let reduced = false;
    for (const part of parts)
      if (fails(part)) {
        current = part;
        n = 2;
        reduced = true;
        break;
      }
    if (!reduced)
      for (let i = 0; i < parts.length; i++) {
        const complement = parts.filter((_, j) => j !== i).flat();
        if (complement.length && fails(complement)) {
          current = complement;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    if (!reduced) {
      if (n >= current.length) break;
      n = Math.min(current.length, 2 * n);
    }
  }
  return current;
}

/**
 * `progress`, if given, is called after each test run with the number of runs so far and the intents
 * of the smallest failing script yet (no clock: the caller draws). Memory is the intents, not the
 * events: each test run stops at its first finding of the signature, and nothing of it is kept.
 */
export function minimize(config: SimConfig, seed: string, progress?: (tests: number, intents: number) => void, source: MinimizeSource = simulationSource(config, seed)): MinimizeResult | null {
  const signature = source.signature();
  if (!signature) return null;
  const script = scriptOf(source.intents());
  const inflight = config.workload === 'script' ? (config.scriptInflight ?? 1) : workloadFor(config.workload).maxInflight;
  const as = (ops: ScriptOp[], faults: Fault[]): SimConfig => ({ ...config, workload: 'script', script: ops, ops: ops.length, faults, scriptInflight: inflight });
  let tests = 0;
  let smallest = script.length;
  const test = (ops: ScriptOp[], faults: Fault[]) => {
    tests++;
    const hit = ops.length > 0 && hits(as(ops, faults), seed, signature);
    if (hit) smallest = Math.min(smallest, ops.length);
    progress?.(tests, smallest);
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
  return {
    signature,
    before: { events: source.events(), intents: script.length, faults: config.faults.length },
    after: { events: countEvents(final, seed), intents: ops.length, faults: faults.length },
    config: final,
    tests,
  };
}
