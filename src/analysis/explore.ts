// Explore: run many seeds of a campaign and keep what matters. One seed (or one injection point of a
// sweep) is one run of the sim with no store behind it, judged by the same checkers as any trace;
// its findings become signatures. A block of seeds is the unit a worker runs: it returns how many
// runs failed, per signature how many runs hit it and the first one, and per signature its smallest
// run in the block (fewest events, then the lowest seed and point): the reproducer candidate, which
// the main thread keeps if it beats the stored one and then has minimized. Everything here is a
// function of the campaign and the block alone, so the result is the same on any worker, in any
// order, on any machine.
import { createHash } from 'node:crypto';
import { EventWriter, decodeAt, sizeAt } from '../events/binary.js';
import type { DmaEvent, EventOf } from '../events/schema.js';
import type { FaultKind, ScriptOp, SimConfig } from '../sim/config.js';
import { Sim } from '../sim/sim.js';
import { workloadFor } from '../sim/workload.js';
import { type Campaign, configFor, MAX_SWEEP_POINTS } from './explore-plan.js';
import { type Signature, signatureOf } from './explore-signature.js';
import { ddmin, scriptOf } from './minimize.js';

export interface RunOutcome {
  events: number;
  /** distinct signatures, in the order they first fired */
  sigs: { sig: Signature; message: string }[];
  /** occurrences of the swept fault's counter (how many injection points this run passed) */
  reached: number;
}

/** Runs one configuration, keeping only what a signature needs: each event's kind and the findings. */
export function runOne(config: SimConfig, seed: string, sweep?: FaultKind): RunOutcome {
  const kinds: string[] = [''];
  const found: EventOf<'finding'>[] = [];
  const sim = new Sim(config, seed, {
    event: (e) => {
      kinds[e.seq] = e.kind;
      if (e.kind === 'finding') found.push(e);
    },
  });
  sim.run();
  const sigs: RunOutcome['sigs'] = [];
  const seen = new Set<string>();
  for (const f of found) {
    const sig = signatureOf(f, (s) => kinds[s]);
    if (seen.has(sig.id)) continue;
    seen.add(sig.id);
    sigs.push({ sig, message: f.message });
  }
  let reached = 0;
  if (sweep) for (const [k, n] of Object.entries(sim.counters)) if (k.startsWith(`${sweep}:`)) reached = Math.max(reached, n);
  return { events: sim.seq, sigs, reached };
}

/** The encoded event stream of a run and its SHA-256: what `record` stores and reports as the trace hash. */
export function encodedRun(config: SimConfig, seed: string): { hash: string; bytes: Uint8Array; events: number } {
  const w = new EventWriter(1 << 16);
  let events = 0;
  new Sim(config, seed, {
    event: (e) => {
      w.write(e);
      events++;
    },
  }).run();
  const bytes = new Uint8Array(w.bytes());
  return { hash: createHash('sha256').update(bytes).digest('hex'), bytes, events };
}

/** The first event at which two encoded streams differ (seq from 1), decoded where possible. */
export function firstDifference(a: Uint8Array, b: Uint8Array): { seq: number; a: DmaEvent | null; b: DmaEvent | null } | null {
  let pa = 0;
  let pb = 0;
  for (let seq = 1; ; seq++) {
    if (pa >= a.length && pb >= b.length) return null;
    const la = pa < a.length ? sizeAt(a, pa) : 0;
    const lb = pb < b.length ? sizeAt(b, pb) : 0;
    const same = la === lb && la > 0 && Buffer.compare(a.subarray(pa, pa + la), b.subarray(pb, pb + lb)) === 0;
    if (!same) {
      const dec = (buf: Uint8Array, p: number) => {
        try {
          return p < buf.length ? decodeAt(buf, p, seq) : null;
        } catch {
          return null;
        }
      };
      return { seq, a: dec(a, pa), b: dec(b, pb) };
    }
    pa += la;
    pb += lb;
  }
}

/** A failing run reduced (ddmin over its intents, then its faults) while it keeps signature `sig`. */
export function minimizeFor(config: SimConfig, seed: string, sig: string, sweep?: FaultKind): { config: SimConfig; events: number } | null {
  const original: DmaEvent[] = [];
  new Sim(config, seed, { event: (e) => void (e.kind === 'intent' && original.push({ ...e })) }).run();
  const inflight = config.workload === 'script' ? (config.scriptInflight ?? 1) : workloadFor(config.workload, undefined, 1, config.knobs).maxInflight;
  const as = (ops: ScriptOp[], faults = config.faults): SimConfig => ({ ...config, workload: 'script', script: ops, ops: ops.length, faults, scriptInflight: inflight });
  const keeps = (c: SimConfig) => c.ops > 0 && runOne(c, seed, sweep).sigs.some((s) => s.sig.id === sig);
  let ops = scriptOf(original);
  if (!keeps(as(ops))) return null; // the scripted form does not reproduce: nothing sound to shrink
  ops = ddmin(ops, (subset) => keeps(as(subset)));
  let faults = config.faults;
  if (faults.length) {
    const fewer = ddmin(faults, (subset) => keeps(as(ops, subset)));
    faults = keeps(as(ops, [])) ? [] : fewer;
  }
  const final = as(ops, faults);
  return { config: final, events: runOne(final, seed).events };
}

