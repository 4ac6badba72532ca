// Test cases ported from real peers (Linux tools/virtio and drivers/vhost, QEMU's virtio code and
// qtests, rust-vmm's virtio-queue) as scenarios: each file names its source in its header and says
// what that test asserts in "expect"; this runs every file through the model and checks it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deviceReport, scenarioConfig } from '../../src/app/run.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { Sim } from '../../src/sim/sim.js';
import { readMem } from '../../src/model/memory.js';

const DIR = join(import.meta.dirname, '.');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.jsonl')).sort();

interface ChainExpect {
  id?: number;
  slot?: number;
  usedIdx?: number;
  len?: number;
  tableBytes?: number;
  /** [gpa, len] of each buffer the device read, in order */
  read?: [string, number][];
  /** [gpa, len, data hex?] of each buffer piece the device wrote */
  written?: ([string, number] | [string, number, string])[];
}

interface Expect {
  errors?: string[];
  chains?: ChainExpect[];
  interrupts?: number;
  findings?: string[];
  usedIdx?: number;
  missesAtLeast?: number;
  /** status of each virtio-iommu request / VHOST_SET_VRING_BASE, in order */
  requests?: string[];
  /** [start, end, phys] of every virtio-iommu mapping left at the end, over all domains */
  mappings?: [string, string, string][];
  /** per used entry, whether an interrupt followed it before the next one */
  irqAfterChain?: boolean[];
  /** [gpa, hex bytes] guest memory at the end (ring flags and event structures the device wrote) */
  memory?: [string, string][];
}

const hex = (v: bigint) => '0x' + v.toString(16);

describe('conformance: cases ported from Linux, QEMU and rust-vmm', () => {
  it('has at least 30 cases, each naming its source', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(30);
    for (const f of FILES) {
      const header = JSON.parse(readFileSync(join(DIR, f), 'utf8').split('\n')[0]!) as { source?: Record<string, string>; expect?: unknown };
      expect(header.source?.repository, f).toMatch(/\//);
      expect(header.source?.file, f).toBeTruthy();
      expect(header.source?.test, f).toBeTruthy();
      expect(header.expect, f).toBeTruthy();
    }
  });

  for (const f of FILES) {
    it(f.replace(/\.jsonl$/, ''), () => {
      const text = readFileSync(join(DIR, f), 'utf8');
      const { config, header } = scenarioConfig(text, f);
      const events: DmaEvent[] = [];
      const sim = new Sim(config, '1', { event: (e) => events.push({ ...e }) });
      sim.run();
      const r = deviceReport(events);
      const want = header.expect as Expect;
      if (want.errors) expect(r.errors.map((e) => e.msg)).toEqual(want.errors);
      if (want.interrupts !== undefined) expect(r.interrupts.length).toBe(want.interrupts);
      if (want.findings) expect(r.findings.map((x) => x.class)).toEqual(want.findings);
      if (want.missesAtLeast !== undefined) expect(r.misses).toBeGreaterThanOrEqual(want.missesAtLeast);
      if (want.usedIdx !== undefined) expect(r.chains.at(-1)?.usedIdx).toBe(want.usedIdx);
      for (const [gpa, bytes] of want.memory ?? []) expect(Buffer.from(readMem(sim.world.mem, BigInt(gpa), bytes.length / 2)).toString('hex'), gpa).toBe(bytes);
      if (want.irqAfterChain)
        expect(r.chains.map((c, k) => r.interrupts.some((i) => i.seq > c.seq && i.seq < (r.chains[k + 1]?.seq ?? Infinity)))).toEqual(want.irqAfterChain);
      if (want.requests) expect(r.requests.map((q) => q.status)).toEqual(want.requests);
      if (want.mappings)
        expect([...sim.world.virtioIommu.domains.values()].flatMap((d) => d.mappings.map((m) => [hex(m.start), hex(m.end), hex(m.phys)]))).toEqual(want.mappings);
      if (want.chains) {
        expect(r.chains.length).toBe(want.chains.length);
        want.chains.forEach((c, i) => {
          const got = r.chains[i]!;
          if (c.id !== undefined) expect(got.id).toBe(c.id);
          if (c.slot !== undefined) expect(got.slot).toBe(c.slot);
          if (c.usedIdx !== undefined) expect(got.usedIdx).toBe(c.usedIdx);
          if (c.len !== undefined) expect(got.len).toBe(c.len);
          if (c.tableBytes !== undefined) expect(got.tableBytes).toBe(c.tableBytes);
          if (c.read) expect(got.read.map((b) => [hex(b.gpa), b.len])).toEqual(c.read);
          if (c.written)
            expect(got.written.map((b, k) => (c.written![k]?.length === 3 ? [hex(b.gpa), b.len, Buffer.from(b.data ?? []).toString('hex')] : [hex(b.gpa), b.len]))).toEqual(c.written);
        });
      }
    });
  }
});

describe('a scenario does not depend on the scheduler seed', () => {
  // the guest waits after every step until no device or VMM step can run, so whatever order the
  // scheduler picks among the device workers and the VMM, the device does the same
  const outcome = (text: string, f: string, seed: string) => {
    const { config } = scenarioConfig(text, f);
    const events: DmaEvent[] = [];
    new Sim(config, seed, { event: (e) => events.push({ ...e }) }).run();
    const r = deviceReport(events);
    return {
      chains: r.chains.map((c) => ({ id: c.id, len: c.len, read: c.read.map((b) => [b.gpa, b.len]), written: c.written.map((b) => [b.gpa, b.len]) })),
      errors: r.errors.map((e) => e.msg),
      interrupts: r.interrupts.length,
      requests: r.requests.map((q) => q.status),
      findings: r.findings.map((x) => x.class),
    };
  };
  it('every conformance scenario, any seed', () => {
    const texts = FILES.map((f) => [f, readFileSync(join(DIR, f), 'utf8')] as const);
    const base = new Map(texts.map(([f, t]) => [f, outcome(t, f, '1')]));
    fc.assert(
      fc.property(fc.constantFrom(...texts), fc.integer({ min: 2, max: 1_000_000 }), ([f, t], seed) => {
        expect(outcome(t, f, String(seed))).toEqual(base.get(f));
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});
