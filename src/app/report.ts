// report: what one HTML page needs to show a trace's race — the findings, each causal chain as
// events on the actors' lanes, the state (IOMMU map, device IOTLB, owed invalidations, rings) at
// the chosen event, and the command lines that reproduce it all. Rendering is report-html.ts.
import { formatEvent } from '../events/format.js';
import type { DmaEvent } from '../events/schema.js';
import { UsageError } from '../errors.js';
import { countFindings, firstFindings } from '../store/findings.js';
import { TRACKS, trackOf } from './perfetto.js';
import { explainFinding } from './explain.js';
import { traceConfig, withTrace } from './load.js';
import { recordCommandLine, shellQuote as shq } from './sim-args.js';
import { stateAt } from './state.js';

export interface ChainStep {
  seq: number;
  kind: string;
  actor: string;
  /** the lane (track) it is drawn on, as in the Perfetto export */
  lane: string;
  text: string;
  /** the late invalidation, delivered after the access (not in the chain itself) */
  after?: boolean;
}

export interface ReportFinding {
  seq: number;
  class: string;
  message: string;
  steps: ChainStep[];
}

export interface ReportData {
  trace: { id: number; name: string; source: string; seed: string | null; events: number; complete: boolean };
  at: number;
  findings: ReportFinding[];
  /** findings not shown (the page lists the first MAX_FINDINGS) */
  more: number;
  state: ReturnType<typeof stateAt>['plain'];
  atEvent: string | null;
  /** for the focus IOVA (the first finding's device access): what the IOMMU and the device IOTLB say */
  iova: unknown;
  commands: { what: string; cmd: string }[];
}

export const MAX_FINDINGS = 20;
const LANE = Object.fromEntries(TRACKS.map((t) => [t.tid, t.name])) as Record<number, string>;

function step(ev: DmaEvent, after = false): ChainStep {
  const tid = trackOf(ev);
  return { seq: ev.seq, kind: ev.kind, actor: ev.actor, lane: tid === null ? ev.actor : LANE[tid]!, text: formatEvent(ev), ...(after ? { after } : {}) };
}

export function buildReport(dbPath: string, id: string, opts: { at?: number; dbArg?: string; out?: string } = {}): ReportData {
  // the first MAX_FINDINGS and the count: a trace can hold hundreds of thousands
  const { trace, findings, count } = withTrace(dbPath, id, ({ db, trace }) => ({ trace, findings: firstFindings(db, trace, MAX_FINDINGS), count: countFindings(db, trace) }));
  const at = opts.at ?? findings[0]?.seq ?? trace.events;
  if (at > trace.events) throw new UsageError(`--at ${at} is past the end of trace ${trace.id} (${trace.events} events)`);
  const shown = findings.slice(0, MAX_FINDINGS).map((f) => {
    const why = explainFinding(dbPath, String(trace.id), f.chain);
    const steps = why.chain.map((e) => step(e));
    if (why.lateInvalidation) steps.push(step(why.lateInvalidation, true));
    return { seq: f.seq, class: f.class, message: f.message, steps };
  });
  const access = shown[0]?.steps.find((s) => s.kind === 'dev.access');
  const dma = access ? /dma=(0x[0-9a-f]+)/.exec(access.text)?.[1] : undefined;
  const s = stateAt(dbPath, String(trace.id), { at, iova: dma ? BigInt(dma) : undefined, len: 16 });
  const db = opts.dbArg ? ` --db ${shq(opts.dbArg)}` : '';
  const t = trace.id;
  const commands: { what: string; cmd: string }[] = [];
  if (trace.source === 'sim' && trace.seed !== null) {
    const rec = recordCommandLine(traceConfig(trace), trace.seed);
    if (rec) commands.push({ what: 'record the same trace (same seed and config: the same events and hash)', cmd: rec + db });
    commands.push({ what: 're-execute it from the seed and verify every event', cmd: `npx dmareplay replay ${t}${db}` });
  } else {
    // an imported log: the import it came from (the files as they were named then)
    const imp = (traceConfig(trace) as unknown as { import?: { format?: string; guest?: string; host?: string } }).import;
    const files = imp ? [imp.guest && imp.host ? `--guest ${shq(imp.guest)} --host ${shq(imp.host)}` : imp.guest ? `--format ftrace ${shq(imp.guest)}` : imp.host ? `--format qemu-log ${shq(imp.host)}` : null] : [null];
    if (files[0]) commands.push({ what: 'import the same logs again', cmd: `npx dmareplay import ${files[0]}${db}` });
    commands.push({ what: 'fold it again through every checker', cmd: `npx dmareplay replay ${t}${db}` });
  }
  commands.push({ what: 'move it to another machine (canonical JSONL), and load it there', cmd: `npx dmareplay export ${t}${db} > trace-${t}.jsonl && npx dmareplay import trace-${t}.jsonl` });
  const first = shown[0];
  if (first) {
    const lo = Math.min(...first.steps.map((x) => x.seq));
    const hi = Math.max(first.seq, ...first.steps.map((x) => x.seq));
    commands.push({ what: `the events around the first finding`, cmd: `npx dmareplay log ${t} --from ${lo} --to ${hi}${db}` });
  }
  commands.push({ what: `the state shown below`, cmd: `npx dmareplay state ${t} --at ${at}${dma ? ` --iova ${dma}` : ''}${db}` });
  commands.push({ what: 'the whole trace as a Perfetto timeline (ui.perfetto.dev)', cmd: `npx dmareplay export ${t} --format perfetto${db} > race.json` });
  commands.push({ what: 'this page', cmd: `npx dmareplay report ${t}${opts.at !== undefined ? ` --at ${at}` : ''}${db} -o ${shq(opts.out ?? 'race.html')}` });
  return {
    trace: { id: trace.id, name: trace.name, source: trace.source, seed: trace.seed, events: trace.events, complete: !!trace.complete },
    at,
    findings: shown,
    more: Math.max(0, count - MAX_FINDINGS),
    state: s.plain,
    atEvent: s.event ? `#${s.event.seq} ${s.event.actor} ${s.event.kind}` : null,
    iova: s.memory.iova ?? null,
    commands,
  };
}
