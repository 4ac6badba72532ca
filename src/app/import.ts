// import: a canonical JSONL export, a QEMU log, a guest ftrace log, or a guest + host pair of one run,
// stored as a trace (source 'import') and folded with every checker.
//
// Nothing is written to the database unless the whole input is good: a JSONL file is parsed and
// applied completely before the database is opened; a log is scanned completely first (with
// --strict the first malformed line is the error), and the trace is then written inside one
// transaction (the recorder's writer thread's), so even a failure half way (the file changed under
// us, or a host log whose args only pass 2 checks turns out mostly malformed) leaves the stored
// data as it was.
import { basename } from 'node:path';
import type Database from 'better-sqlite3';
import { JUDGE } from '../check/index.js';
import { ApplyError } from '../engine/apply.js';
import { Pipeline } from '../engine/pipeline.js';
import { InputError, UsageError } from '../errors.js';
import { hex } from '../events/json.js';
import { JsonlError, parseEventLine, parseHeader, stripBom, type TraceHeader, validateLine } from '../events/jsonl.js';
import { TraceValidator, ValidationError } from '../events/validate.js';
import { VARIANT_CHOICES } from '../model/variants.js';
import type { DmaEvent, EventOf, NewEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import { detectFormat } from '../import/detect.js';
import { untimedLogMessage } from '../import/qemu-log.js';
import { lineBatches, newLineStreamState, readLines } from '../import/lines.js';
import { type Alignment, guestEvents, hostEvents, mergeStreams, planAlignment, REPAIR_US, singleStream, type PhaseStat } from '../import/merge.js';
import { DEV_UNKNOWN, type DmaMode, dmaMode, type GuestScan, type HostScan, type MalformedLine, scanGuest, scanHost } from '../import/to-events.js';
import { withWriteConnection, withWriteTransaction } from '../store/db.js';
import { Recorder } from '../store/recorder.js';
import { DEFAULT_CHECKPOINT_EVERY } from './record.js';
import { MAX_FINDINGS_LISTED } from './findings.js';

export type ImportFormat = 'auto' | 'jsonl' | 'qemu-log' | 'ftrace';

export interface ImportOptions {
  db: string;
  /** one file (with `format`), or `guest` and/or `host` */
  file?: string;
  format?: ImportFormat;
  guest?: string;
  host?: string;
  strict?: boolean;
  name?: string;
  checkpointEvery?: number;
  /** progress messages (the CLI shows them on a TTY only) */
  progress?: (msg: string) => void;
}

export interface ImportFinding {
  class: string;
  /** the finding's number: its seq in the trace (see src/engine/pipeline.ts), as record reports it */
  seq: number;
  /** the event it is about */
  cause: number;
  iova?: string;
  gpa?: string;
  message: string;
}

export interface ImportResult {
  trace: number;
  name: string;
  format: 'jsonl' | 'qemu-log' | 'ftrace' | 'guest+host';
  events: number;
  byKind: Record<string, number>;
  /** lines of events dmareplay does not model, kept as `opaque` events */
  unknown: number;
  unknownByEvent: Record<string, number>;
  malformed: number;
  malformedLines: MalformedLine[];
  /** files that were cut off: imported up to the break */
  truncated: { file: string; reason: string }[];
  mode?: DmaMode;
  alignment?: Omit<Alignment, 'boundaries'> & { boundaries: { n: number; name: string }[] };
  /** what was not judged and why (a cut log), and translations the vIOMMU blocked without a fault */
  notes: string[];
  /** the first {@link MAX_FINDINGS_LISTED} findings (all of them are stored: `log TRACE --kind finding`) */
  findings: ImportFinding[];
  /** how many findings the import made in all */
  findingCount: number;
}

/**
 * Findings an import result lists; the rest are only counted (they are in the database). A log
 * with a finding per event would otherwise hold them all in memory until the import ends.
 */
export { MAX_FINDINGS_LISTED };

/** The stored config of a trace imported from JSONL: the original header fields, so export reproduces it. */
export interface JsonlImportConfig {
  jsonl: { source: 'sim' | 'import'; seed: string | null; engine: string; complete: boolean };
  config: unknown;
}

export function isJsonlImportConfig(c: unknown): c is JsonlImportConfig {
  return typeof c === 'object' && c !== null && 'jsonl' in c && 'config' in c && typeof (c as { jsonl: unknown }).jsonl === 'object';
}

// ---------------------------------------------------------------------------------------------

function readError(file: string, e: unknown): InputError {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return new InputError(`cannot read ${file}: no such file`);
  if (err?.code === 'EISDIR') return new InputError(`cannot read ${file}: it is a directory`);
  if (err?.code === 'EACCES') return new InputError(`cannot read ${file}: permission denied`);
  return new InputError(`cannot read ${file}: ${err?.message ?? String(e)}`);
}

async function guarded<T>(file: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof InputError || e instanceof UsageError) throw e;
    if ((e as NodeJS.ErrnoException)?.code) throw readError(file, e);
    throw e;
  }
}

