// The simulation: a scheduler that runs one actor step at a time (the guest CPU, one worker per
// virtqueue, the VMM). Every model transition is emitted as an event through the engine's pipeline
// (src/engine/pipeline.ts): applied to the world the moment it is emitted, handed to the sink (the
// recorder or the replay verifier), then judged by the checkers, whose findings are events of the
// recorded stream too. Actor progress lives in the world, and the RNG states and fault counters in
// SimState, so a run can resume from any checkpoint.
import { JUDGE } from '../check/index.js';
import type { Actor, DmaEvent, NewEvent } from '../events/schema.js';
import { Pipeline, QUIESCENT } from '../engine/pipeline.js';
import type { SimState } from '../engine/snapshot.js';
import type { World } from '../model/world.js';
import type { Fault, FaultKind, SimConfig } from './config.js';
import { seedKey } from './data.js';
import { deviceRunnable, devicePass } from './device.js';
import { DriverScratch, driverRunnable, driverStep } from './driver.js';
import { Rng, type RngState } from './rng.js';
import { pctPick } from './schedule.js';
import { setup } from './setup.js';
import { vmmRunnable, vmmStep } from './vmm.js';
import { type Request, type Workload, workloadFor } from './workload.js';
import { dmaUnmap, flushQueue } from './dma-api.js';
import { EntryXlate } from './translate.js';
import { DeviceWrites } from './written.js';

export type { SimState } from '../engine/snapshot.js';

export interface SimSink {
  event(ev: DmaEvent): void;
  /** Called at actor-step boundaries once `checkpointEvery` events have passed since the last one. */
  checkpoint?(seq: number, world: World, state: SimState): void;
  /** `checkpoint` keeps nothing of the world it is given (it only hashes it): see PipelineOptions.checkpointReadsOnly */
  checkpointReadsOnly?: boolean;
}

export interface Resume {
  seq: number;
  world: World;
  state: SimState;
}

/** Upper bound on scheduler steps per guest op; a run past it is a model bug, not a trace. */
const STEPS_PER_OP = 256;
/** scheduler steps per call of runSteps (see run) */
const STEPS_PER_CALL = 1024;
const VQ_ACTORS: readonly Actor[] = ['vq0', 'vq1', 'vq2', 'vq3'];
/** the VMM's bit in a runnable mask: above every queue's (queues are vq0..vq3, the Actor names) */
const VMM_BIT = 1 << 30;
const MAX_MASK_Q = 28;
const VQ_INDEX: Partial<Record<Actor, number>> = { vq0: 0, vq1: 1, vq2: 2, vq3: 3 };
/** Sim.bytes carves its arrays from slabs of this size (a request above a quarter of it gets its own) */
const SLAB = 1 << 16;

export class Sim {
  readonly world: World;
  /** the scheduler's stream */
  rng: Rng;
  readonly dataKey: number;
  readonly workload: Workload;
  counters: Record<string, number>;
  private readonly resumed: boolean;
  private readonly pipe: Pipeline;
  /** the injected faults by kind (config.faults is searched on every unmap, pass and completion otherwise) */
  private readonly faultOf: Map<FaultKind, Fault>;
  /**
   * The runnable set, by bit mask (bit 0 the guest CPU, bit 1+q queue q's worker, bit 31 the VMM):
   * its actors, in scheduler order, and the `sched` event's text. A run sees a handful of sets, so
   * the array and its join are built once each, not on every step.
   */
  /** the driver's look-ahead between steps (driver.ts), derived from the world */
  readonly driverScratch = new DriverScratch();
  /** the device IOTLB's last entry translation (translate.ts EntryXlate) */
  readonly xlate = new EntryXlate();
  /** the device's last buffer writes and their fingerprints, for the guest's read of them (written.ts) */
  readonly deviceWrites = new DeviceWrites();
  private readonly runnableSets = new Map<number, { actors: readonly Actor[]; text: string }>();
  /** Sim.bytes' current slab, and the first byte of it not handed out yet */
  private slab = new ArrayBuffer(0);
  private slabAt = 0;

