// node dist/bench/bisect.js [ops] — what the per-operation table (analysis/op-table.ts) costs the
// record path: the simulation alone against the simulation with the table built from its events,
// in the same process, alternating, CPU time (user + system) and wall. Not a test: nothing asserted.
import { OpHasher, ROW } from '../src/analysis/op-table.js';
import type { SimConfig } from '../src/sim/config.js';
import { Sim } from '../src/sim/sim.js';

const ops = Number(process.argv[2] ?? 14820);
const rounds = Number(process.argv[3] ?? 3);
const cfg: SimConfig = { workload: 'remap', path: 'iommu', ops, ringNum: 16, faults: [] };

function run(withTable: boolean): { cpu: number; wall: number; events: number; rows: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let events = 0;
  const h = new OpHasher();
  let sim: Sim | null = null;
  const sink = withTable
    ? {
        event: (ev: { seq: number } & Parameters<OpHasher['event']>[0]) => {
          events = ev.seq;
          h.event(ev, sim!.world);
        },
      }
    : {
        event: (ev: { seq: number }) => {
          events = ev.seq;
        },
      };
  sim = new Sim(cfg, '1', sink, 16384);
  sim.run();
  const rows = withTable ? h.table().n : 0;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1e3, wall: Number(process.hrtime.bigint() - t0) / 1e6, events, rows };
}

run(false);
run(true); // warm-up
const base: number[] = [];
const table: number[] = [];
const baseWall: number[] = [];
const tableWall: number[] = [];
let events = 0;
let rows = 0;
for (let i = 0; i < rounds; i++) {
  const a = run(false);
  const b = run(true);
  base.push(a.cpu);
  table.push(b.cpu);
  baseWall.push(a.wall);
  tableWall.push(b.wall);
  events = a.events;
  rows = b.rows;
}
const min = (x: number[]) => Math.min(...x);
console.log(
  JSON.stringify({
    events,
    ops: rows,
    simCpuMs: Math.round(min(base)),
    simWithTableCpuMs: Math.round(min(table)),
    ratioCpu: +(min(table) / min(base)).toFixed(3),
    ratioWall: +(min(tableWall) / min(baseWall)).toFixed(3),
    tableBytes: rows * ROW * 4,
  }),
);