/** jsonl | qemu-log | ftrace, from the first lines. */
export async function detectImportFormat(file: string): Promise<'jsonl' | 'qemu-log' | 'ftrace'> {
  const lines: string[] = [];
  for await (const line of readLines(file)) {
    if (line.trim() === '') continue;
    lines.push(line);
    if (lines.length >= 64) break;
  }
  if (lines.length && lines[0]!.trimStart().startsWith('{')) return 'jsonl';
  const f = detectFormat(lines);
  if (f === null) throw new InputError(`cannot tell the format of ${file} (not a dmareplay JSONL export, QEMU log or ftrace text); pass --format`);
  return f;
}

/**
 * Steps the input through the engine's pipeline with every checker, as record and fold do. Log
 * imports insert the findings as events (emit mode: the pipeline numbers every event); a JSONL file
 * is the trace, with its own seqs and the findings it was recorded with (fold mode).
 */
class Folder {
  private readonly pipe: Pipeline;
  readonly byKind = new Map<string, number>();
  readonly findings: ImportFinding[] = [];
  findingCount = 0;

  constructor(
    sink: ((ev: DmaEvent) => void) | null,
    checkpoint: ((seq: number, w: World) => void) | null,
    every: number,
    /** insert the findings as events (log imports) or only report them (JSONL: the file is the trace) */
    private readonly insertFindings: boolean,
  ) {
    this.pipe = new Pipeline({
      judge: JUDGE,
      mode: insertFindings ? 'emit' : 'fold',
      event: (ev) => {
        this.byKind.set(ev.kind, (this.byKind.get(ev.kind) ?? 0) + 1);
        sink?.(ev);
      },
      finding: (f) => this.note(f),
      checkpoint: checkpoint ?? undefined,
      checkpointEvery: every,
    });
    // a log's events are made here, not read: they get the checks a JSONL line gets when read (the
    // findings the pipeline inserts between them are its own, hence the gaps)
    this.validator = insertFindings ? new TraceValidator({ variants: VARIANT_CHOICES, gaps: true }) : null;
  }

  private readonly validator: TraceValidator | null;

  get world(): World {
    return this.pipe.world;
  }

  get seq(): number {
    return this.pipe.seq;
  }

  private note(f: EventOf<'finding'>): void {
    if (this.findingCount++ >= MAX_FINDINGS_LISTED) return;
    this.findings.push({
      class: f.cls,
      seq: f.seq,
      cause: f.cause,
      ...(f.iova ? { iova: hex(f.iova) } : {}),
      ...(f.gpa ? { gpa: hex(f.gpa) } : {}),
      message: f.message,
    });
  }

  /** One event of the input (an imported event, or a line of the JSONL file with its seq). */
  put(e: NewEvent | DmaEvent): void {
    if (this.insertFindings) {
      // the seq emit() gives it (it sets ev.seq itself), set first so the validator sees it: no copy
      (e as DmaEvent).seq = this.pipe.seq + 1;
      this.validator?.check(e as DmaEvent);
      this.pipe.emit(e as NewEvent);
    } else this.pipe.put(e as DmaEvent);
    this.pipe.maybeCheckpoint();
  }

  /** End of input: what is stuck for good, unless a QUIESCENT marker judged it already. */
  finish(): void {
    this.pipe.end();
  }
}

