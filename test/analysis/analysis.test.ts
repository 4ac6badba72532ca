import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bisectRun, bisectTraces } from '../../src/app/bisect.js';
import { minimizeTrace, whyBytes } from '../../src/app/analyze.js';
import { record } from '../../src/app/record.js';
import { stateAt } from '../../src/app/state.js';
import { logTrace } from '../../src/app/log.js';
import { minimize } from '../../src/analysis/minimize.js';
import { perturb } from '../../src/analysis/perturb.js';
import type { DmaEvent, EventOf } from '../../src/events/schema.js';
import { parseJsonl } from '../../src/events/jsonl.js';
import { SCENARIOS } from '../../src/sim/catalog.js';
import type { SimConfig } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';
import { cli, tempDir } from '../helpers.js';

const events = (db: string, trace: number): DmaEvent[] => {
  const out: DmaEvent[] = [];
  logTrace(db, String(trace), {}, (e) => out.push(e));
  return out;
};

describe('bisect', () => {
  it('finds R1 between direct and iommu with a late invalidation, at the operation the stale access served', () => {
    const db = join(tempDir(), 'b.db');
    const base = { workload: 'remap' as const, ops: 12, ringNum: 16, faults: [{ kind: 'delay-invalidate' as const, arg: 1 }] };
    const r = bisectRun({ db, seed: '7', base, pathA: 'direct', pathB: 'iommu' });
    expect(r.diverged).toBe(true);
    // the right op: the request the first stale device access belonged to
    const b = events(db, r.traces[1]);
    const stale = b.find((e) => e.kind === 'finding' && (e as EventOf<'finding'>).cls === 'stale-iotlb' && (b.find((x) => x.seq === e.cause) as EventOf<'dev.access'>).area === 'buf')!;
    const intent = [...b].reverse().find((e) => e.kind === 'intent' && e.seq < stale.seq) as EventOf<'intent'>;
    expect(r.op).toBe(intent.op);
    expect(r.bytes.length).toBeGreaterThan(0);
    expect(r.probes).toBeLessThanOrEqual(Math.ceil(Math.log2(12)) + 1);
    // the chain names the fill, the unmap, the remap, the stale access and the late invalidation
    const kinds = r.chain.map((c) => c.kind);
    for (const k of ['iotlb.update', 'iommu.unmap', 'iommu.map', 'dev.access', 'iotlb.invalidate']) expect(kinds).toContain(k);
    const access = r.chain.find((c) => c.kind === 'dev.access')!;
    const late = r.chain.find((c) => c.kind === 'iotlb.invalidate')!;
    expect(late.seq).toBeGreaterThan(access.seq);
  });

  it('is silent on a clean pair, and the CLI exits 0 / 4 / 3', () => {
    const dir = tempDir();
    const db = join(dir, 'b.db');
    const clean = bisectRun({ db, seed: '7', base: { workload: 'remap', ops: 12, ringNum: 16, faults: [] }, pathA: 'direct', pathB: 'iommu' });
    expect(clean.diverged).toBe(false);
    expect(cli(['bisect', String(clean.traces[0]), String(clean.traces[1]), '--db', db]).code).toBe(0);
    const bad = bisectRun({ db, seed: '7', base: { workload: 'remap', ops: 12, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] }, pathA: 'direct', pathB: 'iommu' });
    const c = cli(['bisect', String(bad.traces[0]), String(bad.traces[1]), '--db', db, '--json']);
    expect(c.code).toBe(4);
    const j = JSON.parse(c.stdout);
    for (const k of ['diverged', 'op', 'probes', 'a', 'b', 'bytes', 'chain']) expect(j).toHaveProperty(k);
    const other = record({ db, seed: '8', config: { workload: 'remap', path: 'iommu', ops: 12, ringNum: 16, faults: [] } });
    expect(cli(['bisect', String(clean.traces[0]), String(other.trace), '--db', db]).code).toBe(3);
    // a second bisect reads the stored projections
    expect(bisectTraces(db, String(bad.traces[0]), String(bad.traces[1])).op).toBe(j.op);
  });

  it('finds S1 between direct and swiotlb with the pre-CVE-2022-0854 copy rule, and not with the fixed one', () => {
    const db = join(tempDir(), 's.db');
    // a small pool, so slots are reused and hold a previous user's bytes
    const base = (copy: 'dir' | 'always') => ({ workload: 'mixed' as const, ops: 24, ringNum: 16, faults: [{ kind: 'partial-write' as const, arg: 0 }], variants: { swiotlbMapCopy: copy, swiotlbSlots: 128 } });
    const buggy = bisectRun({ db, seed: '1', base: base('dir'), pathA: 'direct', pathB: 'swiotlb-force' });
    expect(buggy.diverged).toBe(true);
    expect(buggy.part).toBe('guestRead');
    expect(buggy.chain.some((c) => c.text.includes('swiotlb-leak') || c.kind === 'swiotlb.bounce' || c.kind === 'dev.access')).toBe(true);
    expect(bisectRun({ db, seed: '1', base: base('always'), pathA: 'direct', pathB: 'swiotlb-force' }).diverged).toBe(false);
  });
});

