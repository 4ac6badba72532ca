// What a simulated trace is made of: the devices (each with its DMA path), the workload and its
// size, the kernel/QEMU variants in force and the injected faults. The config and the seed (a
// string) are stored with the trace; together they determine every event.
import type { ScenarioStep } from './scenario.js';
import { bdf } from '../events/format.js';
import { DEFAULT_VARIANTS, VARIANT_CHOICES, type Variants } from '../model/variants.js';
import { PATHS, type PathName, type TranslateMode } from '../model/types.js';
import { TRANSLATE_MODES } from '../events/schema.js';

export const WORKLOADS = ['remap', 'net-tx', 'net-rx', 'blk-read', 'blk-write', 'mixed', 'script', 'scenario'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export const FAULT_KINDS = [
  'delay-invalidate', // =K: the device-IOTLB INVALIDATE reaches vhost K device passes late
  'drop-invalidate', // [=N]: the Nth (default every) INVALIDATE never reaches vhost
  'reorder-update-invalidate', // [=N]: the UPDATE answering a miss is sent after the next INVALIDATE of its range
  'evict-iotlb', // [=N]: every Nth device pass (default 4) the device IOTLB evicts its oldest entry
  'wrong-page-update', // [=N]: the Nth UPDATE maps the next page's HVA
  'viommu-fault', // [=N]: the Nth miss faults in the vIOMMU: no UPDATE, the vq stays parked
  'skip-sync', // the driver reads a FROM_DEVICE buffer before unmapping (no sync for cpu)
  'skip-unmap', // [=N]: the Nth completed buffer is never unmapped
  'zero-len-desc', // [=N]: the Nth chain gets an extra zero-length device-writable descriptor
  'swiotlb-full', // =N: the Nth swiotlb mapping finds the pool full (DMA_MAPPING_ERROR)
  'zero-update', // the VMM writes UPDATE {iova 0, size 0, uaddr 0} (B1)
  'partial-write', // the device writes only the first half of each buffer it fills
  'unmap-size', // =N: the driver unmaps with N bytes more than it mapped
  'devtlb-inv-all', // [=N]: after the Nth completion the guest sends a device-IOTLB invalidation of [0, ~0] (Q2)
  'resync', // [=N]: after the Nth completion the guest sends a domain-selective invalidation (Q1)
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  arg: number;
}

export interface DeviceConfig {
  /** PCI requester id: 0x10 = 00:02.0 */
  dev: number;
  name: 'virtio-net' | 'virtio-blk';
  path: PathName;
  /** what the device does with desc.addr; by default what the path implies */
  translate?: TranslateMode;
  /** VIRTIO_F_ACCESS_PLATFORM offered by the device (legacy/transitional devices cannot) */
  accessPlatform?: boolean;
  backend?: 'vhost' | 'vhost-vdpa' | 'qemu';
  packed?: boolean;
  eventIdx?: boolean;
  indirect?: boolean;
  /** dma_mask as a hex string (64-bit by default; 32-bit makes buffers above 4 GiB bounce on the swiotlb path) */
  dmaMask?: string;
}

/** A scripted guest operation (the catalog's scenarios): the device, what, and the scatter-gather list. */
export interface ScriptOp {
  dev: number;
  what: 'tx' | 'rx' | 'read' | 'write';
  segs: { gpa: string; len: number }[];
  /** block requests: the sector (a hex or decimal string); default the op number */
  sector?: string;
}

export interface SimConfig {
  workload: WorkloadName;
  /** the path of every device unless a device says otherwise */
  path: PathName;
  ops: number;
  ringNum: number;
  faults: Fault[];
  variants?: Partial<Variants>;
  devices?: DeviceConfig[];
  packed?: boolean;
  eventIdx?: boolean;
  indirect?: boolean;
  script?: ScriptOp[];
  /** requests in flight per queue for a script (default 1: one at a time) */
  scriptInflight?: number;
  /** a protected guest (SEV/TDX): by default when any device uses swiotlb-force */
  protected?: boolean;
  /** workload 'scenario': the guest-side steps of a scenario file (src/sim/scenario.ts) */
  scenario?: ScenarioStep[];
  /** the scheduler: uniform random choice among runnable actors unless this says PCT (src/sim/schedule.ts) */
  schedule?: Schedule;
  /** workload knobs (explore's swarm mode switches them); absent = the defaults */
  knobs?: Knobs;
}

/** PCT (Burckhardt et al., ASPLOS 2010): random actor priorities and depth-1 priority change points among `steps` steps. */
export interface Schedule {
  strategy: 'pct';
  depth: number;
  steps: number;
}

export interface Knobs {
  /** chains a handler pass completes before the worker requeues itself (vhost_exceeds_weight; default unbounded) */
  passChains?: number;
  /** remap workload: distinct pool pages a request draws from (default 16; 1 = the reused IOVA always keeps its GPA) */
  remapPages?: number;
  /** events the VMM leaves an IOTLB miss unread while another actor can run (QEMU's main loop busy elsewhere; default 0) */
  missLatency?: number;
  /** queues per device direction: virtio-net queue pairs, virtio-blk request queues (default 1; 4 virtqueues at most in all) */
  queues?: number;
}

export const KNOBS: Record<keyof Knobs, { min: number; max: number; doc: string }> = {
  passChains: { min: 1, max: 256, doc: 'chains per device handler pass (vhost_exceeds_weight)' },
  remapPages: { min: 1, max: 256, doc: 'remap workload: distinct GPA pages (fewer: the reused IOVA changes GPA less often)' },
  missLatency: { min: 0, max: 1_000_000, doc: 'events an IOTLB miss waits for the VMM while other actors can run' },
  queues: { min: 1, max: 4, doc: 'queue pairs (virtio-net) / request queues (virtio-blk) per device' },
};

export function parseKnob(spec: string): Knobs {
  const [key, value] = spec.split('=', 2) as [string, string | undefined];
  const k = KNOBS[key as keyof Knobs];
  if (!k) throw new ConfigError(`unknown knob ${JSON.stringify(key)} (known: ${Object.keys(KNOBS).join(', ')})`);
  if (value === undefined || !/^[0-9]+$/.test(value) || Number(value) < k.min || Number(value) > k.max)
    throw new ConfigError(`knob ${key} must be an integer from ${k.min} to ${k.max}, got ${JSON.stringify(value ?? '')}`);
  return { [key]: Number(value) };
}

export class ConfigError extends Error {}

export function parseFault(spec: string): Fault {
  const [kind, arg] = spec.split('=', 2) as [string, string | undefined];
  if (!(FAULT_KINDS as readonly string[]).includes(kind))
    throw new ConfigError(`unknown fault ${JSON.stringify(kind)} (known: ${FAULT_KINDS.join(', ')})`);
  let n = 0;
  if (arg !== undefined) {
    if (!/^[0-9]+$/.test(arg) || Number(arg) > 1_000_000) throw new ConfigError(`fault ${kind}: argument ${JSON.stringify(arg)} is not a count`);
    n = Number(arg);
  }
  if (kind === 'delay-invalidate' && arg === undefined) n = 1;
  return { kind: kind as FaultKind, arg: n };
}

export function parseVariant(spec: string): Partial<Variants> {
  const [key, value] = spec.split('=', 2) as [string, string | undefined];
  const choices = VARIANT_CHOICES[key as keyof Variants];
  if (!choices) throw new ConfigError(`unknown variant ${JSON.stringify(key)} (known: ${Object.keys(VARIANT_CHOICES).join(', ')})`);
  if (value === undefined) throw new ConfigError(`variant ${key} needs a value: ${key}=…`);
  if (choices === 'number') {
    if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(value)) throw new ConfigError(`variant ${key}: ${JSON.stringify(value)} is not a number`);
    return { [key]: Number(value) };
  }
  const v = value === 'true' ? true : value === 'false' ? false : value;
  if (!choices.includes(v)) throw new ConfigError(`variant ${key}: ${JSON.stringify(value)} is not one of ${choices.join(', ')}`);
  return { [key]: v };
}

