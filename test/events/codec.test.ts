import { describe, expect, it } from 'vitest';
import { decodeAt, decodeChunk, encodeOne, EventWriter } from '../../src/events/binary.js';
import { eventFromJson, eventToJson, JsonEventError } from '../../src/events/json.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { Sim } from '../../src/sim/sim.js';

function simEvents(path: 'iommu' | 'direct', seed = '3'): DmaEvent[] {
  const out: DmaEvent[] = [];
  new Sim({ workload: 'remap', path, ops: 6, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] }, seed, {
    event: (e) => out.push(structuredClone(e)),
  }).run();
  return out;
}

describe('event codecs', () => {
  it('binary and JSON forms round-trip every event of a run', () => {
    const events = [...simEvents('iommu'), ...simEvents('direct')];
    expect(new Set(events.map((e) => e.kind)).size).toBeGreaterThanOrEqual(20);
    for (const ev of events) {
      expect(decodeAt(encodeOne(ev), 0, ev.seq)).toEqual(ev);
      expect(eventFromJson(JSON.parse(JSON.stringify(eventToJson(ev))))).toEqual(ev);
    }
  });

  it('keeps 64-bit addresses at and above 2^53 exact', () => {
    const big = [2n ** 53n, 2n ** 53n + 1n, 0xffff_ffff_ffff_f000n, 0xffff_ffff_ffff_ffffn, 0x8000_0000_0000_0001n];
    for (const iova of big) {
      const ev = { seq: 9, kind: 'iotlb.update', actor: 'vmm', cause: 0, dev: 0x18, iova, size: 0x1000n, uaddr: iova - 1n, perm: 'RW', result: 'ok' } as DmaEvent;
      const back = decodeAt(encodeOne(ev), 0, 9) as typeof ev & { iova: bigint; uaddr: bigint };
      expect(back.iova).toBe(iova);
      expect(back.uaddr).toBe(iova - 1n);
      const json = JSON.stringify(eventToJson(ev));
      expect(json).toContain('"0x' + iova.toString(16) + '"');
      expect((eventFromJson(JSON.parse(json)) as typeof back).iova).toBe(iova);
    }
  });

  it('rejects values that do not fit instead of truncating them', () => {
    const w = new EventWriter();
    expect(() => w.write({ kind: 'iommu.unmap', actor: 'cpu0', cause: 0, dev: 0x18, iova: 2n ** 64n, size: 1n } as any)).toThrow(/64-bit/);
    expect(() => w.write({ kind: 'vring.kick', actor: 'cpu0', cause: 0, q: 256 } as any)).toThrow(/0\.\.255/);
  });

  it('names the bad field when JSON is malformed', () => {
    const good = eventToJson(simEvents('iommu').find((e) => e.kind === 'iommu.map')!);
    const bad = (patch: Record<string, unknown>) => {
      try {
        eventFromJson({ ...good, ...patch });
      } catch (e) {
        return (e as JsonEventError).field;
      }
      return null;
    };
    expect(bad({ iova: 12 })).toBe('iova');
    expect(bad({ perm: 'XX' })).toBe('perm');
    expect(bad({ kind: 'nope' })).toBe('kind');
    expect(bad({ seq: -1 })).toBe('seq');
  });

  it('decodes a packed chunk and detects truncation', () => {
    const events = simEvents('iommu').slice(0, 20);
    const w = new EventWriter();
    for (const e of events) w.write(e);
    const buf = Buffer.from(w.bytes());
    expect(decodeChunk(buf, 1, 20)).toEqual(events);
    expect(() => decodeChunk(buf.subarray(0, buf.length - 3), 1, 20)).toThrow(/truncated|ends early/);
  });
});