describe('perturbation', () => {
  it('reports where the race became inevitable, with the late invalidation owed across the window', () => {
    const cfg: SimConfig = { workload: 'remap', path: 'iommu', ops: 12, ringNum: 16, faults: [], variants: { asyncInvalidate: true } };
    const r = perturb(cfg, '1', { variants: 8, every: 8 });
    expect(r.signature).toBe('stale-iotlb');
    expect(r.points.length).toBeGreaterThan(3);
    expect(r.points.some((p) => p.fraction < 1)).toBe(true); // the schedule could still avoid it early on
    expect(r.lastAvoidableAt).not.toBeNull();
    expect(r.inevitableAt!).toBeGreaterThan(r.lastAvoidableAt!);
    // the window holds the decision: the device ran before the VMM delivered the invalidation
    expect(r.window.some((e) => e.kind === 'sched')).toBe(true);
    const failing = r.window.find((e) => e.kind === 'finding') as EventOf<'finding'>;
    const page = failing.iova & ~0xfffn;
    expect(r.owed.some((e) => e.kind === 'iommu.inv' && e.iova === page)).toBe(true);
  });
});

describe('minimize', () => {
  it('keeps the signature and shrinks every catalog trace that has something to remove', () => {
    for (const s of SCENARIOS) {
      const before: DmaEvent[] = [];
      new Sim(s.buggy, s.seed, { event: (e) => before.push(e) }).run();
      const r = minimize(s.buggy, s.seed);
      expect(r, s.id).not.toBeNull();
      const firstBefore = before.find((e) => e.kind === 'finding') as EventOf<'finding'>;
      expect(r!.signature, s.id).toBe(firstBefore.cls);
      // the minimized configuration, run again: it keeps the failure, and is as long as reported
      const after: DmaEvent[] = [];
      new Sim(r!.config, s.seed, { event: (e) => after.push({ ...e }) }).run();
      expect(after.some((e) => e.kind === 'finding' && e.cls === r!.signature), s.id).toBe(true);
      expect(after.length, s.id).toBe(r!.after.events);
      expect(r!.after.events, s.id).toBeLessThanOrEqual(r!.before.events);
      if (r!.before.intents > 1) expect(r!.after.intents, s.id).toBeLessThan(r!.before.intents);
    }
  });

  it('stores the minimal trace and exports it as JSONL', () => {
    const dir = tempDir();
    const db = join(dir, 'm.db');
    const t = record({ db, seed: '7', config: { workload: 'remap', path: 'iommu', ops: 40, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] } });
    const out = join(dir, 'min.jsonl');
    const r = minimizeTrace(db, String(t.trace), out);
    expect(r.after.events).toBeLessThan(r.before.events / 4);
    expect(existsSync(out)).toBe(true);
    const { header, events: ev } = parseJsonl(readFileSync(out, 'utf8'));
    expect(header.events).toBe(r.after.events);
    expect(ev.some((e) => e.kind === 'finding' && e.cls === 'stale-iotlb')).toBe(true);
    const c = cli(['replay', String(r.minimized), '--db', db]);
    expect(c.code).toBe(0);
  });
});

describe('provenance and stepping', () => {
  it('why names the stale device write as the last writer of the old buffer', () => {
    const db = join(tempDir(), 'p.db');
    const t = record({ db, seed: '7', config: { workload: 'remap', path: 'iommu', ops: 8, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] } });
    const ev = events(db, t.trace);
    const f = ev.find((e) => e.kind === 'finding' && e.cls === 'stale-iotlb' && (ev.find((x) => x.seq === e.cause) as EventOf<'dev.access'>).dir === 'write') as EventOf<'finding'>;
    const access = ev.find((x) => x.seq === f.cause) as EventOf<'dev.access'>;
    const r = whyBytes(db, String(t.trace), f.seq, access.gpa, 16);
    expect(r.runs[0]!.writer!.seq).toBe(access.seq);
    expect(r.runs[0]!.translation!.via).toBe('iotlb');
    expect(r.runs[0]!.translation!.entry).toBe(access.entry);
    expect(r.runs[0]!.finding!.cls).toBe('stale-iotlb');
  });

  it('state --prev / --next of a kind come from the nearest checkpoint', () => {
    const db = join(tempDir(), 'st.db');
    const t = record({ db, seed: '7', config: { workload: 'remap', path: 'iommu', ops: 20, ringNum: 16, faults: [] }, checkpointEvery: 64 });
    const ev = events(db, t.trace);
    const at = Math.floor(t.events / 2);
    const prev = [...ev].reverse().find((e) => e.kind === 'iotlb.invalidate' && e.seq < at)!;
    const next = ev.find((e) => e.kind.startsWith('iommu.') && e.seq > at)!;
    const p = stateAt(db, String(t.trace), { at, prev: 'iotlb.invalidate' });
    expect(p.at).toBe(prev.seq);
    expect(p.event!.kind).toBe('iotlb.invalidate');
    expect(p.fromCheckpoint).toBeGreaterThan(0);
    expect(p.folded).toBeLessThan(200);
    expect(stateAt(db, String(t.trace), { at, next: 'iommu.*' }).at).toBe(next.seq);
    expect(cli(['state', String(t.trace), '--at', '1', '--prev', 'iotlb.invalidate', '--db', db]).code).toBe(2);
  });
});