  constructor(
    readonly config: SimConfig,
    readonly seed: string,
    private readonly sink: SimSink,
    readonly checkpointEvery = 0,
    resume?: Resume,
  ) {
    this.rng = new Rng(seed, resume?.state.rng as RngState | undefined);
    this.counters = resume ? { ...resume.state.counters } : {};
    this.faultOf = new Map();
    for (const f of config.faults) if (!this.faultOf.has(f.kind)) this.faultOf.set(f.kind, f); // find(): the first of a kind
    this.pipe = new Pipeline({
      judge: JUDGE,
      mode: 'emit',
      world: resume?.world,
      seq: resume?.seq ?? 0,
      event: sink.event.bind(sink),
      checkpoint: (seq, w) => sink.checkpoint?.(seq, w, this.state()),
      // no one takes checkpoints: no every-K boundary, so the working world keeps owning the pages
      // it copied (otherwise every page written after a boundary is copied again, for nothing)
      checkpointEvery: sink.checkpoint ? checkpointEvery : 0,
      checkpointReadsOnly: sink.checkpointReadsOnly,
    });
    this.world = this.pipe.world;
    this.resumed = !!resume;
    this.dataKey = seedKey(seed);
    this.workload = workloadFor(config.workload, config.script, config.scriptInflight, config.knobs);
  }

  private nextReq: { op: number; req: Request } | null = null;

  /**
   * The request of guest operation `op`: a function of the seed and op alone (its own RNG stream),
   * so the same seed gives the same intents under every path and schedule, and the driver can look
   * at the next one before deciding whether it can be posted.
   */
  request(op: number): Request {
    if (this.nextReq?.op !== op) this.nextReq = { op, req: this.workload.next(new Rng(`${this.seed}/op/${op}`), op) };
    return this.nextReq.req;
  }

  get completions(): number {
    return this.counters.completions ?? 0;
  }
  set completions(n: number) {
    this.counters.completions = n;
  }

  fault(kind: FaultKind): Fault | undefined {
    return this.faultOf.size === 0 ? undefined : this.faultOf.get(kind);
  }

  /** Counts an occurrence of `counter`; true if the fault `kind` hits it (arg N: the Nth; 0: every one). */
  faultHit(kind: FaultKind, counter: string): boolean {
    const f = this.fault(kind);
    if (!f) return false;
    const n = (this.counters[`${kind}:${counter}`] ?? 0) + 1;
    this.counters[`${kind}:${counter}`] = n;
    if (kind === 'evict-iotlb') return n % (f.arg || 4) === 0;
    return f.arg === 0 || n === f.arg;
  }

  /** seq of the last event emitted */
  get seq(): number {
    return this.pipe.seq;
  }

  /**
   * Steps an event through the pipeline, which gives it its seq. The simulation's events are built
   * with `seq: 0` as their last field: the pipeline then stores the seq in place (adding a property
   * to a finished object literal costs a hidden-class transition and an out-of-object property
   * store on every event), and the fields keep the order they had (seq last).
   */
  emit(e: NewEvent | DmaEvent): number {
    // numbered here: this small method is inlined where the event's literal is built, so the
    // store's shape is known there (the pipeline's own store sees every shape)
    const ev = e as DmaEvent;
    ev.seq = this.pipe.seq + 1;
    return this.pipe.emitNumbered(ev);
  }

  /**
   * A new zeroed array of n bytes (the payload of an event: what the guest or the device writes),
   * carved from a slab the Sim owns rather than allocated alone: a typed array above 64 bytes lives
   * outside the V8 heap (malloc, a backing store the GC registers and frees; with the memset, ~2% of
   * the simulation in perf). Each range is handed out once, so it is as fresh as new Uint8Array(n);
   * a view keeps its slab alive while it lives. Nothing of the slab is state: no byte of it is read
   * before it is written, and a resumed Sim starts a new one.
   */
  bytes(n: number): Uint8Array {
    if (n > SLAB >> 2) return new Uint8Array(n);
    if (this.slabAt + n > this.slab.byteLength) {
      this.slab = new ArrayBuffer(SLAB);
      this.slabAt = 0;
    }
    const out = new Uint8Array(this.slab, this.slabAt, n);
    this.slabAt += n;
    return out;
  }

  state(): SimState {
    return { rng: this.rng.state(), counters: { ...this.counters } };
  }

  run(): void {
    if (!this.resumed) setup(this);
    this.pipe.restartCheckpoints();
    const maxSteps = (this.config.ops + 8) * STEPS_PER_OP;
    // the scheduler loop, in calls of up to STEPS_PER_CALL steps: V8 compiles a function whose loop
    // runs long on-stack (OSR) on every call, and a Sim's run is one call (recompiled for each Sim
    // of a process, ~12 ms of compiler CPU each); a function called many times keeps its code
    for (let steps = 0; steps >= 0; ) steps = this.runSteps(steps, maxSteps);
    this.finish();
  }

