// Checkpoint storage and seek: disk per event (DB size / sum of event bytes) and stateAt latency.
//
//   npm run build && node dist/bench/ckpt.js --workload remap --events 1000000 --every 4096
//   node dist/bench/ckpt.js --db some.db --trace 1      # an existing database (read only)
//
// Records a fresh trace (sim + encode + SQLite, the CLI's record) into a temp DB unless --db is given,
// then reports its size against the bytes of its events, what the checkpoints and page contents take,
// and stateAt at --seeks fixed-seed random positions (CPU: process.cpuUsage, user+sys; wall). One JSON
// object on stdout; nothing is asserted (speed is measured, not asserted).
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { DEFAULT_CHECKPOINT_EVERY, record } from '../src/app/record.js';
import { stateAt } from '../src/app/state.js';
import type { SimConfig, WorkloadName } from '../src/sim/config.js';

const arg = (k: string, d?: string): string | undefined => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1] : d;
};
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor((a.length * p) / 100))]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

const out: Record<string, unknown> = { loadavg: loadavg().map((x) => round(x, 2)) };
let dbPath = arg('--db');
let trace = arg('--trace', '1')!;
let tmp: string | null = null;
if (!dbPath) {
  tmp = mkdtempSync(join(tmpdir(), 'dmareplay-ckpt-'));
  dbPath = join(tmp, 'b.db');
  const workload = arg('--workload', 'remap') as WorkloadName;
  const events = Number(arg('--events', '1000000'));
  const every = Number(arg('--every', String(DEFAULT_CHECKPOINT_EVERY)));
  // events per operation, from a small run
  const cal = record({ db: join(tmp, 'cal.db'), config: { workload, path: 'iommu', ops: 500, ringNum: 256, faults: [] }, seed: '1', checkpointEvery: every });
  const ops = Math.max(1, Math.round((events / cal.events) * 500));
  const config: SimConfig = { workload, path: 'iommu', ops, ringNum: 256, faults: [] };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = record({ db: dbPath, config, seed: '1', checkpointEvery: every });
  Object.assign(out, { workload, ops, every, record_wall_ms: round(performance.now() - t0, 1), record_cpu_ms: round(cpuMs(process.cpuUsage(c0)), 1) });
  trace = String(r.trace);
}
const h = new Database(dbPath, { readonly: true });
const t = h.prepare(`SELECT id, events, checkpoint_every FROM traces WHERE id = ?`).get(Number(trace)) as { id: number; events: number; checkpoint_every: number };
const eventBytes = h.prepare(`SELECT sum(length(data)) FROM events`).pluck().get() as number;
const cols = h.prepare(`SELECT name FROM pragma_table_info('checkpoints')`).pluck().all() as string[];
const ck = h.prepare(`SELECT count(*) AS n, sum(length(state)) AS state${cols.includes('pages') ? ', sum(length(pages)) AS refs' : ''} FROM checkpoints`).get() as { n: number; state: number; refs?: number };
const pages = cols.includes('pages') ? (h.prepare(`SELECT count(*) AS n, sum(length(data)) AS bytes FROM pages`).get() as { n: number; bytes: number }) : null;
const free = (h.pragma('freelist_count', { simple: true }) as number) * (h.pragma('page_size', { simple: true }) as number);
h.close();
const size = statSync(dbPath).size;
Object.assign(out, {
  db: dbPath,
  events: t.events,
  checkpoint_every: t.checkpoint_every,
  db_mb: round(size / 1e6, 1),
  free_mb: round(free / 1e6, 1),
  event_mb: round(eventBytes / 1e6, 1),
  disk_per_event: round(size / eventBytes),
  disk_per_event_without_free_pages: round((size - free) / eventBytes),
  checkpoints: ck.n,
  checkpoint_rows_mb: round(((ck.state ?? 0) + (ck.refs ?? 0)) / 1e6, 1),
  page_contents: pages?.n ?? null,
  page_contents_mb: pages ? round(pages.bytes / 1e6, 1) : null,
});

const seeks = Number(arg('--seeks', '200'));
const rng = seedrandom('dmareplay-bench');
const positions = Array.from({ length: seeks }, () => 1 + Math.floor(rng() * t.events));
for (let i = 0; i < Math.min(3, seeks); i++) stateAt(dbPath, trace, { at: positions[i]! });
const wall: number[] = [];
const cpu: number[] = [];
let folded = 0;
for (const at of positions) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  folded += stateAt(dbPath, trace, { at }).folded;
  wall.push(performance.now() - t0);
  cpu.push(cpuMs(process.cpuUsage(c0)));
}
Object.assign(out, {
  seeks,
  seek_wall_p50_ms: round(pct(wall, 50)),
  seek_wall_p99_ms: round(pct(wall, 99)),
  seek_cpu_p50_ms: round(pct(cpu, 50)),
  seek_cpu_p99_ms: round(pct(cpu, 99)),
  seek_mean_folded: Math.round(folded / Math.max(1, seeks)),
});
console.log(JSON.stringify(out, null, 2));
if (tmp) rmSync(tmp, { recursive: true, force: true });
