// The analyses that take a recorded trace: perturbation (when did the race become inevitable),
// minimization (the smallest trace with the same failure) and provenance (who wrote these bytes).
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import { minimize, type MinimizeResult, type MinimizeSource } from '../analysis/minimize.js';
import { perturb, type PerturbResult, type PerturbSource } from '../analysis/perturb.js';
export { DEFAULT_POINTS } from '../analysis/perturb.js';
import { provenance, type ByteRun } from '../analysis/provenance.js';
import { InputError, UsageError } from '../errors.js';
import { decodeAt, sizeAt } from '../events/binary.js';
import { type DmaEvent, type EventOf, type Kind, KINDS } from '../events/schema.js';
import { checkpointAt, deleteTrace, readChunks, type TraceRow } from '../store/db.js';
import { firstFindings } from '../store/findings.js';
import { exportTraceSync } from './export.js';
import { record } from './record.js';
import { traceName } from './sim-args.js';
import { traceConfig, withTrace } from './load.js';
import type { SimConfig } from '../sim/config.js';

function simulatedTrace(trace: TraceRow): { config: SimConfig; seed: string } {
  if (trace.source !== 'sim' || trace.seed === null)
    throw new InputError(`trace ${trace.id} was imported: it has no seed to re-run (perturb and minimize need a simulated trace)`);
  return { config: traceConfig(trace), seed: trace.seed };
}

/** The stored events of seqs [from, to], one at a time; with `kinds`, only those (the others are not decoded: their kind byte says). */
function* storedEvents(db: Database.Database, trace: TraceRow, from: number, to: number, kinds?: ReadonlySet<Kind>): Generator<DmaEvent> {
  let codes: Uint8Array | null = null;
  if (kinds) {
    codes = new Uint8Array(256);
    for (const k of kinds) codes[KINDS[k].code] = 1;
  }
  for (const c of readChunks(db, trace, from, to)) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      const len = sizeAt(c.data, off);
      if (seq >= from && seq <= to && (!codes || codes[c.data[off + 4]!])) yield decodeAt(c.data, off, seq);
      off += len;
    }
  }
}

/** A stored simulated trace as perturb reads it: its first finding, its checkpoints (world and scheduler state), its events. */
function storedPerturbSource(db: Database.Database, trace: TraceRow): PerturbSource {
  return {
    firstFinding() {
      const f = firstFindings(db, trace, 1)[0];
      return f ? { seq: f.seq, cls: f.class } : null;
    },
    resumeBefore(seq) {
      const ck = checkpointAt(db, trace.id, seq, trace.events);
      return ck?.sim ? { seq: ck.seq, world: ck.world, state: ck.sim } : null;
    },
    scan(from, to, each, kinds) {
      for (const e of storedEvents(db, trace, from, to, kinds)) each(e);
    },
  };
}

export function perturbTrace(dbPath: string, id: string, opts: { variants?: number; every?: number; points?: number; progress?: (done: number, total: number) => void }): PerturbResult & { trace: number } {
  return withTrace(dbPath, id, ({ db, trace }) => {
    const t = simulatedTrace(trace);
    const r = perturb(t.config, t.seed, { ...opts, source: storedPerturbSource(db, trace) });
    if (!r.signature) throw new InputError(`trace ${trace.id} has no finding: nothing to perturb`);
    return { ...r, trace: trace.id };
  });
}

export interface MinimizeReport extends MinimizeResult {
  trace: number;
  minimized: number;
  file: string;
}

/** A stored simulated trace as minimize reads it: the class of its first finding, its intents (by kind byte), its length. */
function storedMinimizeSource(db: Database.Database, trace: TraceRow): MinimizeSource {
  return {
    signature: () => firstFindings(db, trace, 1)[0]?.class ?? null,
    // a stream: minimize keeps each as a script op, not as an event
    intents: () => storedEvents(db, trace, 1, trace.events, new Set<Kind>(['intent'])) as Iterable<EventOf<'intent'>>,
    events: () => trace.events,
  };
}

export function minimizeTrace(dbPath: string, id: string, out?: string, progress?: (tests: number, intents: number) => void): MinimizeReport {
  const { r, trace, seed } = withTrace(dbPath, id, ({ db, trace }) => {
    const t = simulatedTrace(trace);
    return { r: minimize(t.config, t.seed, progress, storedMinimizeSource(db, trace)), trace, seed: t.seed };
  });
  if (!r) throw new InputError(`trace ${trace.id} has no finding that its own intents reproduce: nothing to minimize`);
  const name = `minimized from ${trace.id}: ${traceName(r.config, seed)}`;
  const file = out ?? `minimized-${trace.id}.jsonl`;
  // the file is opened (a temporary name beside it) before the trace is stored, and renamed after the
  // stored trace was exported into it: an unwritable --out fails the command before anything reaches
  // the database, and a failure after the store removes the stored trace again
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  if (existsSync(file) && statSync(file).isDirectory()) throw new InputError(`cannot write ${file}: it is a directory`);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new InputError(`cannot write ${file}: ${(e as Error).message}`);
  }
  let stored: ReturnType<typeof record> | null = null;
  try {
    stored = record({ db: dbPath, config: r.config, seed, name });
    // the JSONL of the stored trace, streamed into the file (the minimized trace need not be small)
    exportTraceSync(dbPath, String(stored.trace), (chunk) => {
      const b = Buffer.from(chunk, 'utf8');
      for (let off = 0; off < b.length; ) off += writeSync(fd, b, off);
    });
    closeSync(fd);
    fd = -1;
    renameSync(tmp, file);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { force: true });
    if (stored) deleteTrace(dbPath, stored.trace);
    if ((e as NodeJS.ErrnoException).code && !(e as NodeJS.ErrnoException).code!.startsWith('SQLITE')) throw new InputError(`cannot write ${file}: ${(e as Error).message}`);
    throw e;
  }
  return { ...r, trace: trace.id, minimized: stored.trace, file };
}

export function whyBytes(dbPath: string, id: string, at: number, gpa: bigint, len: number): { trace: number; at: number; runs: ByteRun[] } {
  return withTrace(dbPath, id, ({ db, trace }) => {
    if (at > trace.events) throw new UsageError(`--at ${at} is past the end of trace ${trace.id} (${trace.events} events)`);
    const eventAt = (seq: number): DmaEvent | null => {
      for (const ev of storedEvents(db, trace, seq, seq)) return ev;
      return null;
    };
    return { trace: trace.id, at, runs: provenance(readChunks(db, trace, 1, at), at, gpa, len, eventAt) };
  });
}