export const NET = 0x18; // 00:03.0
export const BLK = 0x10; // 00:02.0

/** The devices a workload drives when the config does not list them. */
export function defaultDevices(c: SimConfig): DeviceConfig[] {
  const common = { path: c.path, packed: c.packed, eventIdx: c.eventIdx, indirect: c.indirect };
  const net: DeviceConfig = { dev: NET, name: 'virtio-net', ...common };
  const blk: DeviceConfig = { dev: BLK, name: 'virtio-blk', ...common };
  if (c.workload === 'blk-read' || c.workload === 'blk-write') return [blk];
  if (c.workload === 'mixed') return [blk, net];
  return [net];
}

export function validateConfig(c: SimConfig): SimConfig {
  if (!(WORKLOADS as readonly string[]).includes(c.workload))
    throw new ConfigError(`unknown workload ${JSON.stringify(c.workload)} (known: ${WORKLOADS.join(', ')})`);
  if (!(PATHS as readonly string[]).includes(c.path)) throw new ConfigError(`unknown path ${JSON.stringify(c.path)} (known: ${PATHS.join(', ')})`);
  if (!Number.isSafeInteger(c.ops) || c.ops < 0) throw new ConfigError(`ops must be a non-negative integer`);
  if (![2, 4, 8, 16, 32, 64, 128, 256].includes(c.ringNum)) throw new ConfigError(`ring size must be a power of two from 2 to 256`);
  for (const d of c.devices ?? []) {
    if (!(PATHS as readonly string[]).includes(d.path)) throw new ConfigError(`device ${bdf(d.dev)}: unknown path ${JSON.stringify(d.path)}`);
    if (d.translate && !(TRANSLATE_MODES as readonly string[]).includes(d.translate)) throw new ConfigError(`device ${bdf(d.dev)}: unknown translate mode ${d.translate}`);
  }
  if (c.workload === 'script' && !c.script?.length) throw new ConfigError('workload script needs a script');
  if (c.workload === 'scenario' && !c.scenario?.length) throw new ConfigError('workload scenario needs steps');
  for (const [k, v] of Object.entries(c.variants ?? {})) parseVariant(`${k}=${String(v)}`);
  for (const [k, v] of Object.entries(c.knobs ?? {})) parseKnob(`${k}=${String(v)}`);
  const vqs = (c.devices ?? defaultDevices(c)).reduce((n, d) => n + (d.name === 'virtio-net' ? 2 : 1) * (c.knobs?.queues ?? 1), 0);
  if (vqs > 4) throw new ConfigError(`knob queues=${c.knobs?.queues}: ${vqs} virtqueues, at most 4 (the device workers vq0..vq3)`);
  if (c.schedule) {
    const { strategy, depth, steps } = c.schedule;
    if (strategy !== 'pct') throw new ConfigError(`unknown schedule ${JSON.stringify(strategy)} (known: pct)`);
    if (!Number.isSafeInteger(depth) || depth < 1 || depth > 16) throw new ConfigError('PCT depth must be an integer from 1 to 16');
    if (!Number.isSafeInteger(steps) || steps < 1 || steps > 1e9) throw new ConfigError('PCT steps must be a positive integer');
  }
  return c;
}

export function variantsOf(c: SimConfig): Variants {
  return { ...DEFAULT_VARIANTS, ...c.variants };
}
