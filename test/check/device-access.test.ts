// The dev.access post-check finds the ring's device once and hands it to both checkers: it must judge
// every access exactly as running the two exported checkers one after the other does (the reference
// below is the combination as it was before), on simulated accesses and on accesses whose recorded
// entry, addresses, queue or route were altered (the findings' paths).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkDeviceAccess } from '../../src/check/coherence.js';
import { runPostCheckers } from '../../src/check/index.js';
import { validateIotlbAccess } from '../../src/check/validate-iotlb.js';
import type { DmaEvent, EventOf, NewEvent } from '../../src/events/schema.js';
import type { World } from '../../src/model/world.js';
import { FAULT_KINDS, type FaultKind } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';

const IMPOSSIBLE = new Set(['iotlb-entry-gone', 'iotlb-resolution-mismatch']);

/** The dev.access judgement as two separate checkers, each finding the device itself. */
function reference(w: World, ev: EventOf<'dev.access'>): NewEvent[] {
  const c = checkDeviceAccess(w, ev);
  if (ev.via !== 'iotlb' && ev.via !== 'meta') return c;
  const v = validateIotlbAccess(w, ev);
  if (!v.length) return c;
  if (!v.some((f) => f.kind === 'finding' && IMPOSSIBLE.has(f.cls))) return [...v, ...c];
  return [...v, ...c.filter((f) => f.kind !== 'finding' || (f.cls !== 'stale-iotlb' && f.cls !== 'use-after-unmap'))];
}

/** The access as recorded, and altered copies that take the checkers' other paths. */
function variants(ev: EventOf<'dev.access'>): EventOf<'dev.access'>[] {
  return [
    ev,
    { ...ev, entry: ev.entry + 1 },
    { ...ev, hva: ev.hva + 0x1000n },
    { ...ev, gpa: ev.gpa ^ 0x1000n },
    { ...ev, dma: ev.dma + 0x10_0000n },
    { ...ev, len: ev.len + 0x2000 },
    { ...ev, q: ev.q + 1 },
    { ...ev, via: ev.via === 'iotlb' ? 'gpa' : 'iotlb' },
    { ...ev, dir: ev.dir === 'read' ? 'write' : 'read' },
  ];
}

const PATHS = ['iommu', 'iommu-lazy', 'direct', 'swiotlb'] as const;

describe('dev.access post-check', () => {
  it('judges every access as checkDeviceAccess then validateIotlbAccess do', () => {
    let compared = 0;
    let found = 0;
    fc.assert(
      fc.property(
        fc.nat(1000),
        fc.constantFrom(...PATHS),
        fc.constantFrom(...(['remap', 'net-rx', 'blk-read'] as const)),
        fc.subarray([...FAULT_KINDS] as FaultKind[], { maxLength: 2 }),
        (seed, path, workload, kinds) => {
          const faults = kinds.map((kind) => ({ kind, arg: 1 }));
          const sink = {
            event(e: DmaEvent, w?: World) {
              if (e.kind !== 'dev.access' || !w) return;
              for (const ev of variants(e)) {
                const got = runPostCheckers(w, ev);
                const want = reference(w, ev);
                expect(got.map((f) => f.kind === 'finding' && `${f.cls}: ${f.message}`)).toEqual(want.map((f) => f.kind === 'finding' && `${f.cls}: ${f.message}`));
                compared++;
                found += got.length;
              }
            },
          };
          new Sim({ workload, path, ops: 6, ringNum: 16, faults }, String(seed), sink as { event(e: DmaEvent): void }).run();
        },
      ),
      { numRuns: 40 },
    );
    // not vacuous: accesses were judged, and the altered copies reached the findings' paths
    expect(compared).toBeGreaterThan(1000);
    expect(found).toBeGreaterThan(100);
  });
});
