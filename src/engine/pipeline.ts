// The one place an event is stepped, whoever produced it: the simulation recording (record, replay
// re-execution, catalog, minimize, perturb), a stored or exported trace being folded (replay of an
// imported trace, JSONL import, the catalog, seek), or a log being imported. Each event:
//   1. pre-checks: the judge looks at the world before the event (an unmap against the entry it frees);
//   2. apply: the event's rule (src/model/rules) changes the world;
//   3. sink: the event goes to whoever records or verifies the stream;
//   4. post-checks: the judge looks at the world after it;
//   5. at the QUIESCENT marker (or the end): liveness, what is stuck for good;
// and checkpoints are taken on the every-K boundary the driver asks for.
//
// The judge (which checkers run on which kind) is given by the caller: checkers sit above the
// engine (src/check), so the engine never imports them.
//
// Findings are numbered the same way whatever the source. A finding is an event inserted right after
// the event it judges (pre-check findings first, then post-check findings, then liveness at the
// QUIESCENT marker); its number is its seq in that stream.
// - 'emit' mode (record, log import): the pipeline gives every event its seq and inserts the
//   findings as events, so the number is the inserted event's seq.
// - 'fold' mode (a trace read back): the trace carries the findings it was recorded with, right
//   where the judge produces them again; each judged finding is matched with the recorded one that
//   follows its event (same class and message) and takes its seq. A finding the trace does not carry
//   (a hand-written trace, or a model that changed since) is numbered with the seq of the event it judges.
import { decodeAt, sizeAt } from '../events/binary.js';
import { type DmaEvent, type EventOf, type Kind, KIND_NAMES, KINDS, type NewEvent } from '../events/schema.js';
import { RULES } from '../model/rules/index.js';
import { emptyWorld, type World } from '../model/world.js';

/** The marker a simulated run emits when nothing can run any more: liveness is judged there. */
export const QUIESCENT = 'quiescent';

/** A check: the findings an event gives (null or [] when nothing is wrong). */
export type Check<K extends Kind = Kind> = (w: World, ev: EventOf<K>) => NewEvent[] | null;

/** The checks one kind triggers. */
export interface KindChecks<K extends Kind = Kind> {
  /** before the event is applied (an unmap is judged against the entry it frees) */
  readonly pre?: Check<K>;
  /** after it is applied */
  readonly post?: Check<K>;
  /** the checks keep state in the world (the real-trace judgement): seek must step this kind */
  readonly keepsState?: true;
}

/** The checkers, as the pipeline sees them. */
export interface Judge {
  /** the checks each kind triggers (none if absent) */
  readonly checks: { readonly [K in Kind]?: KindChecks<K> };
  /** when nothing can run any more (the QUIESCENT marker, or the end of a trace without one) */
  liveness(w: World): NewEvent[];
}

type Evolve = (w: World, ev: DmaEvent, owned?: Set<Uint8Array>) => void;
type AnyCheck = (w: World, ev: DmaEvent) => NewEvent[] | null;

/** What stepping one kind does: its rule and its checks, found with one lookup per event. */
interface Step {
  /** the kind's code */
  readonly code: number;
  readonly evolve: Evolve | undefined;
  readonly pre: AnyCheck | undefined;
  readonly post: AnyCheck | undefined;
}

/**
 * The steps by kind code (the byte a stored event starts with): a stored trace is dispatched on its
 * code without reading the kind string, and an array index beats a lookup by string per event.
 */
function stepsOf(judge: Judge | null): Step[] {
  const steps: Step[] = [];
  for (let c = 0; c <= MAX_CODE; c++) steps.push(NO_STEP); // packed, no holes
  for (const k of KIND_NAMES) {
    const c = judge?.checks[k] as KindChecks | undefined;
    const code = KINDS[k].code;
    steps[code] = { code, evolve: RULES[k].evolve as Evolve | undefined, pre: c?.pre as AnyCheck | undefined, post: c?.post as AnyCheck | undefined };
  }
  return steps;
}

/**
 * The steps by kind name, for events that carry only their kind (emit, put). A Map lookup by the
 * kind string costs about 5 ns; KINDS[kind].code, a keyed load across ~45 names from a site that
 * sees them all (megamorphic), about 11 ns (Node 20 microbenchmark), on every simulated event.
 */
