import { describe, expect, it } from 'vitest';
import { JUDGE } from '../../src/check/index.js';
import { mutate } from '../../src/engine/apply.js';
import { stateKeeping } from '../../src/engine/seek.js';
import { stateHash } from '../../src/engine/snapshot.js';
import { type DmaEvent, KIND_NAMES } from '../../src/events/schema.js';
import { emptyWorld, type World } from '../../src/model/world.js';
import type { SimConfig } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';

// seek runs only the checks of the kinds whose checkers keep state in the world (stateKeeping): it
// reports no findings, so that is the same world only if every other check leaves the world as it
// found it, whatever the world. Traces with faults, so that the checks do find something.
describe('the checks a seek leaves out', () => {
  const configs: SimConfig[] = [
    { workload: 'remap', path: 'iommu', ops: 30, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] },
    { workload: 'mixed', path: 'swiotlb', ops: 30, ringNum: 16, faults: [{ kind: 'skip-sync', arg: 0 }] },
    { workload: 'mixed', path: 'iommu-lazy', ops: 30, ringNum: 8, faults: [{ kind: 'skip-unmap', arg: 1 }], packed: true },
    { workload: 'net-rx', path: 'iommu', ops: 20, ringNum: 16, faults: [{ kind: 'zero-len-desc', arg: 0 }], variants: { dirtyLog: true } },
    { workload: 'blk-write', path: 'direct', ops: 20, ringNum: 16, faults: [{ kind: 'partial-write', arg: 0 }] },
  ];

  it('keep exactly the kinds whose checks keep state', () => {
    const kept = stateKeeping(JUDGE);
    for (const k of KIND_NAMES) {
      if (JUDGE.checks[k]?.keepsState) expect(kept.checks[k]).toBe(JUDGE.checks[k]);
      else expect(kept.checks[k]).toBeUndefined();
    }
    expect(KIND_NAMES.filter((k) => kept.checks[k]).length).toBeGreaterThan(0);
    const w = emptyWorld();
    expect(kept.liveness(w)).toEqual(JUDGE.liveness(w));
  });

  it('leave the world unchanged (pre-checks before the event, post-checks after it)', () => {
    let checked = 0;
    let found = 0;
    for (const cfg of configs) {
      const events: DmaEvent[] = [];
      new Sim(cfg, '5', { event: (e) => events.push(structuredClone(e)) }).run();
      const world: World = emptyWorld();
      const owned = new Set<Uint8Array>();
      events.forEach((ev, i) => {
        const c = JUDGE.checks[ev.kind] as { pre?: (w: World, e: DmaEvent) => unknown[] | null; post?: (w: World, e: DmaEvent) => unknown[] | null; keepsState?: true } | undefined;
        const probe = !!c && !c.keepsState && i % 2 === 0;
        if (probe && c.pre) {
          const before = stateHash(world);
          found += c.pre(world, structuredClone(ev))?.length ?? 0;
          expect(stateHash(world)).toBe(before);
          checked++;
        }
        mutate(world, ev, owned);
        if (probe && c.post) {
          const before = stateHash(world);
          found += c.post(world, structuredClone(ev))?.length ?? 0;
          expect(stateHash(world)).toBe(before);
          checked++;
        }
      });
    }
    expect(checked).toBeGreaterThan(300);
    expect(found).toBeGreaterThan(0); // the checks did judge something, on the worlds they were given
  });
});