export interface BlockTask {
  campaign: Campaign;
  lo: number;
  hi: number;
  /** runs whose seed is a multiple of this return their encoded stream for the determinism check (0: none) */
  verifyEvery: number;
}

export interface BlockSig {
  sig: string;
  count: number;
  firstSeed: number;
  firstPoint: number;
}

export interface Candidate {
  sig: string;
  seed: number;
  point: number;
  /** the run's own configuration, its event count and trace hash (what `record` reproduces) */
  config: SimConfig;
  events: number;
  hash: string;
}

export interface BlockResult {
  lo: number;
  hi: number;
  seeds: number;
  runs: number;
  failing: number;
  /** seeds none of whose runs failed */
  passing: number;
  /** per signature, in the order they first appear in the block */
  sigs: BlockSig[];
  info: (Signature & { message: string })[];
  candidates: Candidate[];
  verify: { seed: number; point: number; hash: string; bytes: Uint8Array }[];
}

/** A run that throws is a dmareplay bug: say which seed (the app adds the command that reproduces it). */
export const SIM_FAILED = /^the simulation failed on seed ([0-9]+)(?: point ([0-9]+))?: /;
function guarded<T>(seed: number, point: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`the simulation failed on seed ${seed}${point ? ` point ${point}` : ''}: ${(e as Error).message}`);
  }
}

/**
 * The result of a block from the results of its pieces (consecutive seed ranges, in seed order, that
 * together cover it): exactly what runBlock over the whole block returns. Counts add; a signature's
 * first run is the one in the earliest piece that has it; its candidate is the smallest one, the
 * earliest on a tie (as runBlock keeps the first of equal runs). So a block may run as one task or
 * as several, on any workers, and store the same rows.
 */
export function mergeBlockResults(parts: readonly BlockResult[]): BlockResult {
  if (parts.length === 1) return parts[0]!;
  const res: BlockResult = { lo: parts[0]!.lo, hi: parts.at(-1)!.hi, seeds: 0, runs: 0, failing: 0, passing: 0, sigs: [], info: [], candidates: [], verify: [] };
  const bySig = new Map<string, BlockSig>();
  const best = new Map<string, Candidate>();
  const described = new Set<string>();
  for (const p of parts) {
    res.seeds += p.seeds;
    res.runs += p.runs;
    res.failing += p.failing;
    res.passing += p.passing;
    for (const s of p.sigs) {
      const b = bySig.get(s.sig);
      if (b) b.count += s.count;
      else bySig.set(s.sig, { ...s });
    }
    for (const i of p.info) if (!described.has(i.id)) (described.add(i.id), res.info.push(i));
    for (const c of p.candidates) {
      const b = best.get(c.sig);
      if (!b || c.events < b.events) best.set(c.sig, c);
    }
    for (const v of p.verify) res.verify.push(v);
  }
  res.sigs = [...bySig.values()];
  res.candidates = [...best.values()];
  return res;
}

export function runBlock(t: BlockTask): BlockResult {
  const c = t.campaign;
  const res: BlockResult = { lo: t.lo, hi: t.hi, seeds: 0, runs: 0, failing: 0, passing: 0, sigs: [], info: [], candidates: [], verify: [] };
  const bySig = new Map<string, BlockSig>();
  // per signature its smallest run so far
  const best = new Map<string, { seed: number; point: number; events: number }>();
  let seedFailed = false;
  const count = (seed: number, point: number, config: SimConfig, r: RunOutcome): void => {
    res.runs++;
    if (r.sigs.length) (res.failing++, (seedFailed = true));
    for (const { sig, message } of r.sigs) {
      const s = bySig.get(sig.id);
      if (s) s.count++;
      else {
        bySig.set(sig.id, { sig: sig.id, count: 1, firstSeed: seed, firstPoint: point });
        res.info.push({ ...sig, message });
      }
      const b = best.get(sig.id);
      if (!b || r.events < b.events) best.set(sig.id, { seed, point, events: r.events });
    }
    if (t.verifyEvery > 0 && seed % t.verifyEvery === 0) {
      const e = guarded(seed, point, () => encodedRun(config, String(seed)));
      res.verify.push({ seed, point, hash: e.hash, bytes: e.bytes });
    }
  };
  for (let seed = t.lo; seed <= t.hi; seed++) {
    res.seeds++;
    seedFailed = false;
    if (!c.sweep) {
      const config = configFor(c, seed);
      count(seed, 0, config, guarded(seed, 0, () => runOne(config, String(seed))));
      if (!seedFailed) res.passing++;
      continue;
    }
    // fail_nth: the kth occurrence of the fault, k = 1, 2, … until a run no longer reaches point k
    for (let k = 1; k <= MAX_SWEEP_POINTS; k++) {
      const config = configFor(c, seed, k);
      const r = guarded(seed, k, () => runOne(config, String(seed), c.sweep));
      if (r.reached < k) break;
      count(seed, k, config, r);
    }
    if (!seedFailed) res.passing++;
  }
  res.sigs = [...bySig.values()];
  for (const [sig, f] of best) {
    const config = configFor(c, f.seed, f.point);
    const e = guarded(f.seed, f.point, () => encodedRun(config, String(f.seed)));
    res.candidates.push({ sig, seed: f.seed, point: f.point, config, events: e.events, hash: e.hash });
  }
  return res;
}
