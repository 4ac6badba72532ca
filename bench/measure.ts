// Measuring helpers for the benchmarks: in-process timing (wall and CPU of every thread), commands run
// as child processes with their own CPU time and peak RSS (bench/usage-hook.ts), percentiles.
// Nothing here asserts a time: figures are printed, targets are compared in the report only.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
export const now = () => performance.now();
export const gc = () => (globalThis as { gc?: () => void }).gc?.();

export interface Timing {
  wallMs: number;
  /** user + sys of every thread of the process (V8's GC and compiler threads and workers count) */
  cpuMs: number;
}

/** Times fn in wall clock and in process CPU time. */
export function timed<T>(fn: () => T): [T, Timing] {
  gc();
  const c0 = process.cpuUsage();
  const t0 = now();
  const out = fn();
  const wallMs = now() - t0;
  const c = process.cpuUsage(c0);
  return [out, { wallMs, cpuMs: (c.user + c.system) / 1000 }];
}

export async function timedAsync<T>(fn: () => Promise<T>): Promise<[T, Timing]> {
  gc();
  const c0 = process.cpuUsage();
  const t0 = now();
  const out = await fn();
  const wallMs = now() - t0;
  const c = process.cpuUsage(c0);
  return [out, { wallMs, cpuMs: (c.user + c.system) / 1000 }];
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url)); // dist/bench/ -> repo root
const BIN = join(ROOT, 'bin', 'dmareplay.js');
const HOOK = fileURLToPath(new URL('./usage-hook.js', import.meta.url));

export interface ChildRun extends Timing {
  code: number | null;
  maxRssMb: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** --head: milliseconds from closing the pipe after the first line to the process's exit */
  exitAfterCloseMs?: number;
}

export interface ChildOptions {
  /** keep stdout (else it goes to /dev/null) */
  capture?: boolean;
  /** kill the command after this long; its peak RSS is then read from /proc before the kill */
  timeoutMs?: number;
  /** read one line of stdout, then close the pipe (as `| head -1` does) */
  head?: boolean;
  /** write stdout to this file */
  stdoutFile?: string;
}

/** Runs `dmareplay args…` in a child process: wall time measured here, CPU time and peak RSS by the child. */
export function runCli(args: string[], opts: ChildOptions = {}): Promise<ChildRun> {
  const usageFile = join(process.env.DMAREPLAY_BENCH_DIR ?? '/tmp', `usage-${process.pid}-${Math.floor(now() * 1000)}.json`);
  rmSync(usageFile, { force: true });
  const devNull = opts.capture || opts.head ? null : openSync(opts.stdoutFile ?? '/dev/null', 'w');
  const t0 = now();
  const child = spawn(process.execPath, ['--import', HOOK, BIN, ...args], {
    env: { ...process.env, DMAREPLAY_BENCH_USAGE: usageFile, CI: 'true' },
    stdio: ['ignore', devNull ?? 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let closedAt: number | null = null;
  let hwmMb = 0;
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (child.stdout) {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (opts.head) {
        if (closedAt === null && d.includes('\n')) {
          stdout += d.slice(0, d.indexOf('\n') + 1);
          closedAt = now();
          child.stdout!.destroy();
        }
      } else stdout += d;
    });
  }
  let timedOut = false;
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        hwmMb = vmHwmMb(child.pid);
        child.kill('SIGKILL');
      }, opts.timeoutMs)
    : null;
  return new Promise((resolve) => {
    child.on('close', (code) => {
      const wallMs = now() - t0;
      if (timer) clearTimeout(timer);
      if (devNull !== null) closeSync(devNull);
      let cpuMs = NaN;
      let maxRssMb = hwmMb;
      if (existsSync(usageFile)) {
        const u = JSON.parse(readFileSync(usageFile, 'utf8')) as { cpuMs: number; maxRssMb: number };
        cpuMs = u.cpuMs;
        maxRssMb = u.maxRssMb;
        rmSync(usageFile, { force: true });
      }
      const r: ChildRun = { code, wallMs, cpuMs, maxRssMb, stdout, stderr, timedOut };
      if (closedAt !== null) r.exitAfterCloseMs = now() - closedAt;
      resolve(r);
    });
  });
}

/** Peak RSS of a running process (VmHWM), 0 if it is gone. */
function vmHwmMb(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export function rmDb(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) rmSync(p, { force: true });
}

export function fileBytes(path: string): number {
  let n = 0;
  for (const p of [path, `${path}-wal`]) if (existsSync(p)) n += statSync(p).size;
  return n;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The run with the median CPU time (its wall time beside it); for an even number of runs, the mean of
 * the two middle ones (both times), not the slower of them: with `--reps 2` that was always the
 * first run, which pays V8's tier-up, so every figure read as a cold run's.
 */
export function medianRun(ts: Timing[]): Timing {
  const s = [...ts].sort((a, b) => a.cpuMs - b.cpuMs);
  const m = s.length >> 1;
  if (s.length % 2) return s[m]!;
  return { cpuMs: (s[m - 1]!.cpuMs + s[m]!.cpuMs) / 2, wallMs: (s[m - 1]!.wallMs + s[m]!.wallMs) / 2 };
}

export const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
export const perSec = (n: number, ms: number) => n / (ms / 1000);
export const fmtRate = (x: number, unit = 'ev/s') => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M ${unit}` : `${(x / 1e3).toFixed(0)} k ${unit}`);
