// Fold of an imported trace with every check against bare decode of its stored chunks (issue 12's
// fold row, measured as bench.ts's commandRows does), on a database built once:
//
//   node --expose-gc dist/bench/fold.js --db imported.db [--trace 1] [--reps 5] [--only fold|decode|nojudge|shared] [--nojudge] [--shared] [--sim-first OPS]
//
// imported.db: a simulated remap/iommu trace exported to JSONL and imported, e.g.
//   dmareplay record --db r.db --workload remap --path iommu --ops 14820 --ring 16   (~1M events)
//   dmareplay export 1 --db r.db > t.jsonl && dmareplay import t.jsonl --db imported.db
//
// Runs alternate decode, fold (ABAB...) and the medians of CPU time are reported, so a change in the
// machine's load hits both sides alike. --only runs one side (for `node --cpu-prof`).
import { JUDGE } from '../src/check/index.js';
import { decodeAt, decodeChunk, sizeAt } from '../src/events/binary.js';
import { fold, type RecordedChunk } from '../src/engine/replay.js';
import { Sim } from '../src/sim/sim.js';
import { getTrace, openDb, readChunks } from '../src/store/db.js';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1]! : d;
};
const DB = opt('--db', '');
const TRACE = Number(opt('--trace', '1'));
const REPS = Number(opt('--reps', '5'));
const ONLY = opt('--only', '');
/** run the simulation first (remap/iommu, this many ops), as bench.ts does before its fold row: the rules and checkers have then also seen the simulation's events */
const SIM_OPS = Number(opt('--sim-first', '0'));
if (!DB) throw new Error('--db <imported.db> is required');
const gc = () => (globalThis as { gc?: () => void }).gc?.();

function cpu<R>(fn: () => R): [R, number] {
  gc();
  const c0 = process.cpuUsage();
  const r = fn();
  const c = process.cpuUsage(c0);
  return [r, (c.user + c.system) / 1000];
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const h = openDb(DB);
const chunks: RecordedChunk[] = [...readChunks(h, getTrace(h, TRACE))].map((c) => ({ seq0: c.seq0, n: c.n, data: Uint8Array.from(c.data) }));
h.close();
const events = chunks.reduce((s, c) => s + c.n, 0);

function decodeAll(): number {
  let n = 0;
  for (const c of chunks) n += decodeChunk(c.data, c.seq0, c.n).length;
  return n;
}

/** Decode as fold does (bytes fields as views of the chunk), nothing else: what fold pays before its rules. */
function decodeShared(): number {
  let x = 0;
  for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      x += decodeAt(c.data, off, c.seq0 + i, true).cause;
      off += sizeAt(c.data, off);
    }
  }
  return x;
}

if (SIM_OPS) {
  let n = 0;
  const t = cpu(() => new Sim({ workload: 'remap', path: 'iommu', ops: SIM_OPS, ringNum: 16, faults: [] }, '1', { event: () => void n++ }, 0).run())[1];
  process.stderr.write(`[fold] simulation first: ${n} events, ${t.toFixed(0)} ms CPU\n`);
}

const dec: number[] = [];
const shr: number[] = [];
const fol: number[] = [];
const bare: number[] = [];
let findings = -1;
for (let i = 0; i < REPS; i++) {
  if (!ONLY || ONLY === 'decode') dec.push(cpu(decodeAll)[1]);
  if (!ONLY || ONLY === 'fold') {
    const [r, t] = cpu(() => fold(chunks, JUDGE));
    if (r.events !== events) throw new Error(`fold ${r.events} events, trace ${events}`);
    findings = r.findings.length;
    fol.push(t);
  }
  if (ONLY === 'nojudge' || args.includes('--nojudge')) bare.push(cpu(() => fold(chunks, null))[1]);
  if (ONLY === 'shared' || args.includes('--shared')) shr.push(cpu(decodeShared)[1]);
}
const rate = (ms: number) => `${(events / ms / 1000).toFixed(3)} M ev/s`;
const out: string[] = [`${events} events`];
if (dec.length) out.push(`decode ${rate(median(dec))} (${median(dec).toFixed(0)} ms)`);
if (fol.length) out.push(`fold+checks ${rate(median(fol))} (${median(fol).toFixed(0)} ms, ${findings} findings)`);
if (bare.length) out.push(`fold no checks ${rate(median(bare))} (${median(bare).toFixed(0)} ms)`);
if (shr.length) out.push(`decode as fold does ${rate(median(shr))} (${median(shr).toFixed(0)} ms)`);
if (dec.length && fol.length) out.push(`fold/decode ${(median(dec) / median(fol)).toFixed(3)}x`);
process.stdout.write(out.join(' | ') + '\n');
