// Import throughput of a QEMU trace log (issue 12: `dmareplay import` at >= 1M lines/s end to end).
//
//   node dist/bench/import-log.js                          # 5M lines from the vtd-cm run, table on stdout
//   node dist/bench/import-log.js --lines 1000000 --run amd --reps 3
//   node dist/bench/import-log.js --json                   # one JSON object on stdout
//   node dist/bench/import-log.js --write-only big.log     # only write the log (for profiling)
//   node dist/bench/import-log.js --only import --checkpoint-every 100000000   # the import without checkpoints
//   npm run bench:import -- --lines 1000000                 # builds first
// bench/bench.ts can call importBench() (and writeImportLog() for a log of its own).
//
// The log is real: a captured QEMU 7.2 run (traces/real/runs/qemu-<run>.log.br, log backend with
// -msg timestamp=on) repeated end to end until it has --lines lines, each copy's timestamps moved
// past the previous copy's end (whole seconds, so the microsecond digits and thread ids stay as
// captured). Every copy is a whole run, boot to end marker, so the import judges the repeated log
// as it judges one run: the same events per copy and no finding (checked: the bench fails when the
// import reports a finding or a malformed line the single run does not have).
//
// Rows (same process, same file, one after the other; medians over --reps, wall and CPU time):
// - parse:  readQemuLogBatches over the file (line splitting + parsing, nothing else);
// - scan:   scanHost as the import runs it on a host log alone (pass 1: what the conversion needs up
//           front; unread args left to pass 2, the second half on a worker for a large log);
// - convert: scan, then pass 2: parse again and convert the records to events (no pipeline);
// - fold:   convert, and step the events through the engine's pipeline with every checker (what the
//           import does but validating, checkpointing and storing them);
// - import: importTrace into a fresh database (scan + convert + pipeline with every checker + store).
// CPU time is process.cpuUsage (user+sys of every thread), so other load on the machine does not
// count; the load average is printed beside it.
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import { importTrace, type ImportResult } from '../src/app/import.js';
import { JUDGE } from '../src/check/index.js';
import { Pipeline } from '../src/engine/pipeline.js';
import { hostEvents, singleStream } from '../src/import/merge.js';
import { readQemuLogBatches } from '../src/import/qemu-log.js';
import { scanHost } from '../src/import/to-events.js';

export const IMPORT_TARGET_LINES_PER_S = 1_000_000;

/** pass 1 as the import runs it on a host log alone: unread args left to pass 2, no clock samples */
const PASS1 = { deferArgs: true, xlate: false } as const;

