import { describe, expect, it } from 'vitest';
import type { DmaEvent, EventOf } from '../../src/events/schema.js';
import type { Fault } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';

function run(path: 'iommu' | 'direct', faults: Fault[], seed: string, ops = 12): DmaEvent[] {
  const out: DmaEvent[] = [];
  new Sim({ workload: 'remap', path, ops, ringNum: 16, faults }, seed, { event: (e) => out.push({ ...e }) }).run();
  return out;
}

const findings = (evs: DmaEvent[]) => evs.filter((e): e is EventOf<'finding'> => e.kind === 'finding');

describe('the GPA-remap race', () => {
  for (const seed of ['1', '7', '42']) {
    it(`is found with a late invalidation, with its causal chain (seed ${seed})`, () => {
      const evs = run('iommu', [{ kind: 'delay-invalidate', arg: 1 }], seed);
      const f = findings(evs).filter((x) => x.cls === 'stale-iotlb' || x.cls === 'use-after-unmap');
      expect(f.length).toBeGreaterThan(0);
      // anything else found is a consequence of a stale access (e.g. following a stale indirect table)
      const all = findings(evs);
      expect(all.every((x) => f.includes(x) || all.some((y) => f.includes(y) && y.seq < x.seq))).toBe(true);
      const bySeq = new Map(evs.map((e) => [e.seq, e]));
      for (const finding of f) {
        const access = bySeq.get(finding.cause) as EventOf<'dev.access'>;
        expect(access.kind).toBe('dev.access');
        // The access resolved through an entry whose GPA is not what the IOMMU maps now.
        const fill = bySeq.get(access.entry) as EventOf<'iotlb.update'>;
        expect(fill.kind).toBe('iotlb.update');
        const kinds = finding.chain.map((s) => bySeq.get(s)!.kind);
        expect(kinds).toContain('iotlb.update');
        expect(kinds).toContain('iommu.unmap');
        expect(kinds).toContain('iommu.inv');
        expect(kinds[kinds.length - 1]).toBe('dev.access');
        if (finding.cls === 'stale-iotlb') {
          const remap = finding.chain.map((s) => bySeq.get(s)!).find((e) => e.kind === 'iommu.map') as EventOf<'iommu.map'>;
          expect(remap.iova).toBe(access.dma & ~0xfffn);
          expect(remap.gpa).not.toBe(access.gpa & ~0xfffn);
        }
        // The invalidation owed at the time of the access is delivered later (late, not lost).
        const req = finding.chain.map((s) => bySeq.get(s)!).find((e) => e.kind === 'iommu.inv')!;
        const delivered = evs.find((e) => e.kind === 'iotlb.invalidate' && e.cause === req.seq);
        expect(delivered === undefined || delivered.seq > access.seq).toBe(true);
      }
    });

    it(`is not found with prompt invalidation or on the direct path (seed ${seed})`, () => {
      const prompt = run('iommu', [], seed);
      expect(findings(prompt)).toEqual([]);
      // and the IOVA really was reused for another GPA: the race had its chance
      const maps = prompt.filter((e): e is EventOf<'iommu.map'> => e.kind === 'iommu.map');
      const byIova = new Map<bigint, Set<bigint>>();
      for (const m of maps) byIova.set(m.iova, (byIova.get(m.iova) ?? new Set()).add(m.gpa));
      expect([...byIova.values()].some((g) => g.size > 1)).toBe(true);
      expect(findings(run('direct', [], seed))).toEqual([]);
    });
  }

  it('reads the old GPA bytes through the stale entry, not the new buffer', () => {
    const evs = run('iommu', [{ kind: 'delay-invalidate', arg: 1 }], '7');
    // the stale access to a data buffer (not the header or an indirect table)
    const f = findings(evs).find((x) => x.cls === 'stale-iotlb' && (evs.find((e) => e.seq === x.cause) as EventOf<'dev.access'>).len > 64)!;
    const access = evs.find((e) => e.seq === f.cause) as EventOf<'dev.access'>;
    const intent = [...evs].reverse().find((e) => e.kind === 'intent' && e.seq < access.seq) as EventOf<'intent'>;
    const buf = intent.segs[0]!.gpa;
    expect(access.gpa).not.toBe(buf); // the guest posted buf; the device touched the old page
    expect(access.gpa & 0xfffn).toBe(buf & 0xfffn);
    expect(access.len).toBe(intent.segs[0]!.len);
  });
});
