// replay: re-execute a simulated trace and verify it event by event, or fold an imported one.
import { eventToJson } from '../events/json.js';
import { InputError } from '../errors.js';
import { JUDGE } from '../check/index.js';
import { fold } from '../engine/replay.js';
import { reexecute } from '../sim/replay.js';
import { checkpointHashes, readChunks, verifyCheckpoints, verifyStream } from '../store/db.js';
import { countFindings, firstFindings } from '../store/findings.js';
import { traceConfig, withTrace } from './load.js';
import { counted, type ProgressFn } from './progress.js';

export interface ReplayReport {
  trace: number;
  mode: 're-execute' | 'fold';
  ok: boolean;
  events: number;
  recorded: number;
  incomplete: boolean;
  checkpoints: number;
  findings: { class: string; seq: number; message: string }[];
  /** all the findings, however many `findings` lists */
  findingCount: number;
  mismatch?: { seq: number; reason: string; expected: unknown; actual: unknown };
}

export interface ReplayOptions {
  /**
   * re-execute: list only the first N findings of the store (default all; the CLI streams them with
   * eachFinding instead of holding hundreds of thousands); a fold judges them itself and lists them all
   */
  findings?: number;
}

export function replayTrace(dbPath: string, id: string, progress?: ProgressFn, opts: ReplayOptions = {}): ReplayReport {
  return withTrace(dbPath, id, ({ db, trace }) => {
    const base = { trace: trace.id, recorded: trace.events, incomplete: !trace.complete };
    if (trace.source !== 'sim' || trace.seed === null) {
      const r = fold(counted(readChunks(db, trace), trace.events, progress), JUDGE);
      verifyCheckpoints(db, trace);
      return {
        ...base,
        mode: 'fold',
        ok: true,
        events: r.events,
        checkpoints: 0,
        findings: r.findings.map((f) => ({ class: f.cls, seq: f.seq, message: f.message })),
        findingCount: r.findings.length,
      };
    }
    const out = reexecute(traceConfig(trace), trace.seed, counted(readChunks(db, trace), trace.events, progress), {
      checkpointEvery: trace.checkpoint_every,
      checkpointHashes: checkpointHashes(db, trace),
      complete: !!trace.complete,
    });
    if (!out.ok && out.expected === null && out.actual !== null && out.reason.includes('corrupt'))
      throw new InputError(`trace ${trace.id} is corrupt at event ${out.seq}`);
    // before saying ok: the checkpoints `state` starts from, each blob against its stored state hash
    // (the re-execution compared the hashes; the blobs themselves are only read here)
    // and the stored rows: the run may stop reading before the end (traces.events raised above what
    // is stored, or a changed stream, must not pass as ok)
    if (out.ok) {
      if (out.prefixOnly) verifyStream(db, trace); // the run stopped reading before the end
      verifyCheckpoints(db, trace);
    }
    return {
      ...base,
      mode: 're-execute',
      ok: out.ok,
      events: out.ok ? out.events : out.seq - 1,
      checkpoints: out.checkpoints,
      findings: firstFindings(db, trace, opts.findings ?? -1).map((f) => ({ class: f.class, seq: f.seq, message: f.message })),
      findingCount: countFindings(db, trace),
      ...(out.ok
        ? {}
        : {
            mismatch: {
              seq: out.seq,
              reason: out.reason,
              expected: out.expected && eventToJson(out.expected),
              actual: out.actual && eventToJson(out.actual),
            },
          }),
    };
  });
}
