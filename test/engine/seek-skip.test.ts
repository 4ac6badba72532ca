import { describe, expect, it } from 'vitest';
import { mutate } from '../../src/engine/apply.js';
import { inertAt, INERT_KINDS } from '../../src/engine/seek.js';
import { stateHash } from '../../src/engine/snapshot.js';
import { encodeOne } from '../../src/events/binary.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { emptyWorld } from '../../src/model/world.js';
import type { SimConfig } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';

// seek steps over events it classifies as inert without decoding them: each such event must leave
// the world exactly as it was, whatever the world.
describe('events seek skips', () => {
  const configs: SimConfig[] = [
    { workload: 'remap', path: 'iommu', ops: 30, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] },
    { workload: 'mixed', path: 'swiotlb', ops: 30, ringNum: 16, faults: [{ kind: 'skip-sync', arg: 0 }] },
    { workload: 'mixed', path: 'iommu-lazy', ops: 30, ringNum: 8, faults: [], packed: true },
    { workload: 'net-rx', path: 'iommu', ops: 20, ringNum: 16, faults: [{ kind: 'zero-len-desc', arg: 0 }], variants: { dirtyLog: true } },
  ];
  it('leave the world unchanged', () => {
    let checked = 0;
    for (const cfg of configs) {
      const events: DmaEvent[] = [];
      new Sim(cfg, '2', { event: (e) => events.push(structuredClone(e)) }).run();
      const world = emptyWorld();
      const owned = new Set<Uint8Array>();
      events.forEach((ev, i) => {
        const bytes = encodeOne(ev);
        const inert = inertAt(bytes, 0, bytes.length);
        expect(inert).toBe(INERT_KINDS.includes(ev.kind) || (ev.kind === 'dev.access' && ev.dir === 'read'));
        if (inert && i % 3 === 0) {
          const before = stateHash(world);
          mutate(world, ev, owned);
          expect(stateHash(world)).toBe(before);
          checked++;
        } else mutate(world, ev, owned);
      });
    }
    // the imported kinds the simulation does not produce
    const world = emptyWorld();
    const before = stateHash(world);
    const imported = [
      { seq: 1, kind: 'vq.pop', actor: 'vmm', cause: 0, dev: 1, q: 0, elem: 5n, inNum: 1, outNum: 1 },
      { seq: 2, kind: 'vq.fill', actor: 'vmm', cause: 0, dev: 1, q: 0, elem: 5n, len: 3, count: 1 },
      { seq: 3, kind: 'opaque', actor: 'vmm', cause: 0, side: 'host', event: 'x', text: 'y' },
      { seq: 4, kind: 'marker', actor: 'vmm', cause: 0, n: 1, name: 'm', side: 'guest' },
    ] as DmaEvent[];
    for (const ev of imported) {
      const bytes = encodeOne(ev);
      expect(inertAt(bytes, 0, bytes.length)).toBe(true);
      mutate(world, ev);
    }
    expect(stateHash(world)).toBe(before);
    expect(checked).toBeGreaterThan(100);
  });
  it('a malformed event is never taken for inert', () => {
    const bytes = encodeOne({ seq: 1, kind: 'sched', actor: 'sched', cause: 0, pick: 'cpu0', runnable: 'cpu0,vmm' } as DmaEvent);
    expect(inertAt(bytes, 0, bytes.length)).toBe(true);
    expect(inertAt(bytes.subarray(0, bytes.length - 1), 0, bytes.length)).toBe(false);
    expect(inertAt(bytes, 0, 6)).toBe(false);
  });
});
