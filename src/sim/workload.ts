// Workloads decide what the guest asks for next, as intents: a device, an operation and a
// scatter-gather list of GPAs. They draw from their own RNG stream, never the scheduler's, so the
// same seed gives the same intents under every DMA path (what bisect compares).
import type { Seg } from '../events/schema.js';
import type { Rng } from './rng.js';
import { BLK, type Knobs, NET, type ScriptOp, type WorkloadName } from './config.js';

/** Buffer pages: the first half below 4 GiB, the second above (bounced for a 32-bit dma_mask). */
export const POOL_LOW = 0x1000_0000n;
export const POOL_HIGH = 0x1_1000_0000n;
export const POOL_PAGES = 512;

export function poolPage(i: number): bigint {
  const half = POOL_PAGES / 2;
  return i < half ? POOL_LOW + BigInt(i * 4096) : POOL_HIGH + BigInt((i - half) * 4096);
}

export interface Request {
  dev: number;
  what: 'tx' | 'rx' | 'read' | 'write';
  sector: bigint;
  segs: Seg[];
}

export interface Workload {
  /** requests in flight per device before the guest waits for completions */
  maxInflight: number;
  next(rng: Rng, op: number): Request;
}

/** A buffer of len bytes as page-bounded segments from distinct pool pages (an skb's frags, a bio's segments). */
function buffer(rng: Rng, len: number, write: number, firstOffset = true): Seg[] {
  const segs: Seg[] = [];
  const used = new Set<number>();
  let left = len;
  let first = firstOffset;
  while (left > 0) {
    const off = first ? rng.int(64) * 16 : 0;
    first = false;
    const n = Math.min(left, 4096 - off);
    let page = rng.int(POOL_PAGES);
    while (used.has(page)) page = (page + 1) % POOL_PAGES; // one request never maps a page twice
    used.add(page);
    segs.push({ gpa: poolPage(page) + BigInt(off), len: n, write });
    left -= n;
  }
  return segs;
}

/** Packet sizes 64 B..64 KiB, mostly small (as on a real link). */
function packetLen(rng: Rng): number {
  return rng.int(10) < 7 ? rng.range(64, 1514) : rng.range(1515, 65536);
}

function blkLen(rng: Rng): number {
  return 512 * (rng.int(10) < 6 ? rng.range(1, 8) : rng.range(9, 512)); // 512 B .. 256 KiB
}

const netTx: Workload = { maxInflight: 8, next: (rng) => ({ dev: NET, what: 'tx', sector: 0n, segs: buffer(rng, packetLen(rng), 0) }) };
const netRx: Workload = { maxInflight: 8, next: (rng) => ({ dev: NET, what: 'rx', sector: 0n, segs: buffer(rng, packetLen(rng), 1) }) };
const blk = (what: 'read' | 'write'): Workload => ({
  maxInflight: 8,
  next: (rng) => ({ dev: BLK, what, sector: BigInt(rng.int(1 << 20)), segs: buffer(rng, blkLen(rng), what === 'read' ? 1 : 0, false) }),
});
const mixed: Workload = {
  maxInflight: 8,
  next(rng, op) {
    const pick = rng.int(4);
    return [netTx, netRx, blk('read'), blk('write')][pick]!.next(rng, op);
  },
};
// The race workload: one request at a time, each one page-resident buffer from another page, so the
// IOVA the guest just unmapped is handed out again for another GPA (top-down IOVA reuse).
// (a class: its `next` is one function for every Sim, so its optimized code stays; a closure per Sim
// was compiled again for each new Sim of a process)
class Remap implements Workload {
  readonly maxInflight = 1;
  constructor(private readonly pages: number) {}
  next(rng: Rng): Request {
    const gpa = poolPage(rng.int(this.pages)) + BigInt(rng.int(64) * 16);
    const len = rng.range(64, 2048);
    const write = rng.int(2);
    return { dev: NET, what: write ? 'rx' : 'tx', sector: 0n, segs: [{ gpa, len, write }] };
  }
}
const remap = (pages: number): Workload => new Remap(pages);

export function workloadFor(name: WorkloadName, script?: ScriptOp[], scriptInflight = 1, knobs?: Knobs): Workload {
  switch (name) {
    case 'remap':
      return remap(knobs?.remapPages ?? 16);
    case 'net-tx':
      return netTx;
    case 'net-rx':
      return netRx;
    case 'blk-read':
      return blk('read');
    case 'blk-write':
      return blk('write');
    case 'mixed':
      return mixed;
    case 'scenario':
      return { maxInflight: 1, next: () => ({ dev: 0, what: 'tx', sector: 0n, segs: [] }) }; // the guest is the scenario's steps (scenario.ts)
    case 'script':
      return {
        maxInflight: scriptInflight,
        next: (_rng, op) => {
          const s = script![op % script!.length]!;
          const write = s.what === 'rx' || s.what === 'read' ? 1 : 0;
          return { dev: s.dev, what: s.what, sector: BigInt(s.sector ?? op), segs: s.segs.map((g) => ({ gpa: BigInt(g.gpa), len: g.len, write })) };
        },
      };
  }
}
