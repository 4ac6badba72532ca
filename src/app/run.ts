// run: a scenario file (guest-side steps) through the device, VMM and IOMMU model, recorded as a
// full trace (replay, state, log and every checker work on it), and what the device did: the
// buffers each chain read and wrote, the used-ring entries, errors, interrupts.
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import type { DmaEvent } from '../events/schema.js';
import type { PathName } from '../model/types.js';
import type { Variants } from '../model/variants.js';
import { ConfigError, type SimConfig, validateConfig } from '../sim/config.js';
import { parseScenario, type ScenarioHeader } from '../sim/scenario.js';
import { Sim } from '../sim/sim.js';
import { closeWritable, openDb } from '../store/db.js';
import { Recorder } from '../store/recorder.js';
import { DEFAULT_CHECKPOINT_EVERY, type FindingSummary } from './record.js';

export interface RunOptions {
  db: string;
  /** the scenario's text and where it came from (for the trace name and errors) */
  text: string;
  file: string;
  path?: PathName;
  variants?: Partial<Variants>;
  seed?: string;
  name?: string;
}

export interface Buffer {
  dma: bigint;
  gpa: bigint;
  len: number;
  /** what the device wrote (writes only) */
  data?: Uint8Array;
}

export interface ChainReport {
  q: number;
  /** used-ring entry: id, len, slot, used.idx after it */
  id: number;
  len: number;
  slot: number;
  usedIdx: number;
  /** bytes of indirect tables the device read for it */
  tableBytes: number;
  read: Buffer[];
  written: Buffer[];
  seq: number;
}

export interface RunReport {
  trace: number;
  events: number;
  hash: string;
  scenario: ScenarioHeader;
  chains: ChainReport[];
  errors: { q: number; msg: string; seq: number }[];
  interrupts: { q: number; seq: number }[];
  kicks: { q: number; seq: number }[];
  misses: number;
  /** virtio-iommu requests and VHOST_SET_VRING_BASE, with what they answered */
  requests: { kind: string; status: string; seq: number }[];
  findings: FindingSummary[];
}

export function loadScenario(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read scenario ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The SimConfig of a scenario (validated): its steps, path, and variants (the header's, then the caller's). */
export function scenarioConfig(text: string, file: string, path: PathName = 'direct', variants: Partial<Variants> = {}): { config: SimConfig; header: ScenarioHeader } {
  try {
    const { header, steps } = parseScenario(text);
    const config: SimConfig = {
      workload: 'scenario',
      path,
      ops: steps.length,
      ringNum: 256,
      faults: [],
      variants: { ...(header.variants as Partial<Variants> | undefined), ...variants },
      scenario: steps,
    };
    return { config: validateConfig(config), header };
  } catch (e) {
    if (e instanceof ConfigError) throw new InputError(`${file}: ${e.message}`);
    throw e;
  }
}

/** Runs the scenario in memory: its events (a step that cannot run is an InputError, nothing is stored). */
export function simulateScenario(config: SimConfig, seed: string, file: string): DmaEvent[] {
  const events: DmaEvent[] = [];
  try {
    new Sim(config, seed, { event: (e) => events.push({ ...e }) }).run();
  } catch (e) {
    if (e instanceof ConfigError) throw new InputError(`${file}: ${e.message}`);
    throw e;
  }
  return events;
}

export function runScenario(opts: RunOptions): RunReport {
  const seed = opts.seed ?? '1';
  const { config, header } = scenarioConfig(opts.text, opts.file, opts.path, opts.variants);
  const events = simulateScenario(config, seed, opts.file); // checked before anything is stored
  const db = openDb(opts.db, { create: true });
  let trace: number;
  let done: { events: number; hash: string };
  try {
    const rec = new Recorder(db, {
      name: opts.name ?? `scenario ${header.scenario ?? opts.file}/${config.path}`,
      source: 'sim',
      seed,
      config,
      checkpointEvery: DEFAULT_CHECKPOINT_EVERY,
    });
    new Sim(config, seed, { event: (ev) => rec.event(ev), checkpoint: rec.checkpoint.bind(rec) }, DEFAULT_CHECKPOINT_EVERY).run();
    done = rec.finish();
    trace = rec.traceId;
  } finally {
    closeWritable(db);
  }
  return { trace, events: done.events, hash: done.hash, scenario: header, ...deviceReport(events) };
}

/** What the device did, read off the events. */
export function deviceReport(events: DmaEvent[]): Omit<RunReport, 'trace' | 'events' | 'hash' | 'scenario'> {
  const chains: ChainReport[] = [];
  const errors: RunReport['errors'] = [];
  const interrupts: RunReport['interrupts'] = [];
  const kicks: RunReport['kicks'] = [];
  const findings: FindingSummary[] = [];
  const requests: RunReport['requests'] = [];
  let misses = 0;
  // per queue, the accesses of the chain being served (a pass that ends early starts it over)
  const cur = new Map<number, { read: Buffer[]; written: Buffer[]; tableBytes: number }>();
  const fresh = () => ({ read: [] as Buffer[], written: [] as Buffer[], tableBytes: 0 });
  for (const ev of events) {
    switch (ev.kind) {
      case 'dev.pass':
        if (ev.begin) cur.set(ev.q, fresh());
        break;
      case 'dev.access': {
        const c = cur.get(ev.q) ?? fresh();
        cur.set(ev.q, c);
        if (ev.area === 'table') c.tableBytes += ev.len;
        else if (ev.area === 'buf') (ev.dir === 'read' ? c.read : c.written).push(ev.dir === 'read' ? { dma: ev.dma, gpa: ev.gpa, len: ev.len } : { dma: ev.dma, gpa: ev.gpa, len: ev.len, data: ev.data });
        break;
      }
      case 'vring.used': {
        const c = cur.get(ev.q) ?? fresh();
        chains.push({ q: ev.q, id: ev.id, len: ev.len, slot: ev.slot, usedIdx: ev.usedIdx, ...c, seq: ev.seq });
        cur.set(ev.q, fresh());
        break;
      }
      case 'vq.error':
        errors.push({ q: ev.q, msg: ev.msg, seq: ev.seq });
        break;
      case 'vring.irq':
        interrupts.push({ q: ev.q, seq: ev.seq });
        break;
      case 'vring.kick':
        kicks.push({ q: ev.q, seq: ev.seq });
        break;
      case 'iotlb.miss':
        misses++;
        break;
      case 'viommu.attach':
      case 'viommu.detach':
      case 'viommu.map':
      case 'viommu.unmap':
        requests.push({ kind: ev.kind, status: ev.status, seq: ev.seq });
        break;
      case 'vq.base':
        requests.push({ kind: ev.kind, status: ev.result, seq: ev.seq });
        break;
      case 'finding':
        findings.push({ class: ev.cls, seq: ev.seq, message: ev.message, chain: ev.chain });
        break;
    }
  }
  return { chains, errors, interrupts, kicks, misses, requests, findings };
}
