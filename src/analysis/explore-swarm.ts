// Swarm testing (Groce, Zhang, Eide, Chen, Regehr, ISSTA 2012): rather than every feature in every
// run, each seed switches each feature on or off, so runs differ in *what* can happen, not only in
// the order. Here the features are the injected faults, the kernel/QEMU behaviour variants (the old,
// buggy behaviour of each) and the workload knobs: invalidation delay, miss-service latency, handler
// pass length, remap rate, ring size, queue count, ring features. The choice is drawn from the seed's own stream ("S/swarm"), so
// it is a function of the seed alone; what the user fixed with --fault/--variant/--knob stays.
import { Rng } from '../sim/rng.js';
import { defaultDevices, type Fault, type FaultKind, type Knobs, type SimConfig } from '../sim/config.js';
import type { Variants } from '../model/variants.js';

/** Fault kinds and the argument a swarm run gives them (rng → arg). */
const FAULTS: [FaultKind, (r: Rng) => number][] = [
  ['drop-invalidate', (r) => r.range(0, 3)],
  ['reorder-update-invalidate', (r) => r.range(0, 3)],
  ['evict-iotlb', (r) => r.range(1, 4)],
  ['wrong-page-update', (r) => r.range(1, 3)],
  ['viommu-fault', (r) => r.range(1, 3)],
  ['skip-sync', () => 0],
  ['skip-unmap', (r) => r.range(1, 3)],
  ['zero-len-desc', (r) => r.range(1, 3)],
  ['swiotlb-full', (r) => r.range(1, 4)],
  ['zero-update', () => 0],
  ['partial-write', () => 0],
  ['unmap-size', (r) => 16 * r.range(1, 8)],
  ['devtlb-inv-all', (r) => r.range(1, 3)],
  ['resync', (r) => r.range(1, 3)],
];

/** Each variant's pre-fix (or non-default) settings. */
const VARIANTS: [keyof Variants, readonly (string | number | boolean)[]][] = [
  ['wakeRule', ['gt']],
  ['sizeZero', ['accept', 'reject-all']],
  ['swiotlbMapCopy', ['dir']],
  ['swiotlbKeepOffset', [false]],
  ['swiotlbValidateSize', [false]],
  ['indirectUnmapFix', [false]],
  ['vtdResync', ['unmap-remap']],
  ['devIotlbClamp', [false]],
  ['logNumFix', [false]],
  ['vmmInvalidateAll', ['size0']],
  ['dirtyLog', [true]],
  ['minAlignMask', [0xfff]],
  ['asyncInvalidate', [true]],
  ['swiotlbSlots', [16, 64]],
];

/** A feature is on with probability 1/4: a run carries a few, not half of them all. */
const on = (r: Rng) => r.int(4) === 0;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[r.int(xs.length)]!;

export function swarmConfig(base: SimConfig, seed: string): SimConfig {
  const r = new Rng(`${seed}/swarm`);
  const fixed = new Set(base.faults.map((f) => f.kind));
  const faults: Fault[] = [...base.faults];
  for (const [kind, arg] of FAULTS) {
    const a = arg(r); // drawn whether on or not: the stream does not depend on earlier choices
    if (on(r) && !fixed.has(kind)) faults.push({ kind, arg: a });
  }
  // the invalidation delay: none, or K device passes
  const delay = r.range(1, 4);
  if (on(r) && !fixed.has('delay-invalidate')) faults.push({ kind: 'delay-invalidate', arg: delay });
  const variants: Record<string, unknown> = { ...base.variants };
  for (const [key, choices] of VARIANTS) {
    const v = pick(r, choices);
    if (on(r) && !(key in (base.variants ?? {}))) variants[key] = v;
  }
  const knobs: Knobs = { ...base.knobs };
  const passChains = pick(r, [1, 2, 4]);
  if (on(r) && knobs.passChains === undefined) knobs.passChains = passChains;
  const remapPages = pick(r, [1, 2, 4, 64]);
  if (on(r) && knobs.remapPages === undefined && base.workload === 'remap') knobs.remapPages = remapPages;
  const missLatency = pick(r, [8, 32, 128]);
  if (on(r) && knobs.missLatency === undefined) knobs.missLatency = missLatency;
  // a second queue pair / request queue where the device workers allow it (4 virtqueues in all)
  const queues = on(r);
  const vqs = (base.devices ?? defaultDevices(base)).reduce((n, d) => n + (d.name === 'virtio-net' ? 4 : 2), 0);
  if (queues && knobs.queues === undefined && vqs <= 4) knobs.queues = 2;
  const ring = pick(r, [8, 16, 64]);
  const ringNum = on(r) ? Math.min(ring, base.ringNum) : base.ringNum;
  const packed = on(r) ? true : base.packed;
  const eventIdx = on(r) ? false : base.eventIdx;
  const indirect = on(r) ? false : base.indirect;
  const config: SimConfig = { ...base, ringNum, faults, variants: variants as Partial<Variants>, packed, eventIdx, indirect };
  if (Object.keys(knobs).length) config.knobs = knobs;
  else delete config.knobs;
  // devices the options listed carry the ring features themselves (cli/sim-options.ts builds them so)
  if (base.devices) config.devices = base.devices.map((d) => ({ ...d, packed, eventIdx, indirect }));
  return config;
}