function stepsByKind(steps: readonly Step[]): Map<string, Step> {
  return new Map(KIND_NAMES.map((k) => [k, steps[KINDS[k].code]!]));
}

const DEV_ACCESS = KINDS['dev.access'].code;
const DEV_PASS = KINDS['dev.pass'].code;
const VQ_PREFETCH = KINDS['vq.prefetch'].code;
const SCHED = KINDS.sched.code;
const IOTLB_UPDATE = KINDS['iotlb.update'].code;
const IOTLB_MISS = KINDS['iotlb.miss'].code;
const IOTLB_INVALIDATE = KINDS['iotlb.invalidate'].code;
const IOMMU_MAP = KINDS['iommu.map'].code;
const IOMMU_UNMAP = KINDS['iommu.unmap'].code;
const IOMMU_INV = KINDS['iommu.inv'].code;
const DMA_MAP = KINDS['dma.map'].code;
const DMA_UNMAP = KINDS['dma.unmap'].code;
const DMA_CHECK = KINDS['dma.check'].code;

/**
 * The code of the kinds that make up most of a simulated stream (a remap trace: device accesses 27%,
 * passes 12%, then the IOTLB and DMA-API kinds), by comparing the kind with each name in turn: the
 * names are internalized constants, so each comparison is a pointer test, and the chain answers the
 * common kinds in a few of them. -1 for any other kind (the caller takes the Map). The Map lookup
 * alone was 2.5% of the simulation's perf samples (Builtins_FindOrderedHashMapEntry from emit).
 */
export function commonKindCode(kind: string): number {
  switch (kind) {
    case 'dev.access':
      return DEV_ACCESS;
    case 'dev.pass':
      return DEV_PASS;
    case 'vq.prefetch':
      return VQ_PREFETCH;
    case 'sched':
      return SCHED;
    case 'iotlb.update':
      return IOTLB_UPDATE;
    case 'iotlb.miss':
      return IOTLB_MISS;
    case 'iotlb.invalidate':
      return IOTLB_INVALIDATE;
    case 'iommu.map':
      return IOMMU_MAP;
    case 'iommu.unmap':
      return IOMMU_UNMAP;
    case 'iommu.inv':
      return IOMMU_INV;
    case 'dma.map':
      return DMA_MAP;
    case 'dma.unmap':
      return DMA_UNMAP;
    case 'dma.check':
      return DMA_CHECK;
    default:
      return -1;
  }
}

const NO_STEP: Step = { code: -1, evolve: undefined, pre: undefined, post: undefined };
const MAX_CODE = Math.max(...KIND_NAMES.map((k) => KINDS[k].code));
const FINDING_CODE = KINDS.finding.code;
const MARKER_CODE = KINDS.marker.code;

export type Finding = EventOf<'finding'>;

export interface PipelineOptions {
  judge: Judge | null;
  mode: 'emit' | 'fold';
  /** start from this world (a checkpoint's copy, owned by the pipeline from now on) after event `seq` */
  world?: World;
  seq?: number;
  /** every event of the stream: the input's, and in emit mode the inserted findings */
  event?: (ev: DmaEvent, w: World) => void;
  /** every judged finding, with its number as seq */
  finding?: (f: Finding) => void;
  checkpoint?: (seq: number, w: World) => void;
  checkpointEvery?: number;
  /**
   * `checkpoint` only reads the world and keeps none of its pages (replay hashes it): the pages the
   * working world owns stay its own past a checkpoint, instead of being copied again on their next write
   */
  checkpointReadsOnly?: boolean;
  /** judge liveness at the QUIESCENT marker (default true) */
  liveness?: boolean;
}

interface Judged {
  f: Finding;
  /** the event it judges */
  at: number;
}

