// Workloads decide what the guest asks for next. `remap` is the race workload: serial requests
// (each completes before the next is posted), each from a different buffer page, so in IOTLB mode the
// IOVA the guest just unmapped is handed out again for another GPA (top-down IOVA reuse).
import type { OPS } from '../events/schema.js';
import type { Rng } from './rng.js';
import type { WorkloadName } from './config.js';

export const POOL_GPA = 0x1000_0000n;
export const POOL_PAGES = 16;

export interface Request {
  what: (typeof OPS)[number];
  gpa: bigint;
  len: number;
}

export interface Workload {
  maxInflight: number;
  next(rng: Rng, op: number): Request;
}

const remap: Workload = {
  maxInflight: 1,
  next(rng) {
    const page = rng.int(POOL_PAGES);
    const offset = rng.int(64) * 16;
    const len = rng.range(64, 2048);
    return { what: rng.int(2) === 0 ? 'tx' : 'rx', gpa: POOL_GPA + BigInt(page * 4096 + offset), len };
  },
};

export const WORKLOAD_IMPLS: Record<WorkloadName, Workload> = { remap };
