// The simulation numbers its events itself (Sim.emit stores seq where the event is built) and hands
// them to Pipeline.emitNumbered; other producers call Pipeline.emit, which numbers them. Both must
// give the same stream: re-emitting a simulated trace's own events (without its findings, which the
// pipeline inserts again) through either entry reproduces the trace, seqs and findings included.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JUDGE } from '../../src/check/index.js';
import { Pipeline } from '../../src/engine/pipeline.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { FAULT_KINDS, type FaultKind } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';

function reEmit(trace: DmaEvent[], numbered: boolean): DmaEvent[] {
  const out: DmaEvent[] = [];
  const p = new Pipeline({ judge: JUDGE, mode: 'emit', event: (ev) => out.push({ ...ev }) });
  for (const e of trace) {
    if (e.kind === 'finding') continue;
    const ev = { ...e, seq: 0 } as DmaEvent;
    if (numbered) {
      ev.seq = p.seq + 1;
      p.emitNumbered(ev);
    } else p.emit(ev);
  }
  p.end();
  return out;
}

describe('Pipeline.emit and emitNumbered', () => {
  it('re-emit a simulated trace as it was recorded, findings included', () => {
    fc.assert(
      fc.property(fc.nat(500), fc.constantFrom('iommu' as const, 'iommu-lazy' as const, 'swiotlb' as const), fc.subarray([...FAULT_KINDS] as FaultKind[], { maxLength: 2 }), (seed, path, kinds) => {
        const trace: DmaEvent[] = [];
        new Sim({ workload: 'remap', path, ops: 8, ringNum: 16, faults: kinds.map((kind) => ({ kind, arg: 1 })) }, String(seed), { event: (e) => trace.push({ ...e }) }).run();
        expect(reEmit(trace, true)).toEqual(trace);
        expect(reEmit(trace, false)).toEqual(trace);
      }),
      { numRuns: 30 },
    );
  });
});
