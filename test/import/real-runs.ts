// The captured QEMU runs in traces/real/runs (brotli-compressed logs), for tests that feed real lines.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

export const RUNS = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real/runs');

/** The captured QEMU logs' file names (qemu-*.log.br). */
export const runLogs = (): string[] => readdirSync(RUNS).filter((f) => f.startsWith('qemu-') && f.endsWith('.log.br'));

/** One captured log, decompressed. */
export const runLog = (f: string): Buffer => brotliDecompressSync(readFileSync(join(RUNS, f)));

/** The non-empty lines of every captured log, at most `perEvent` of each distinct event name. */
export function runLines(perEvent: number): string[] {
  const out: string[] = [];
  for (const f of runLogs()) {
    const seen = new Map<string, number>();
    for (const l of runLog(f).toString('utf8').split('\n')) {
      const ev = /:(\w+)/.exec(l)?.[1] ?? '';
      const n = seen.get(ev) ?? 0;
      if (n < perEvent && l) out.push(l);
      seen.set(ev, n + 1);
    }
  }
  return out;
}
