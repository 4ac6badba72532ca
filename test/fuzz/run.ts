// The long fuzz run: `npm run fuzz -- --seed 7 --count 10000 [--from I] [--timeout-ms 30000] [--json]`.
// Mutant i takes format i mod 3 (JSONL, QEMU log, ftrace), a source of that format and a mutation seed
// drawn from (--seed, i), so any failure is reproduced by its (seed, index). The imports run in a
// worker thread; this thread watches it, and an input that takes longer than --timeout-ms is a hang:
// reported, the worker restarted after it. Exit 1 if anything was an internal error, a hang, a silent
// accept, a refusal of a good input or a change to the stored trace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { BAD, Harness, type Verdict } from './harness.js';
import { type Format, loadCorpus, mutate, partnerOf, rng } from './mutate.js';

const FORMATS: Format[] = ['jsonl', 'qemu-log', 'ftrace'];
const ROOT = resolve(import.meta.dirname, '..', '..', '..');

interface Job {
  seed: number;
  from: number;
  count: number;
  progress: SharedArrayBuffer;
}

/** mutant index → (source, mutation seed, options), the same in every run with this seed */
function plan(seed: number, i: number, corpus: ReturnType<typeof loadCorpus>) {
  const r = rng((seed * 0x9e3779b1 + i * 0x85ebca6b) >>> 0);
  const format = FORMATS[i % 3]!;
  const of = corpus.filter((s) => s.format === format);
  const src = of[Math.floor(r() * of.length)]!;
  const mseed = Math.floor(r() * 0x7fffffff);
  const strict = r() < 0.15;
  const auto = r() < 0.2;
  // a quarter of the log mutants go in as one side of a --guest/--host pair, through the merge
  return { src, mseed, strict, auto, partner: r() < 0.25 ? partnerOf(src, corpus) : undefined };
}

async function work(job: Job): Promise<void> {
  const corpus = loadCorpus(ROOT);
  const dir = mkdtempSync(join(tmpdir(), 'dmareplay-fuzz-'));
  const h = new Harness(dir);
  await h.setup(corpus);
  const at = new Int32Array(job.progress);
  for (let i = job.from; i < job.count; i++) {
    Atomics.store(at, 0, i);
    const p = plan(job.seed, i, corpus);
    const m = mutate(p.src, p.mseed);
    const o = await h.run(m, { strict: p.strict, auto: p.auto, partner: p.partner });
    parentPort!.postMessage({ i, format: m.format, source: m.source, mseed: p.mseed, op: m.op, verdict: o.verdict, detail: o.detail.slice(0, 400) });
  }
  rmSync(dir, { recursive: true, force: true });
  parentPort!.postMessage({ done: true });
}

function args(): { seed: number; from: number; count: number; timeoutMs: number; json: boolean } {
  const a = process.argv.slice(2);
  const val = (k: string, d: number) => {
    const i = a.indexOf(k);
    if (i < 0) return d;
    const n = Number(a[i + 1]);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${k} needs a non-negative integer`);
    return n;
  };
  return { seed: val('--seed', 1), from: val('--from', 0), count: val('--count', 1000), timeoutMs: val('--timeout-ms', 30_000), json: a.includes('--json') };
}

async function main(): Promise<void> {
  const o = args();
  const tally: Record<string, Record<string, number>> = {};
  const bad: unknown[] = [];
  const hangs: unknown[] = [];
  const t0 = Date.now();
  let from = o.from; // --from i --count i+1 reproduces input i of a run
  let seen = 0;
  while (from < o.count) {
    const progress = new SharedArrayBuffer(4);
    const at = new Int32Array(progress);
    Atomics.store(at, 0, from);
    const w = new Worker(new URL(import.meta.url), { workerData: { seed: o.seed, from, count: o.count, progress } satisfies Job });
    let last = Date.now();
    let lastIndex = from;
    let finished = false;
    let failed: Error | null = null;
    w.on('message', (msg: { done?: boolean; i: number; format: string; verdict: Verdict }) => {
      if (msg.done) return;
      seen++;
      (tally[msg.format] ??= {})[msg.verdict] = (tally[msg.format]![msg.verdict] ?? 0) + 1;
      if ((BAD as Verdict[]).includes(msg.verdict)) {
        bad.push(msg);
        if (!o.json) process.stderr.write(`BAD ${JSON.stringify(msg)}\n`);
      }
      if (!o.json && seen % 500 === 0) process.stderr.write(`${seen}/${o.count} inputs, ${bad.length} bad, ${hangs.length} hangs, ${Math.round((Date.now() - t0) / 1000)} s\n`);
    });
    w.on('error', (e) => (failed = e));
    const exited = new Promise<void>((res) => w.on('exit', () => ((finished = true), res())));
    while (!finished) {
      await new Promise((r) => setTimeout(r, 200));
      const i = Atomics.load(at, 0);
      if (i !== lastIndex) {
        lastIndex = i;
        last = Date.now();
      } else if (Date.now() - last > o.timeoutMs) {
        const corpus = loadCorpus(ROOT);
        const p = plan(o.seed, i, corpus);
        const m = mutate(p.src, p.mseed);
        const file = join(tmpdir(), `dmareplay-fuzz-hang-${o.seed}-${i}`);
        writeFileSync(file, m.text);
        hangs.push({ i, source: m.source, mseed: p.mseed, op: m.op, file });
        seen++;
        await w.terminate();
        break;
      }
    }
    await exited;
    if (failed) throw failed;
    from = Math.max(from, lastIndex) + 1;
    if (hangs.length === 0 || (hangs.at(-1) as { i: number }).i !== lastIndex) from = o.count; // the worker ran to the end
  }
  const summary = { seed: o.seed, count: o.count, inputs: seen, seconds: Math.round((Date.now() - t0) / 1000), byFormat: tally, internal: bad.filter((b) => (b as { verdict: string }).verdict === 'internal').length, hangs: hangs.length, silentAccepts: bad.filter((b) => (b as { verdict: string }).verdict === 'silent-accept').length, refusedGood: bad.filter((b) => (b as { verdict: string }).verdict === 'refused-good').length, changed: bad.filter((b) => (b as { verdict: string }).verdict === 'changed').length, bad: bad.slice(0, 50), hangList: hangs };
  process.stdout.write(JSON.stringify(summary, null, o.json ? 0 : 2) + '\n');
  process.exit(bad.length || hangs.length ? 1 : 0);
}

if (isMainThread) await main();
else await work(workerData as Job);