  /** The scheduler steps from `steps` on, up to STEPS_PER_CALL of them: the next step's number, or -1 once nothing can run. */
  private runSteps(from: number, maxSteps: number): number {
    for (let steps = from, end = from + STEPS_PER_CALL; steps < end; steps++) {
      this.pipe.maybeCheckpoint(); // at actor-step boundaries only: a run resumes between steps
      const mask = this.runnableMask();
      if (mask === 0 || steps > maxSteps) return -1;
      const set = this.runnableSet(mask);
      const runnable = set.actors;
      // the scheduler hook: uniform random choice, or PCT's priorities (schedule.ts)
      const pick = this.config.schedule ? pctPick(this, this.config.schedule, runnable) : runnable.length > 1 ? runnable[this.rng.int(runnable.length)]! : runnable[0]!;
      if (runnable.length > 1) {
        this.emit({ kind: 'sched', actor: 'sched', cause: 0, pick, runnable: set.text, seq: 0 });
      }
      this.step(pick);
    }
    return from + STEPS_PER_CALL;
  }

  /** The actors that can run now, as a bit mask (guest, each queue's worker, VMM): the scheduler's hot loop. */
  private runnableMask(): number {
    let mask = driverRunnable(this) ? 1 : 0;
    const rings = this.world.rings;
    for (let i = 0; i < rings.length; i++) {
      const r = rings[i];
      if (!r) continue; // a scenario may set up queue 1 before queue 0
      const q = r.q;
      if (q > MAX_MASK_Q) throw new Error(`queue ${q}: the device workers are vq0..vq3`);
      if (deviceRunnable(this, q)) mask |= 1 << (1 + q);
    }
    if (vmmRunnable(this, mask === 0)) mask |= VMM_BIT;
    return mask;
  }

  /** The actors of a mask in a fixed order (guest, each queue's worker by ring order, VMM). */
  private runnableSet(mask: number): { actors: readonly Actor[]; text: string } {
    let set = this.runnableSets.get(mask);
    if (set) return set;
    const out: Actor[] = [];
    if (mask & 1) out.push('cpu0');
    // bits are in queue order, the order of world.rings (indexed by queue)
    this.world.rings.forEach((r) => {
      if (mask & (1 << (1 + r.q))) out.push(VQ_ACTORS[r.q] ?? (`vq${r.q}` as Actor));
    });
    if (mask & VMM_BIT) out.push('vmm');
    set = { actors: out, text: out.join(',') };
    this.runnableSets.set(mask, set);
    return set;
  }

  private step(a: Actor): void {
    if (a === 'cpu0') driverStep(this);
    else if (a === 'vmm') vmmStep(this);
    else devicePass(this, VQ_INDEX[a] ?? Number(a.slice(2)));
  }

  // Nothing can run: the marker (the pipeline judges liveness there), then the driver is unbound
  // (rings freed, leaks reported).
  private finish(): void {
    this.emit({ kind: 'marker', actor: 'sched', cause: 0, n: 0, name: QUIESCENT, side: 'guest', seq: 0 });
    for (const d of this.world.devices.values()) {
      if (!d.probed) continue;
      // remove: reset the device, detach the buffers it never used (virtqueue_detach_unused_buf), free the rings
      for (const r of this.world.rings)
        if (r.dev === d.dev)
          for (const posted of [...r.extra.values()]) {
            for (const c of posted.chain) dmaUnmap(this, d, c.addr, c.len, c.flags & 2 ? 'FROM_DEVICE' : 'TO_DEVICE', 'page', 0);
            if (posted.table) dmaUnmap(this, d, posted.table, 16 * posted.chain.length, 'TO_DEVICE', 'single', 0);
          }
      if (d.fq.length) flushQueue(this, d);
      for (const r of this.world.rings)
        if (r.dev === d.dev && d.useDmaApi) {
          const m = d.dmaLive.get(r.desc)?.[0];
          if (m) dmaUnmap(this, d, r.desc, m.size, 'BIDIRECTIONAL', 'coherent', 0); // dma_free_coherent
        }
      this.emit({ kind: 'dev.teardown', actor: 'cpu0', cause: 0, dev: d.dev, seq: 0 });
    }
  }
}
