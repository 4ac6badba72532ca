import { describe, expect, it } from 'vitest';
import { project, type OpProjection } from '../../src/analysis/projection.js';
import { chunksOf } from '../../src/engine/chunks.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { PATHS } from '../../src/model/types.js';
import type { SimConfig, WorkloadName } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';

function run(cfg: SimConfig, seed: string): DmaEvent[] {
  const out: DmaEvent[] = [];
  new Sim(cfg, seed, { event: (e) => out.push({ ...e }) }).run();
  return out;
}

/** What the guest and device observe, per op, without the seqs and addresses that differ by path. */
function observed(events: DmaEvent[]) {
  return [...project(chunksOf(events)).values()].map((o: OpProjection) => ({
    op: o.op,
    what: o.what,
    deviceRead: o.deviceRead,
    deviceReadBytes: o.deviceReadBytes,
    deviceWrote: o.deviceWrote,
    usedLen: o.usedLen,
    guestRead: o.guestRead,
    completion: o.completion,
    completed: o.completed,
  }));
}

const WORKLOADS: WorkloadName[] = ['net-tx', 'net-rx', 'blk-read', 'blk-write', 'mixed'];

describe('every DMA path gives the guest the same outcome when nothing goes wrong', () => {
  for (const workload of WORKLOADS) {
    it(`${workload}: direct = dma-direct = iommu = iommu-lazy = swiotlb = swiotlb-force = passthrough`, () => {
      const base: SimConfig = { workload, path: 'direct', ops: 24, ringNum: 64, faults: [] };
      const reference = run(base, '11');
      const ref = observed(reference);
      expect(ref.length).toBe(24);
      expect(ref.every((o) => o.completed)).toBe(true);
      // the data really moved: something was read or written on every op
      expect(ref.every((o) => o.deviceReadBytes > 0 || o.usedLen > 0)).toBe(true);
      for (const path of PATHS.filter((p) => p !== 'direct')) {
        const events = run({ ...base, path }, '11');
        expect(events.filter((e) => e.kind === 'finding').map((e) => (e as { cls: string }).cls), `${path} findings`).toEqual([]);
        expect(observed(events), path).toEqual(ref);
      }
    });
  }

  it('the paths really differ underneath: IOVAs, IOTLB traffic, bounce copies', () => {
    const base: SimConfig = { workload: 'net-rx', path: 'direct', ops: 8, ringNum: 64, faults: [] };
    const kinds = (p: SimConfig['path']) => new Set(run({ ...base, path: p }, '3').map((e) => e.kind));
    expect(kinds('iommu').has('iotlb.update')).toBe(true);
    expect(kinds('direct').has('iotlb.update')).toBe(false);
    expect(kinds('swiotlb-force').has('swiotlb.bounce')).toBe(true);
    expect(kinds('dma-direct').has('dma.map')).toBe(true);
    expect(kinds('direct').has('dma.map')).toBe(false);
  });

  it('packed rings and split rings without indirect descriptors give the same outcome too', () => {
    const base: SimConfig = { workload: 'mixed', path: 'iommu', ops: 16, ringNum: 64, faults: [] };
    const ref = observed(run(base, '5'));
    expect(observed(run({ ...base, packed: true }, '5')).map((o) => [o.deviceRead, o.deviceWrote, o.guestRead])).toEqual(ref.map((o) => [o.deviceRead, o.deviceWrote, o.guestRead]));
    expect(observed(run({ ...base, path: 'swiotlb-force', packed: true, indirect: false, eventIdx: false }, '5')).map((o) => [o.deviceRead, o.deviceWrote, o.guestRead])).toEqual(
      ref.map((o) => [o.deviceRead, o.deviceWrote, o.guestRead]),
    );
  });
});
