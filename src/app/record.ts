// record: run a workload under a DMA path and store every event, checkpoint and finding.
import { closeWritable, openDb, storeError } from '../store/db.js';
import { Recorder } from '../store/recorder.js';
import { type SimConfig, validateConfig } from '../sim/config.js';
import { Sim } from '../sim/sim.js';
import { traceName } from './sim-args.js';
import { OpHasher, TABLE_LAYOUT } from '../analysis/op-table.js';
import { saveOpTableQuietly } from '../store/projections.js';
import { MAX_FINDINGS_LISTED } from './findings.js';

export const DEFAULT_CHECKPOINT_EVERY = 16384;

export interface RecordOptions {
  db: string;
  config: SimConfig;
  seed: string;
  name?: string;
  checkpointEvery?: number;
  /** called at each guest operation with the operations issued and planned (the caller draws; no clock here) */
  progress?: (ops: number, total: number) => void;
}

export interface FindingSummary {
  class: string;
  seq: number;
  message: string;
  chain: number[];
}

export interface RecordResult {
  trace: number;
  events: number;
  /** the first {@link MAX_FINDINGS_LISTED} findings (all of them are stored: `log TRACE --kind finding`) */
  findings: FindingSummary[];
  findingCount: number;
  hash: string;
}

export function record(opts: RecordOptions): RecordResult {
  const config = validateConfig(opts.config);
  const every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  const db = openDb(opts.db, { create: true });
  let rec: Recorder | null = null;
  try {
    rec = new Recorder(
      db,
      { name: opts.name ?? traceName(config, opts.seed), source: 'sim', seed: opts.seed, config, checkpointEvery: every },
      // a checkpoint sends only the pages written since the last one: the Sim's pipeline copies a
      // page before its first write after a checkpoint (the sink below is not checkpointReadsOnly)
      { pageIdentity: true },
    );
    const r = rec;
    const findings: FindingSummary[] = [];
    let findingCount = 0;
    const ops = new OpHasher(); // bisect's per-operation table, built as the events pass (analysis/op-table.ts)
    const sink = {
      event: (ev: Parameters<Recorder['event']>[0]) => {
        const kind = ev.kind; // read once: the events have some thirty shapes
        r.event(ev, kind);
        ops.observe(ev, kind);
        if (kind === 'intent' && ev.kind === 'intent') opts.progress?.(ev.op + 1, config.ops);
        else if (kind === 'finding' && ev.kind === 'finding' && findingCount++ < MAX_FINDINGS_LISTED)
          findings.push({ class: ev.cls, seq: ev.seq, message: ev.message, chain: ev.chain });
      },
      checkpoint: r.checkpoint.bind(r),
    };
    const sim = new Sim(config, opts.seed, sink, every);
    ops.follow(sim.world);
    sim.run();
    const done = r.finish();
    rec = null; // stored: nothing after this point may fail the command
    saveOpTableQuietly(db, { id: r.traceId, events: done.events, hash: done.hash }, ops.table(), TABLE_LAYOUT);
    return { trace: r.traceId, events: done.events, findings, findingCount, hash: done.hash };
  } catch (e) {
    rec?.abort();
    throw storeError(opts.db, e);
  } finally {
    closeWritable(db);
  }
}
