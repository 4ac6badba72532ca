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
  events: DmaEvent[];
}

function simulate(config: SimConfig, seed: string): DmaEvent[] {
  const out: DmaEvent[] = [];
  new Sim(config, seed, { event: (e) => out.push({ ...e }) }).run();
  return out;
}

const firstClass = (events: DmaEvent[]) => (events.find((e) => e.kind === 'finding') as EventOf<'finding'> | undefined)?.cls ?? null;

export function scriptOf(events: DmaEvent[]): ScriptOp[] {
  return events
    .filter((e): e is EventOf<'intent'> => e.kind === 'intent')
    .map((e) => ({ dev: e.dev, what: e.what, sector: '0x' + e.sector.toString(16), segs: e.segs.map((g) => ({ gpa: '0x' + g.gpa.toString(16), len: g.len })) }));
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

/** `progress`, if given, is called after each test run with the number of runs so far (no clock: the caller draws). */
export function minimize(config: SimConfig, seed: string, progress?: (tests: number) => void): MinimizeResult | null {
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
