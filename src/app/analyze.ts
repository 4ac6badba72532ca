// The analyses that take a recorded trace: perturbation (when did the race become inevitable),
// minimization (the smallest trace with the same failure) and provenance (who wrote these bytes).
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { minimize, type MinimizeResult } from '../analysis/minimize.js';
import { perturb, type PerturbResult } from '../analysis/perturb.js';
import { provenance, type ByteRun } from '../analysis/provenance.js';
import { InputError, UsageError } from '../errors.js';
import { toJsonl } from '../events/jsonl.js';
import { readChunks } from '../store/db.js';
import { ENGINE_VERSION } from '../store/recorder.js';
import { record } from './record.js';
import { traceName } from './sim-args.js';
import { traceConfig, withTrace } from './load.js';
import type { SimConfig } from '../sim/config.js';

function simulated(dbPath: string, id: string): { config: SimConfig; seed: string; name: string; trace: number } {
  return withTrace(dbPath, id, ({ trace }) => {
    if (trace.source !== 'sim' || trace.seed === null)
      throw new InputError(`trace ${trace.id} was imported: it has no seed to re-run (perturb and minimize need a simulated trace)`);
    return { config: traceConfig(trace), seed: trace.seed, name: trace.name, trace: trace.id };
  });
}

export function perturbTrace(dbPath: string, id: string, opts: { variants?: number; every?: number; progress?: (done: number, total: number) => void }): PerturbResult & { trace: number } {
  const t = simulated(dbPath, id);
  const r = perturb(t.config, t.seed, opts);
  if (!r.signature) throw new InputError(`trace ${t.trace} has no finding: nothing to perturb`);
  return { ...r, trace: t.trace };
}

export interface MinimizeReport extends Omit<MinimizeResult, 'events'> {
  trace: number;
  minimized: number;
  file: string;
}

export function minimizeTrace(dbPath: string, id: string, out?: string, progress?: (tests: number) => void): MinimizeReport {
  const t = simulated(dbPath, id);
  const r = minimize(t.config, t.seed, progress);
  if (!r) throw new InputError(`trace ${t.trace} has no finding that its own intents reproduce: nothing to minimize`);
  const name = `minimized from ${t.trace}: ${traceName(r.config, t.seed)}`;
  const file = out ?? `minimized-${t.trace}.jsonl`;
  // the file is written (to a temporary name beside it) before the trace is stored, and renamed
  // after: an unwritable --out fails the command before anything reaches the database
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  if (existsSync(file) && statSync(file).isDirectory()) throw new InputError(`cannot write ${file}: it is a directory`);
  try {
    writeFileSync(tmp, toJsonl({ engine: ENGINE_VERSION, name, source: 'sim', seed: t.seed, config: r.config, complete: true }, r.events));
  } catch (e) {
    throw new InputError(`cannot write ${file}: ${(e as Error).message}`);
  }
  let stored: ReturnType<typeof record>;
  try {
    stored = record({ db: dbPath, config: r.config, seed: t.seed, name });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code && !(e as NodeJS.ErrnoException).code!.startsWith('SQLITE')) throw new InputError(`cannot write ${file}: ${(e as Error).message}`);
    throw e;
  }
  const { events: _e, ...rest } = r;
  return { ...rest, trace: t.trace, minimized: stored.trace, file };
}

export function whyBytes(dbPath: string, id: string, at: number, gpa: bigint, len: number): { trace: number; at: number; runs: ByteRun[] } {
  return withTrace(dbPath, id, ({ db, trace }) => {
    if (at > trace.events) throw new UsageError(`--at ${at} is past the end of trace ${trace.id} (${trace.events} events)`);
    return { trace: trace.id, at, runs: provenance(readChunks(db, trace, 1, at), at, gpa, len) };
  });
}