/** The repository root (dist/bench/… → ../..; bench/… under ts-node → ..). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'traces', 'real', 'runs'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find traces/real/runs above ' + fileURLToPath(import.meta.url));
}

/** The lines of a captured run (`vtd-cm`, `amd`, `vhost`), without the final newline. */
export function runLines(run: string): string[] {
  const file = join(repoRoot(), 'traces', 'real', 'runs', `qemu-${run}.log.br`);
  const text = brotliDecompressSync(readFileSync(file)).toString('utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function secOf(line: string): number {
  const at = line.indexOf('@');
  return Number(line.slice(at + 1, line.indexOf('.', at)));
}

/**
 * Writes a QEMU log of at least `minLines` lines: `run` repeated, copy k's seconds shifted by
 * k × (the run's span + 2 s), so time never goes back. Returns the number of lines written.
 */
export async function writeImportLog(path: string, minLines: number, run = 'vtd-cm'): Promise<{ lines: number; copies: number; bytes: number }> {
  const lines = runLines(run);
  const first = secOf(lines[0]!);
  const span = secOf(lines[lines.length - 1]!) - first + 2;
  const copies = Math.max(1, Math.ceil(minLines / lines.length));
  // split each line once around its seconds: prefix `TID@`, suffix `.USEC:event args\n`
  const pre: string[] = [];
  const sec: number[] = [];
  const post: string[] = [];
  for (const l of lines) {
    const at = l.indexOf('@');
    const dot = l.indexOf('.', at);
    pre.push(l.slice(0, at + 1));
    sec.push(Number(l.slice(at + 1, dot)));
    post.push(l.slice(dot) + '\n');
  }
  const out = createWriteStream(path);
  const write = (s: string): Promise<void> | null => (out.write(s) ? null : new Promise((r) => out.once('drain', () => r())));
  for (let k = 0; k < copies; k++) {
    const shift = k * span;
    let buf = '';
    for (let i = 0; i < lines.length; i++) {
      buf += pre[i]! + (sec[i]! + shift) + post[i]!;
      if (buf.length > 1 << 20) {
        await write(buf);
        buf = '';
      }
    }
    if (buf) await write(buf);
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  return { lines: copies * lines.length, copies, bytes: statSync(path).size };
}

// ---------------------------------------------------------------------------------------------

interface Args {
  lines: number;
  run: string;
  reps: number;
  json: boolean;
  writeOnly: string | null;
  only: Set<string>;
  checkpointEvery: number | undefined;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { lines: 5_000_000, run: 'vtd-cm', reps: 1, json: false, writeOnly: null, only: new Set(['parse', 'scan', 'convert', 'fold', 'import']), checkpointEvery: undefined };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--lines') a.lines = Number(v());
    else if (k === '--run') {
      a.run = v();
      // the vhost run does not repeat cleanly: vhost's device IOTLB still holds the previous copy's
      // entries when the next copy's guest reuses their IOVAs, which the checks rightly report
      if (!['vtd-cm', 'amd'].includes(a.run)) throw new Error('--run must be vtd-cm or amd');
    }
    else if (k === '--reps') a.reps = Number(v());
    else if (k === '--json') a.json = true;
    else if (k === '--write-only') a.writeOnly = v();
    else if (k === '--only') a.only = new Set(v().split(','));
    else if (k === '--checkpoint-every') a.checkpointEvery = Number(v());
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

interface Timing {
  wallS: number;
  cpuS: number;
}

async function timed<T>(f: () => Promise<T>): Promise<[T, Timing]> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = await f();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return [r, { wallS, cpuS: (c.user + c.system) / 1e6 }];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

export interface ImportBenchRow {
  what: string;
  linesPerSWall: number;
  linesPerSCpu: number;
  wallS: number;
  cpuS: number;
}

export interface ImportBenchOptions {
  /** at least this many lines (whole copies of the run) */
  lines: number;
  /** the captured run to repeat: vtd-cm, amd or vhost */
  run: string;
  reps: number;
  /** which rows: parse, scan, convert, fold, import */
  only: Set<string>;
  /** the import's checkpoint interval (default: the store's) */
  checkpointEvery?: number;
  /** progress and per-row lines */
  log?: (msg: string) => void;
}

export interface ImportBenchResult {
  lines: number;
  run: string;
  copies: number;
  bytes: number;
  load: number;
  target: number;
  rows: ImportBenchRow[];
  events: number | null;
}

/** Writes the log into a temporary directory, measures the rows, removes it again. */
export async function importBench(opts: ImportBenchOptions): Promise<ImportBenchResult> {
  const log0 = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'dmareplay-import-bench-'));
  try {
    const log = join(dir, `qemu-${opts.run}-x.log`);
    const w = await writeImportLog(log, opts.lines, opts.run);
    const lines = w.lines;
    log0(`log: ${lines.toLocaleString('en-US')} lines (${w.copies} copies of ${opts.run}), ${(w.bytes / 1e6).toFixed(0)} MB`);
    // the single run, for the expected counts
    const one = join(dir, `qemu-${opts.run}-1.log`);
    await writeImportLog(one, 1, opts.run);
    const ref = await importTrace({ db: join(dir, 'ref.db'), file: one });
    const rows: ImportBenchRow[] = [];
    const row = (what: string, t: Timing[]): void => {
      const wallS = median(t.map((x) => x.wallS));
      const cpuS = median(t.map((x) => x.cpuS));
      rows.push({ what, wallS, cpuS, linesPerSWall: lines / wallS, linesPerSCpu: lines / cpuS });
      log0(`${what}: ${(lines / wallS / 1e3).toFixed(0)} k lines/s wall, ${(lines / cpuS / 1e3).toFixed(0)} k lines/s CPU (load ${loadavg()[0]!.toFixed(1)})`);
    };
    if (opts.only.has('parse')) {
      const t: Timing[] = [];
      for (let r = 0; r < opts.reps; r++) {
        const [n, tm] = await timed(async () => {
          let n = 0;
          for await (const b of readQemuLogBatches(log)) n += b.length;
          return n;
        });
        if (n < lines) throw new Error(`parse: ${n} items for ${lines} lines`);
        t.push(tm);
      }
      row('parse', t);
    }
    if (opts.only.has('scan')) {
      const t: Timing[] = [];
      for (let r = 0; r < opts.reps; r++) {
        const [s, tm] = await timed(() => scanHost(log, PASS1));
        if (s.lines !== lines || s.malformed !== 0) throw new Error(`scan: ${s.lines} lines, ${s.malformed} malformed`);
        t.push(tm);
      }
      row('scan', t);
    }
    for (const what of ['convert', 'fold'] as const) {
      if (!opts.only.has(what)) continue;
      const t: Timing[] = [];
      for (let r = 0; r < opts.reps; r++) {
        const [n, tm] = await timed(async () => {
          const scan = await scanHost(log, PASS1);
          const pipe = what === 'fold' ? new Pipeline({ judge: JUDGE, mode: 'emit' }) : null;
          let n = 0;
          for await (const batch of singleStream('host', hostEvents(scan, []), [])) {
            n += batch.length;
            if (pipe) for (const ev of batch) pipe.emit(ev);
          }
          pipe?.end();
          return n;
        });
        if (n < lines / 2) throw new Error(`${what}: only ${n} events`);
        t.push(tm);
      }
      row(what, t);
    }
    let result: ImportResult | null = null;
    if (opts.only.has('import')) {
      const t: Timing[] = [];
      for (let r = 0; r < opts.reps; r++) {
        const db = join(dir, `import-${r}.db`);
        const [res, tm] = await timed(() => importTrace({ db, file: log, checkpointEvery: opts.checkpointEvery }));
        rmSync(db, { force: true });
        rmSync(db + '-wal', { force: true });
        rmSync(db + '-shm', { force: true });
        t.push(tm);
        result = res;
      }
      row('import', t);
      const r = result!;
      // k copies: the devices once, every event of the run k times, the end-of-logs marker once
      const k = w.copies;
      const want = (kind: string, n: number): number => (kind === 'dev.add' ? n : kind === 'marker' ? (n - 1) * k + 1 : n * k);
      const kinds = new Set([...Object.keys(ref.byKind), ...Object.keys(r.byKind)]);
      const off = [...kinds].filter((kind) => (r.byKind[kind] ?? 0) !== want(kind, ref.byKind[kind] ?? 0));
      if (off.length || r.findingCount !== ref.findingCount * k || r.malformed !== ref.malformed * k)
        throw new Error(`the import of ${k} copies of the run is not ${k}× the run's: ${off.map((kind) => `${kind} ${r.byKind[kind] ?? 0} (want ${want(kind, ref.byKind[kind] ?? 0)})`).join(', ')}; ${r.findingCount} findings, ${r.malformed} malformed`);
    }
    return { lines, run: opts.run, copies: w.copies, bytes: w.bytes, load: loadavg()[0]!, target: IMPORT_TARGET_LINES_PER_S, rows, events: result?.events ?? null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.writeOnly) {
    const w = await writeImportLog(args.writeOnly, args.lines, args.run);
    console.error(`${args.writeOnly}: ${w.lines} lines (${w.copies} copies of ${args.run}), ${(w.bytes / 1e6).toFixed(0)} MB`);
    return;
  }
  const out = await importBench({ lines: args.lines, run: args.run, reps: args.reps, only: args.only, checkpointEvery: args.checkpointEvery, log: (m) => console.error(m) });
  if (args.json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    console.log(`import of a QEMU log: ${out.lines.toLocaleString('en-US')} lines (${out.run} × ${out.copies}), target ≥ ${IMPORT_TARGET_LINES_PER_S / 1e6}M lines/s end to end`);
    for (const r of out.rows)
      console.log(`  ${r.what.padEnd(7)} ${(r.linesPerSWall / 1e3).toFixed(0).padStart(6)} k lines/s wall  ${(r.linesPerSCpu / 1e3).toFixed(0).padStart(6)} k lines/s CPU  (${r.wallS.toFixed(2)} s wall, ${r.cpuS.toFixed(2)} s CPU)`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
