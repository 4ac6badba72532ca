import { describe, expect, it } from 'vitest';
import { stateHash } from '../../src/engine/snapshot.js';
import { cloneWorld, worldFromPlain, worldToPlain, type World } from '../../src/model/world.js';
import { Sim } from '../../src/sim/sim.js';

// The World's shape is declared once; clone, the plain form and the way back are derived from it.
describe('the world codec', () => {
  const worlds: World[] = [];
  for (const [path, workload] of [['iommu', 'remap'], ['swiotlb', 'mixed'], ['iommu-lazy', 'net-rx']] as const) {
    const sim = new Sim({ workload, path, ops: 30, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] }, '5', { event: () => {} });
    sim.run();
    worlds.push(sim.world);
  }

  it('plain form → world → plain form is exact, and the hash survives it', () => {
    for (const w of worlds) {
      const plain = JSON.parse(JSON.stringify(worldToPlain(w)));
      const back = worldFromPlain(plain, new Map(w.mem));
      expect(worldToPlain(back)).toEqual(worldToPlain(w));
      expect(stateHash(back)).toBe(stateHash(w));
      expect(plain.real).toBeUndefined(); // a simulated world has no real-trace state, and no field for it
    }
  });

  it('a clone is equal and shares nothing mutable but the copy-on-write pages', () => {
    for (const w of worlds) {
      const before = stateHash(w);
      const c = cloneWorld(w);
      expect(stateHash(c)).toBe(before);
      const d = [...c.devices.values()][0]!;
      d.iotlb.entries.push({ start: 1n, last: 2n, uaddr: 3n, perm: 'RO', seq: 1 });
      d.dmaLive.set(1n, [{ phys: 0n, size: 1, dir: 'TO_DEVICE', type: 'page', seq: 1, checked: false }]);
      c.rings[0]!.free.push(99);
      c.vmm.toRead.push(7);
      c.real = { x: new Map([[1n, 2]]) };
      expect(stateHash(w)).toBe(before);
      expect(stateHash(c)).not.toBe(before);
    }
  });
});
