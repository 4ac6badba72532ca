// npm run bench:analysis — bisect time and probes on long traces, minimize time and ratio.
// Prints a table (or one JSON object with --json). Not a test: nothing here asserts a time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bisectTraces } from '../src/app/bisect.js';
import { record } from '../src/app/record.js';
import { minimize, scriptOf } from '../src/analysis/minimize.js';
import type { DmaEvent } from '../src/events/schema.js';
import type { SimConfig } from '../src/sim/config.js';
import { Sim } from '../src/sim/sim.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const big = args.includes('--big');
const log = (s: string) => process.stderr.write(s + '\n');
const now = () => Number(process.hrtime.bigint()) / 1e6;

function simulate(cfg: SimConfig, seed: string): DmaEvent[] {
  const out: DmaEvent[] = [];
  new Sim(cfg, seed, { event: (e) => out.push(e) }).run();
  return out;
}

function bisectBench(events: number) {
  const dir = mkdtempSync(join(tmpdir(), 'dmareplay-bench-'));
  const db = join(dir, 'b.db');
  try {
    const perOp = simulate({ workload: 'remap', path: 'iommu', ops: 200, ringNum: 16, faults: [] }, '1').length / 200;
    const ops = Math.ceil(events / perOp);
    // one invalidation near the end is lost: the two paths agree until then
    // each remap op unmaps header, buffer, indirect table in that order: drop a buffer's invalidation
    const faults = [{ kind: 'drop-invalidate' as const, arg: 3 * Math.floor(ops * 0.9) + 2 }];
    const base = { workload: 'remap' as const, ops, ringNum: 16, faults };
    log(`bisect: recording 2 x ~${events} events (${ops} ops)…`);
    const a = record({ db, seed: '1', config: { ...base, path: 'direct' } });
    const b = record({ db, seed: '1', config: { ...base, path: 'iommu' } });
    let t = now();
    const first = bisectTraces(db, String(a.trace), String(b.trace));
    const cold = now() - t;
    t = now();
    const again = bisectTraces(db, String(a.trace), String(b.trace));
    const warm = now() - t;
    return { events: b.events, ops, diverged: first.diverged, op: first.op, probes: first.probes, cold_ms: Math.round(cold), warm_ms: Math.round(warm), same: again.op === first.op };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function minimizeBench() {
  const cfg: SimConfig = { workload: 'remap', path: 'iommu', ops: 170, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] };
  const original = simulate(cfg, '7');
  let t = now();
  const r = minimize(cfg, '7')!;
  const ms = now() - t;
  // the smallest failing trace made of two of the original intents (the race needs two requests)
  log('minimize: searching every pair of intents for the smallest failing trace…');
  t = now();
  const script = scriptOf(original);
  let smallest = Infinity;
  for (let i = 0; i < script.length; i++)
    for (let j = i + 1; j < Math.min(script.length, i + 6); j++) {
      const ev = simulate({ ...cfg, workload: 'script', script: [script[i]!, script[j]!], ops: 2, scriptInflight: 1 }, '7');
      if (ev.some((e) => e.kind === 'finding' && e.cls === r.signature)) smallest = Math.min(smallest, ev.length);
    }
  return { before: r.before.events, after: r.after.events, intents: r.after.intents, tests: r.tests, ms: Math.round(ms), smallest, ratio: +(r.after.events / smallest).toFixed(2), search_ms: Math.round(now() - t) };
}

const result: Record<string, unknown> = { minimize: minimizeBench(), bisect_1m: bisectBench(1_000_000) };
if (big) result.bisect_10m = bisectBench(10_000_000);
if (json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  const m = result.minimize as ReturnType<typeof minimizeBench>;
  console.log(`minimize: ${m.before} → ${m.after} events (${m.intents} intents) in ${m.ms} ms, ${m.tests} tests; smallest two-intent failing trace ${m.smallest} events: ratio ${m.ratio} (target ≤ 1.5, < 60 s)`);
  for (const k of ['bisect_1m', 'bisect_10m']) {
    const b = result[k] as ReturnType<typeof bisectBench> | undefined;
    if (b) console.log(`${k}: ${b.events} events, ${b.ops} ops: divergence at op ${b.op} after ${b.probes} probes; ${b.cold_ms} ms first, ${b.warm_ms} ms again (both from the operation tables written while recording)`);
  }
}