function sortedRecord(m: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Runs `body` with the database open for writing, inside one transaction (rolled back on error). */
function writeTrace<T>(dbPath: string, body: (db: Database.Database) => Promise<T>): Promise<T> {
  return withWriteTransaction(dbPath, body);
}

// ---------------------------------------------------------------------------------------------
// JSONL

function jsonlError(file: string, e: unknown): never {
  if (e instanceof JsonlError) {
    const rest = e.message.replace(/^line \d+: /, '');
    const msg = e.field === 'json' || rest.startsWith(`field ${e.field}`) ? rest : `field ${e.field}: ${rest}`;
    throw new InputError(`${file}:${e.line}: ${msg}`);
  }
  throw e;
}

async function* jsonlEvents(file: string, onHeader: (h: TraceHeader) => void): AsyncGenerator<DmaEvent[]> {
  const state = newLineStreamState();
  let lineNo = 0;
  let header: TraceHeader | null = null;
  let seq = 0;
  let blank = 0;
  const validator = new TraceValidator({ variants: VARIANT_CHOICES });
  for await (const batch of lineBatches(file, state)) {
    const out: DmaEvent[] = [];
    for (let text of batch) {
      lineNo++;
      if (lineNo === 1) text = stripBom(text);
      if (text.trim() === '') {
        blank = blank || lineNo;
        continue;
      }
      if (blank) throw new JsonlError(blank, 'line', 'empty line inside the file');
      if (header === null) {
        header = parseHeader(text, lineNo);
        onHeader(header);
        continue;
      }
      const ev = parseEventLine(text, lineNo, ++seq);
      validateLine(validator, ev, lineNo);
      out.push(ev);
    }
    if (out.length) yield out;
  }
  if (header === null) throw new JsonlError(1, 'header', 'empty file: the first line must be the trace header');
  if (seq !== header.events)
    throw new JsonlError(
      lineNo,
      'events',
      `the header says ${header.events} events, the file has ${seq}${seq < header.events ? (state.finalNewline ? ' (truncated?)' : ' (the file was cut off: its last line has no newline)') : ''}`,
    );
}

async function importJsonl(opts: ImportOptions, file: string): Promise<ImportResult> {
  const every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  // pass 1: parse and apply everything, judging with every checker; no database yet
  let header: TraceHeader | null = null;
  const check = new Folder(null, null, every, false);
  await guarded(file, async () => {
    try {
      for await (const batch of jsonlEvents(file, (h) => (header = h)))
        for (const ev of batch) {
          try {
            check.put(ev);
          } catch (e) {
            if (e instanceof ApplyError) throw new InputError(`${file}:${ev.seq + 1}: event #${ev.seq} (${ev.kind}) cannot be applied: ${e.message.replace(/^event \d+: /, '')}`);
            throw e;
          }
        }
      check.finish();
    } catch (e) {
      jsonlError(file, e);
    }
  });
  const h = header as unknown as TraceHeader;
  opts.progress?.(`${file}: ${check.seq} events valid, writing`);
  // pass 2: store the events exactly as read, with checkpoints
  const config: JsonlImportConfig = { jsonl: { source: h.source, seed: h.seed, engine: h.engine, complete: h.complete }, config: h.config };
  const name = opts.name ?? h.name;
  const trace = await writeTrace(opts.db, async (db) => {
    const rec = new Recorder(db, { name, source: 'import', seed: null, config, checkpointEvery: every });
    const store = new Folder((ev) => rec.event(ev), (seq, w) => rec.checkpoint(seq, w, null), every, false);
    for await (const batch of jsonlEvents(file, () => {})) for (const ev of batch) store.put(ev);
    rec.finish();
    return rec.traceId;
  }).catch((e) => jsonlError(file, e));
  return {
    trace,
    name,
    format: 'jsonl',
    events: check.seq,
    byKind: sortedRecord(check.byKind),
    unknown: check.byKind.get('opaque') ?? 0,
    unknownByEvent: {},
    malformed: 0,
    malformedLines: [],
    truncated: [],
    notes: [],
    findings: check.findings,
    findingCount: check.findingCount,
  };
}

// ---------------------------------------------------------------------------------------------
// Logs

function deviceEvents(mode: DmaMode, guest: GuestScan | null, host: HostScan | null): NewEvent[] {
  const iommu = mode.path === 'iommu' || mode.path === 'iommu-lazy';
  const devs = new Map<number, string>();
  if ((guest?.iommuMaps ?? 0) > 0 || iommu) devs.set(DEV_UNKNOWN, `the guest's ${host?.amd ? 'AMD-Vi ' : ''}IOMMU domains (iommu:map/unmap do not name the device)`);
  if ((host?.vdpa ?? 0) > 0 && !devs.has(DEV_UNKNOWN)) devs.set(DEV_UNKNOWN, 'the vhost-vdpa device (vhost_vdpa_dma_map/unmap name no PCI function)');
  for (const [sid, name] of host?.devices ?? []) devs.set(sid, name);
  for (const [sid, name] of guest?.devices ?? []) if (!devs.get(sid)) devs.set(sid, name);
  return [...devs]
    .sort(([a], [b]) => a - b)
    .map(([dev, name]) => ({
      kind: 'dev.add',
      actor: 'vmm',
      cause: 0,
      dev,
      name,
      path: mode.path,
      features: 0n,
      useDmaApi: 1,
      translate: iommu ? 'iova' : 'gpa',
      backend: 'qemu',
      dmaMask: guest?.dmaMask.get(dev) ?? 0xffff_ffff_ffff_ffffn,
    }));
}

/**
 * A log is imported only if it is one: at least one trace line, and more lines that parse than lines
 * that do not (an empty file, a binary one, the wrong format or a badly damaged log would otherwise
 * be stored as a trace of nothing but skipped lines).
 */
function mostlyParsed(sc: GuestScan | HostScan): boolean {
  return sc.records > 0 && sc.malformed <= sc.records;
}

function checkMostlyParsed(sc: GuestScan | HostScan): void {
  const what = sc.side === 'guest' ? 'ftrace' : 'QEMU log';
  const first = sc.malformedLines[0];
  const example = first ? `; line ${first.line}: ${first.reason}` : '';
  if (sc.records === 0) throw new InputError(`${sc.file}: no ${what} trace line in it (${sc.lines} lines, ${sc.malformed} malformed${example}); nothing imported`);
  if (sc.malformed > sc.records)
    throw new InputError(`${sc.file}: ${sc.malformed} of ${sc.records + sc.malformed} lines are malformed (is it a ${what}?${example}); nothing imported`);
}

async function importLogs(opts: ImportOptions, files: { guest?: string; host?: string }): Promise<ImportResult> {
  const every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  const progress = opts.progress;
  const tick = (what: string) => {
    let last = 0;
    return (n: number) => {
      if (!progress || n - last < 50_000) return;
      last = n;
      progress(`${what}: ${n.toLocaleString('en-US')} lines`);
    };
  };
  // pass 1: scan (strict errors, markers, devices, mode); no database yet
  const gScan = files.guest ? await guarded(files.guest, () => scanGuest(files.guest!, { strict: opts.strict, progress: tick(`scanning ${files.guest}`) })) : null;
  // a host log alone leaves the args the scan does not read to pass 2 (one parse of them, not two):
  // its malformed lines are then all known only at the end of pass 2, checked before the commit
  const scanHostLog = (deferArgs: boolean) =>
    guarded(files.host!, () => scanHost(files.host!, { strict: opts.strict, progress: tick(`scanning ${files.host}`), xlate: !!files.guest, deferArgs }));
  let hScan = files.host ? await scanHostLog(!files.guest) : null;
  if (gScan) checkMostlyParsed(gScan);
  if (hScan?.deferred && !mostlyParsed(hScan)) hScan = await scanHostLog(false); // the refusal, with the whole file's counts
  if (hScan) checkMostlyParsed(hScan);
  // no host clock: a guest log cannot be interleaved with it (a host log alone is imported in line order)
  if (gScan && hScan && hScan.untimed > 0) throw new InputError(untimedLogMessage(hScan.file));
  const mode = dmaMode(gScan, hScan);
  const alignment = gScan && hScan ? planAlignment(gScan, hScan) : null;
  const phases: PhaseStat[] = [];
  const format = gScan && hScan ? 'guest+host' : gScan ? 'ftrace' : 'qemu-log';
  const name = opts.name ?? [files.guest, files.host].filter((f): f is string => !!f).map((f) => basename(f)).join(' + ');
  const config = {
    import: {
      format,
      ...(files.guest ? { guest: files.guest } : {}),
      ...(files.host ? { host: files.host } : {}),
      mode: mode.path,
      modeWhy: mode.why,
      ...(alignment ? { alignment: alignment.method, markers: alignment.boundaries.map((b) => b.n) } : {}),
    },
  };
  const totalLines = (gScan?.lines ?? 0) + (hScan?.lines ?? 0);
  const read = [0, 0];
  const show = (side: 0 | 1) => {
    let last = 0;
    return (n: number) => {
      read[side] = n;
      const sum = read[0]! + read[1]!;
      if (!progress || sum - last < 50_000) return;
      last = sum;
      progress(`importing: ${sum.toLocaleString('en-US')} of ${totalLines.toLocaleString('en-US')} lines (${Math.floor((100 * sum) / Math.max(1, totalLines))}%)`);
    };
  };
  // pass 2: convert, merge, fold and store, in one transaction
  const unknown = new Map<string, number>();
  let blockedCount = 0;
  let folder: Folder | null = null;
  // one transaction for the whole trace, the recorder's writer thread's: SQLite and the stream hash
  // run beside the conversion; any failure rolls it back (abort)
  const trace = await withWriteConnection(opts.db, async (db) => {
    const rec = new Recorder(db, { name, source: 'import', seed: null, config, checkpointEvery: every }, { transaction: true });
    try {
    const f = new Folder((ev) => {
      rec.event(ev);
      if (ev.kind === 'opaque') unknown.set(ev.event, (unknown.get(ev.event) ?? 0) + 1);
      else if (ev.kind === 'iommu.translate' && ev.cache === 'fault') blockedCount++;
    }, (seq, w) => rec.checkpoint(seq, w, null), every, true);
    folder = f;
    for (const ev of deviceEvents(mode, gScan, hScan)) f.put(ev);
    const stream =
      gScan && hScan
        ? mergeStreams(guestEvents(gScan, show(0)), hostEvents(hScan, gScan.markers, show(1)), gScan, hScan, alignment!)
        : gScan
          ? singleStream('guest', guestEvents(gScan, show(0)), phases)
          : singleStream('host', hostEvents(hScan!, [], show(1)), phases);
    await guarded(files.guest ?? files.host!, async () => {
      try {
        for await (const batch of stream) for (const ev of batch) f.put(ev);
        // a deferred scan's counts are whole now (hostEvents): refused, the transaction rolls back
        if (hScan) checkMostlyParsed(hScan);
      } catch (e) {
        if (e instanceof ValidationError) throw new InputError(`${files.guest ?? files.host}: event #${f.seq} made from the log is impossible: field ${e.field}: ${e.message}`);
        throw e;
      }
    });
    f.finish();
    rec.finish();
    } catch (e) {
      rec.abort();
      throw e;
    }
    return rec.traceId;
  });
  const fo = folder as unknown as Folder;
  const scans = [gScan, hScan].filter((s): s is GuestScan | HostScan => s !== null);
  const result: ImportResult = {
    trace,
    name,
    format,
    events: fo.seq,
    byKind: sortedRecord(fo.byKind),
    unknown: fo.byKind.get('opaque') ?? 0,
    unknownByEvent: sortedRecord(unknown),
    malformed: scans.reduce((n, s) => n + s.malformed, 0),
    malformedLines: scans.flatMap((s) => s.malformedLines),
    truncated: scans.filter((s) => s.truncated).map((s) => ({ file: s.file, reason: s.truncated! })),
    mode,
    notes: [],
    findings: fo.findings,
    findingCount: fo.findingCount,
  };
  if (gScan?.truncated && hScan)
    result.notes.push(`the guest log ${gScan.file} was cut off: host events after its end (less ${REPAIR_US / 1000} ms) are not judged against the guest's mappings`);
  if (hScan && hScan.untimed > 0) result.notes.push(`${hScan.untimed} lines of ${hScan.file} have no timestamp (QEMU without -msg timestamp=on): host events are in line order, which is all a host log alone needs; to merge it with a guest log, rerun with -msg timestamp=on`);
  if (hScan?.truncated && gScan) result.notes.push(`the host log ${hScan.file} was cut off: guest unmaps after its end are not judged`);
  const blocked = fo.byKind.get('iommu.translate') ? blockedCount : 0;
  if (blocked) result.notes.push(`${blocked} translation${blocked === 1 ? '' : 's'} found no mapping and raised no fault (QEMU amd-iommu returns address 0 with no permission): blocked DMA, counted by stats, not a dmar-fault`);
  if (alignment) result.alignment = { ...alignment, boundaries: alignment.boundaries.map((b) => ({ n: b.n, name: b.name })) };
  return result;
}

// ---------------------------------------------------------------------------------------------

export async function importTrace(opts: ImportOptions): Promise<ImportResult> {
  if (opts.file && (opts.guest || opts.host)) throw new UsageError('give either FILE or --guest/--host, not both');
  if (!opts.file && !opts.guest && !opts.host) throw new UsageError('nothing to import: give FILE, or --guest and/or --host');
  const format = opts.format ?? 'auto';
  if (!['auto', 'jsonl', 'qemu-log', 'ftrace'].includes(format)) throw new UsageError(`--format must be auto, jsonl, qemu-log or ftrace, got ${JSON.stringify(format)}`);
  if (!opts.file) {
    if (format !== 'auto') throw new UsageError('--format goes with FILE; --guest is ftrace text and --host a QEMU log');
    return importLogs(opts, { guest: opts.guest, host: opts.host });
  }
  const file = opts.file;
  const f = format === 'auto' ? await guarded(file, () => detectImportFormat(file)) : format;
  if (f === 'jsonl') return importJsonl(opts, file);
  return importLogs(opts, f === 'ftrace' ? { guest: file } : { host: file });
}