export class Pipeline {
  readonly world: World;
  /** seq of the last event stepped */
  seq: number;
  /** pages this working world owns (copied since the last checkpoint): written in place */
  owned = new Set<Uint8Array>();
  private livenessDone: boolean;
  private readonly judge: Judge | null;
  private readonly emitMode: boolean;
  private readonly onEvent: ((ev: DmaEvent, w: World) => void) | undefined;
  private readonly onFinding: ((f: Finding) => void) | undefined;
  private readonly onCheckpoint: ((seq: number, w: World) => void) | undefined;
  private readonly every: number;
  private readonly checkpointReadsOnly: boolean;
  private nextCheckpoint: number;
  /** fold mode: judged findings of the last event, waiting for their recorded copies */
  private pending: Judged[] = [];
  private readonly steps: Step[];
  private readonly byKind: Map<string, Step>;

  constructor(opts: PipelineOptions) {
    this.world = opts.world ?? emptyWorld();
    this.seq = opts.seq ?? 0;
    this.judge = opts.judge;
    this.steps = stepsOf(opts.judge);
    this.byKind = stepsByKind(this.steps);
    this.emitMode = opts.mode === 'emit';
    this.onEvent = opts.event;
    this.onFinding = opts.finding;
    this.onCheckpoint = opts.checkpoint;
    this.livenessDone = opts.liveness === false;
    this.every = opts.checkpointEvery ?? 0;
    this.checkpointReadsOnly = opts.checkpointReadsOnly ?? false;
    this.nextCheckpoint = this.every ? (Math.floor(this.seq / this.every) + 1) * this.every : Infinity;
  }

  /** Emit mode: gives the event the next seq and steps it; returns the seq. */
  emit(e: NewEvent): number {
    const ev = e as DmaEvent;
    ev.seq = this.seq + 1;
    return this.emitNumbered(ev);
  }

  /**
   * Emit mode, for a producer that has given the event its seq already (this.seq + 1): the
   * simulation does, where the event's literal is built, so its store is a plain field store; here,
   * a store into every event shape is megamorphic (Builtins_StoreIC, ~1% of the simulation).
   */
  emitNumbered(ev: DmaEvent): number {
    // the seq is kept here, not read back from the event: a load from ~30 event shapes is megamorphic
    const at = ++this.seq;
    const w = this.world;
    const kind = ev.kind;
    const common = commonKindCode(kind);
    const step = common >= 0 ? this.steps[common]! : this.byKind.get(kind)!;
    const code = step.code;
    if (code === FINDING_CODE) {
      step.evolve!(w, ev, this.owned);
      this.onEvent?.(ev, w);
      this.onFinding?.(ev as Finding);
      return at;
    }
    const pre = step.pre ? step.pre(w, ev) : null;
    if (step.evolve) step.evolve(w, ev, this.owned);
    this.onEvent?.(ev, w);
    if (pre !== null && pre.length !== 0) for (const f of pre) this.insert(f, at);
    if (step.post !== undefined) {
      const post = step.post(w, ev);
      if (post !== null && post.length !== 0) for (const f of post) this.insert(f, at);
    }
    // (the marker's name read with Reflect.get, a generic lookup: a simulation emits one marker, at
    // its end, so an ordinary load here has no type feedback when this function is optimized, and
    // reaching it deoptimized this whole function, inlined checks and all, at the end of every run,
    // to be recompiled in the next: ~10-40 ms of compiler CPU per Sim in a process that runs several)
    if (code === MARKER_CODE && !this.livenessDone && this.judge && Reflect.get(ev, 'name') === QUIESCENT) {
      this.livenessDone = true;
      for (const f of this.judge.liveness(w)) this.insert(f, at);
    }
    return at;
  }

  private insert(f: NewEvent, at: number): void {
    if (f.cause === 0) f.cause = at;
    this.emit(f);
  }

  /** Fold mode: steps an event of the input, which carries its seq. */
  put(ev: DmaEvent): void {
    this.step(ev, ev.seq, this.byKind.get(ev.kind)!.code);
  }

  /**
   * Fold mode: steps an event whose seq and kind code the caller has already (a stored event: its
   * position and its kind byte), without reading them from the event (a load across ~30 event shapes).
   */
  putAt(ev: DmaEvent, seq: number, code: number): void {
    this.step(ev, seq, code);
  }

