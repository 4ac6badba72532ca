// An explore campaign: the base configuration (from the command line), the strategy and the block
// size, and what a seed expands into. A seed's configuration depends on the campaign and the seed
// alone (never on --jobs, --shard or the order seeds run in), and is a plain SimConfig: it is stored
// with the trace and `record` with the printed options (src/app/sim-args.ts) reproduces it exactly.
import { createHash } from 'node:crypto';
import { type Fault, FAULT_KINDS, type FaultKind, type SimConfig } from '../sim/config.js';
import { swarmConfig } from './explore-swarm.js';

export const STRATEGIES = ['random', 'pct', 'swarm'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/**
 * Faults whose argument N means "the Nth occurrence" (Sim.faultHit counts them): the ones a sweep
 * walks point by point, like iommufd's fail_nth selftests. (evict-iotlb's N is "every Nth pass":
 * a sweep walks its period.) delay-invalidate's argument is a delay, skip-sync, zero-update,
 * partial-write and unmap-size have no occurrence to pick.
 */
export const SWEEPABLE: readonly FaultKind[] = FAULT_KINDS.filter(
  (k) => !['delay-invalidate', 'skip-sync', 'zero-update', 'partial-write', 'unmap-size'].includes(k),
);

/** Injection points a sweep tries at most per seed. */
export const MAX_SWEEP_POINTS = 4096;

export interface Campaign {
  base: SimConfig;
  strategy: Strategy;
  /** PCT depth and steps (strategy pct) */
  pct?: { depth: number; steps: number };
  /** run every injection point of this fault per seed */
  sweep?: FaultKind;
  /** seeds per block: blocks are aligned (seed / block), the unit of work, storage and minimization */
  block: number;
}

export const DEFAULT_BLOCK = 250;

/** The campaign's identity: what decides every seed's run (and the engine that runs it). */
export function campaignKey(c: Campaign, engine: string): string {
  return createHash('sha256').update(JSON.stringify({ engine, ...c })).digest('hex').slice(0, 16);
}

/** The configuration seed runs with (point k > 0: the sweep's fault at its kth occurrence). */
export function configFor(c: Campaign, seed: number, point = 0): SimConfig {
  let config: SimConfig = { ...c.base };
  delete config.schedule;
  if (c.strategy === 'pct' && c.pct) config.schedule = { strategy: 'pct', ...c.pct };
  if (c.strategy === 'swarm') config = swarmConfig(config, String(seed));
  if (c.sweep && point > 0) {
    const faults: Fault[] = config.faults.filter((f) => f.kind !== c.sweep);
    config = { ...config, faults: [...faults, { kind: c.sweep, arg: point }] };
  }
  return config;
}

/** Block b holds seeds [b·size, (b+1)·size), clipped to the requested range. */
export function blockRange(b: number, size: number, from: number, to: number): { lo: number; hi: number } | null {
  const lo = Math.max(b * size, from);
  const hi = Math.min((b + 1) * size - 1, to);
  return lo <= hi ? { lo, hi } : null;
}

/** The blocks shard `index` of `count` runs: every count-th block of the range, starting at its own. */
export function* shardBlocks(size: number, from: number, to: number, index: number, count: number): Generator<{ b: number; lo: number; hi: number }> {
  const first = Math.floor(from / size);
  const last = Math.floor(to / size);
  let b = first + ((((index - first) % count) + count) % count);
  for (; b <= last; b += count) {
    const r = blockRange(b, size, from, to);
    if (r) yield { b, ...r };
  }
}
