// The options that describe a simulated run (workload, path, seed, size, faults, variants, ring
// features), shared by record, bisect, perturb and minimize, and their translation into a SimConfig.
import type { Command } from 'commander';
import { UsageError } from '../src/errors.js';
import { PATHS, type PathName } from '../src/model/types.js';
import {
  ConfigError,
  defaultDevices,
  type DeviceConfig,
  FAULT_KINDS,
  KNOBS,
  parseFault,
  parseKnob,
  parseVariant,
  type SimConfig,
  validateConfig,
  type WorkloadName,
  WORKLOADS,
} from '../src/sim/config.js';
import { pctStepsFor } from '../src/sim/schedule.js';
import { parseCount, parseSeed } from './common.js';

export interface SimOpts {
  workload: string;
  path?: string;
  seed: string;
  ops?: string;
  ring?: string;
  fault?: string[];
  variant?: string[];
  packed?: boolean;
  eventIdx?: boolean;
  indirect?: boolean;
  translate?: string;
  backend?: string;
  accessPlatform?: boolean;
  protected?: boolean;
  knob?: string[];
  pctDepth?: string;
  pctSteps?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function addSimOptions(cmd: Command, withPath = true): Command {
  cmd
    .option('--workload <name>', `workload: ${WORKLOADS.filter((w) => w !== 'script' && w !== 'scenario').join(' | ')}`, 'remap')
    .option('--seed <n>', 'random seed (an integer; stored as a string)', '1')
    .option('--ops <n>', 'guest operations to run', '8')
    .option('--ring <n>', 'virtqueue size (power of two, 2..256)', '256')
    .option('--fault <kind[=arg]>', `inject a fault (repeatable; default: none): ${FAULT_KINDS.join(', ')}`, collect, [])
    .option('--variant <key=value>', 'a kernel/QEMU behaviour variant (repeatable), e.g. wakeRule=gt, sizeZero=reject-all, asyncInvalidate=true', collect, [])
    .option('--packed', 'negotiate VIRTIO_F_RING_PACKED')
    .option('--no-event-idx', 'do not negotiate VIRTIO_RING_F_EVENT_IDX')
    .option('--no-indirect', 'do not negotiate VIRTIO_RING_F_INDIRECT_DESC')
    .option('--no-access-platform', 'the device does not offer VIRTIO_F_ACCESS_PLATFORM (legacy/transitional)')
    .option('--translate <mode>', 'what the device does with desc.addr: gpa | iova | shadow (default: what the path implies)')
    .option('--backend <name>', 'vhost | vhost-vdpa | qemu', 'vhost')
    .option('--protected', 'a protected guest (SEV/TDX): ACCESS_PLATFORM required')
    .option('--knob <key=value>', `a workload knob (repeatable): ${Object.keys(KNOBS).join(', ')}`, collect, [])
    .option('--pct-depth <d>', 'schedule with PCT of depth d (priority change points) instead of uniform random choice')
    .option('--pct-steps <k>', 'PCT: the steps the d-1 change points are drawn from (default: 16 per guest operation, at least 32)');
  if (withPath) cmd.option('--path <name>', `DMA path: ${PATHS.join(' | ')}`, 'iommu');
  return cmd;
}

function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
}

/** The SimConfig the options describe (path: `path` if given, else --path); bad values are usage errors. */
export function simConfigOf(o: SimOpts, path = o.path ?? 'iommu'): { config: SimConfig; seed: string } {
  const seed = parseSeed(o.seed);
  if (!(WORKLOADS as readonly string[]).includes(o.workload) || o.workload === 'script' || o.workload === 'scenario') throw new UsageError(`unknown workload ${JSON.stringify(o.workload)} (known: ${WORKLOADS.filter((w) => w !== 'script' && w !== 'scenario').join(', ')})`);
  if (!(PATHS as readonly string[]).includes(path)) throw new UsageError(`unknown path ${JSON.stringify(path)} (known: ${PATHS.join(', ')})`);
  // no fault unless one is asked for: nothing is injected behind the user's back
  const faults = usage(() => (o.fault ?? []).filter((f) => f !== 'none').map(parseFault));
  const variants = usage(() => (o.variant ?? []).reduce((acc, v) => ({ ...acc, ...parseVariant(v) }), {}));
  const config: SimConfig = {
    workload: o.workload as WorkloadName,
    path: path as PathName,
    ops: parseCount('--ops', o.ops, 0, 100_000_000)!,
    ringNum: parseCount('--ring', o.ring, 2, 256)!,
    faults,
    variants,
    packed: !!o.packed,
    eventIdx: o.eventIdx !== false,
    indirect: o.indirect !== false,
  };
  if (o.translate || (o.backend && o.backend !== 'vhost') || o.accessPlatform === false) {
    if (o.translate && !['gpa', 'iova', 'shadow'].includes(o.translate)) throw new UsageError(`--translate must be gpa, iova or shadow`);
    if (!['vhost', 'vhost-vdpa', 'qemu'].includes(o.backend ?? 'vhost')) throw new UsageError(`--backend must be vhost, vhost-vdpa or qemu`);
    config.devices = defaultDevices(config).map((d) => ({
      ...d,
      translate: o.translate as DeviceConfig['translate'],
      backend: o.backend as DeviceConfig['backend'],
      accessPlatform: o.accessPlatform === false ? false : undefined,
    }));
  }
  if (o.protected) config.protected = true;
  const knobs = usage(() => (o.knob ?? []).reduce((acc, v) => ({ ...acc, ...parseKnob(v) }), {}));
  if (Object.keys(knobs).length) config.knobs = knobs;
  if (o.pctDepth !== undefined) {
    const depth = parseCount('--pct-depth', o.pctDepth, 1, 16)!;
    const steps = parseCount('--pct-steps', o.pctSteps, 1, 1e9) ?? pctStepsFor(config.ops);
    config.schedule = { strategy: 'pct', depth, steps };
  } else if (o.pctSteps !== undefined) throw new UsageError('--pct-steps needs --pct-depth');
  usage(() => validateConfig(config));
  return { config, seed };
}

