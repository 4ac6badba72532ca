// The simulation: a scheduler that runs one actor step at a time (guest CPU, device vq worker, VMM)
// and the emit path every model transition goes through. An event is applied to the world the
// moment it is emitted, then handed to the sink (the recorder or the replay verifier), then judged
// by the checkers. All actor progress lives in the world, so a run can resume from any checkpoint
// given the world and the RNG state.
import { runCheckers } from '../check/index.js';
import type { Actor, DmaEvent, NewEvent } from '../events/schema.js';
import { mutate } from '../engine/apply.js';
import { emptyWorld, type World } from '../model/world.js';
import type { Fault, SimConfig } from './config.js';
import { deviceRunnable, devicePass } from './device.js';
import { driverRunnable, driverStep } from './driver.js';
import { Rng, type RngState } from './rng.js';
import { setup } from './setup.js';
import { vmmRunnable, vmmStep } from './vmm.js';

export interface SimSink {
  event(ev: DmaEvent): void;
  /** Called at actor-step boundaries once `checkpointEvery` events have passed since the last one. */
  checkpoint?(seq: number, world: World, rng: RngState): void;
}

export interface Resume {
  seq: number;
  world: World;
  rng: RngState;
}

const ACTOR_ORDER: Actor[] = ['cpu0', 'vq0', 'vmm'];
/** Upper bound on scheduler steps per guest op; a run past it is a model bug, not a trace. */
const STEPS_PER_OP = 64;

export class Sim {
  world: World;
  rng: Rng;
  seq: number;
  /** pages this run owns (copied since the last checkpoint): written in place, never shared */
  owned = new Set<Uint8Array>();
  private readonly resumed: boolean;

  constructor(
    readonly config: SimConfig,
    readonly seed: string,
    private readonly sink: SimSink,
    readonly checkpointEvery = 0,
    resume?: Resume,
  ) {
    this.world = resume ? resume.world : emptyWorld();
    this.rng = new Rng(seed, resume?.rng);
    this.seq = resume ? resume.seq : 0;
    this.resumed = !!resume;
  }

  fault(kind: Fault['kind']): Fault | undefined {
    return this.config.faults.find((f) => f.kind === kind);
  }

  emit(e: NewEvent): number {
    const ev = e as DmaEvent;
    ev.seq = ++this.seq;
    mutate(this.world, ev, this.owned);
    this.sink.event(ev);
    if (ev.kind !== 'finding') {
      const f = runCheckers(this.world, ev);
      if (f) this.emit(f);
    }
    return ev.seq;
  }

  run(): void {
    if (!this.resumed) setup(this);
    let nextCheckpoint = this.checkpointEvery ? (Math.floor(this.seq / this.checkpointEvery) + 1) * this.checkpointEvery : Infinity;
    const maxSteps = (this.config.ops + 4) * STEPS_PER_OP;
    for (let steps = 0; ; steps++) {
      if (this.seq >= nextCheckpoint) {
        this.sink.checkpoint?.(this.seq, this.world, this.rng.state());
        this.owned = new Set();
        nextCheckpoint = (Math.floor(this.seq / this.checkpointEvery) + 1) * this.checkpointEvery;
      }
      const runnable = ACTOR_ORDER.filter((a) => this.runnable(a));
      if (runnable.length === 0 || steps > maxSteps) break;
      let pick = runnable[0]!;
      if (runnable.length > 1) {
        pick = runnable[this.rng.int(runnable.length)]!;
        let mask = 0;
        for (const a of runnable) mask |= 1 << ACTOR_ORDER.indexOf(a);
        this.emit({ kind: 'sched', actor: 'sched', cause: 0, pick, runnable: mask });
      }
      this.step(pick);
    }
    this.finish();
  }

  private runnable(a: Actor): boolean {
    if (a === 'cpu0') return driverRunnable(this);
    if (a === 'vq0') return deviceRunnable(this, 0);
    return vmmRunnable(this);
  }

  private step(a: Actor): void {
    if (a === 'cpu0') driverStep(this);
    else if (a === 'vq0') devicePass(this, 0);
    else vmmStep(this);
  }

  // Liveness: a vq still parked on a miss nobody will answer when nothing else can run.
  private finish(): void {
    for (const m of this.world.iotlb.pending) {
      this.emit({
        kind: 'finding',
        actor: 'check',
        cause: m.seq,
        cls: 'vq-parked',
        message: `vq ${m.q} is parked forever: the IOTLB miss for IOVA 0x${m.iova.toString(16)} at #${m.seq} was never answered by a covering UPDATE`,
        iova: m.iova,
        gpa: 0n,
        chain: [m.seq],
      });
    }
  }
}