  /**
   * Fold mode: steps the events of a stored chunk (seq0, n events packed), up to seq `to`; returns
   * the seq of the last event stepped (seq0 - 1 if none). With `shared` the events' bytes fields are
   * views of the chunk (decodeAt): for a fold whose only readers of the events are the rules (which
   * copy what they keep) and the checkers (which keep no bytes).
   */
  putChunk(data: Uint8Array, seq0: number, n: number, to = Infinity, shared = false): number {
    const last = Math.min(n, to - seq0 + 1);
    let off = 0;
    for (let i = 0; i < last; i++) {
      const size = sizeAt(data, off);
      const code = data[off + 4]!;
      this.step(decodeAt(data, off, seq0 + i, shared), seq0 + i, code);
      off += size;
    }
    return seq0 + Math.max(last, 0) - 1;
  }

  /** Steps one event of the input: `seq` and `code` are the event's seq and kind code. */
  private step(ev: DmaEvent, seq: number, code: number): void {
    this.seq = seq;
    const w = this.world;
    const step = this.steps[code]!;
    if (code === FINDING_CODE) {
      // a finding recorded with the trace: the recorded copy of the finding judged just before?
      const fe = ev as Finding;
      step.evolve!(w, fe, this.owned);
      this.onEvent?.(fe, w);
      const p = this.pending[0];
      if (p && p.f.cls === fe.cls && p.f.message === fe.message) {
        this.pending.shift();
        this.report(p.f, seq);
      }
      return;
    }
    if (this.pending.length) this.settle();
    const pre = step.pre !== undefined ? step.pre(w, ev) : null;
    if (step.evolve !== undefined) step.evolve(w, ev, this.owned);
    if (this.onEvent !== undefined) this.onEvent(ev, w);
    if (pre !== null && pre.length !== 0) for (const f of pre) this.judged(f, seq);
    if (step.post !== undefined) {
      const post = step.post(w, ev);
      if (post !== null && post.length !== 0) for (const f of post) this.judged(f, seq);
    }
    // (the marker's name read with Reflect.get, a generic lookup: a simulation emits one marker, at
    // its end, so an ordinary load here has no type feedback when this function is optimized, and
    // reaching it deoptimized this whole function, inlined checks and all, at the end of every run,
    // to be recompiled in the next: ~10-40 ms of compiler CPU per Sim in a process that runs several)
    if (code === MARKER_CODE && !this.livenessDone && this.judge && Reflect.get(ev, 'name') === QUIESCENT) {
      this.livenessDone = true;
      for (const f of this.judge.liveness(w)) this.judged(f, seq);
    }
  }

  private judged(f: NewEvent, at: number): void {
    if (f.kind !== 'finding') return;
    if (f.cause === 0) f.cause = at;
    this.pending.push({ f: f as Finding, at });
  }

  /** Judged findings no recorded finding followed: numbered at the event they judge. */
  private settle(): void {
    for (const p of this.pending) this.report(p.f, p.at);
    this.pending = [];
  }

  private report(f: Finding, seq: number): void {
    if (!this.onFinding) return;
    f.seq = seq;
    this.onFinding(f);
  }

  /** Counts the every-K boundaries from now (the simulation's set-up is never checkpointed mid-way). */
  restartCheckpoints(): void {
    this.nextCheckpoint = this.every ? (Math.floor(this.seq / this.every) + 1) * this.every : Infinity;
  }

  /** Takes a checkpoint if the every-K boundary has been passed (the driver says when it may). */
  maybeCheckpoint(): void {
    if (this.seq < this.nextCheckpoint) return;
    this.onCheckpoint?.(this.seq, this.world);
    if (!this.checkpointReadsOnly) this.owned = new Set();
    this.nextCheckpoint = (Math.floor(this.seq / this.every) + 1) * this.every;
  }

  /** End of the input: the findings still open, and liveness if no QUIESCENT marker judged it (unless `liveness` is false). */
  end(liveness = true): void {
    if (this.pending.length) this.settle();
    if (!liveness || this.livenessDone || !this.judge) return;
    this.livenessDone = true;
    const at = this.seq;
    for (const f of this.judge.liveness(this.world)) {
      if (this.emitMode) this.insert(f, at);
      else this.judged(f, at);
    }
    if (this.pending.length) this.settle();
  }
}
