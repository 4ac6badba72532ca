// What a simulated trace is made of: workload, DMA path, size, ring size and injected faults. The
// config and the seed (a string) are stored with the trace; together they determine every event.
import { PATHS, type PathName } from '../model/types.js';

export const WORKLOADS = ['remap'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export const FAULT_KINDS = ['delay-invalidate'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  arg: number;
}

export interface SimConfig {
  workload: WorkloadName;
  path: PathName;
  ops: number;
  ringNum: number;
  faults: Fault[];
}

export class ConfigError extends Error {}

export function parseFault(spec: string): Fault {
  const [kind, arg] = spec.split('=', 2) as [string, string | undefined];
  if (!(FAULT_KINDS as readonly string[]).includes(kind))
    throw new ConfigError(`unknown fault ${JSON.stringify(kind)} (known: ${FAULT_KINDS.join(', ')})`);
  let n = 1;
  if (arg !== undefined) {
    if (!/^[0-9]+$/.test(arg) || Number(arg) > 1_000_000) throw new ConfigError(`fault ${kind}: argument ${JSON.stringify(arg)} is not a count`);
    n = Number(arg);
  }
  return { kind: kind as FaultKind, arg: n };
}

export function validateConfig(c: SimConfig): SimConfig {
  if (!(WORKLOADS as readonly string[]).includes(c.workload))
    throw new ConfigError(`unknown workload ${JSON.stringify(c.workload)} (known: ${WORKLOADS.join(', ')})`);
  if (!(PATHS as readonly string[]).includes(c.path)) throw new ConfigError(`unknown path ${JSON.stringify(c.path)} (known: ${PATHS.join(', ')})`);
  if (!Number.isSafeInteger(c.ops) || c.ops < 0) throw new ConfigError(`ops must be a non-negative integer`);
  if (![2, 4, 8, 16, 32, 64, 128, 256].includes(c.ringNum)) throw new ConfigError(`ring size must be a power of two from 2 to 256`);
  return c;
}

/** The race workload delays the device-IOTLB invalidation by one device pass unless told otherwise. */
export function defaultFaults(workload: WorkloadName, path: PathName): Fault[] {
  return workload === 'remap' && path === 'iommu' ? [{ kind: 'delay-invalidate', arg: 1 }] : [];
}
