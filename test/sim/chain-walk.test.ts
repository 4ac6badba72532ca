// Property: vhost walks any legal split chain — readable buffers before writable ones, any of its
// runs of descriptors moved into an indirect table referenced from that place in the chain ("weird
// (but legal!)") — into exactly the flattened list of buffers, in order, with no error; QEMU's rules
// give the same list when the only indirect descriptor is the whole chain.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deviceReport } from '../../src/app/run.js';
import type { DmaEvent } from '../../src/events/schema.js';
import type { SimConfig } from '../../src/sim/config.js';
import type { ScenarioStep } from '../../src/sim/scenario.js';
import { Sim } from '../../src/sim/sim.js';

const RING = 0x100000;
const TABLES = 0x110000;
const DATA = 0x200000;
const H = (v: number) => '0x' + v.toString(16);

interface Buf {
  len: number;
  write: boolean;
}

/** A chain: buffers (outs then ins), cut into groups; each group is direct descriptors or one indirect table. */
const chainArb = fc
  .tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }))
  .filter(([o, i]) => o + i > 0)
  .chain(([outs, ins]) =>
    fc.tuple(
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: outs + ins, maxLength: outs + ins }),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: outs + ins, maxLength: outs + ins }),
      fc.array(fc.boolean(), { minLength: outs + ins, maxLength: outs + ins }),
    ).map(([lens, cuts, indirect]) => {
      const bufs: Buf[] = lens.map((len, k) => ({ len, write: k >= outs }));
      const groups: { bufs: Buf[]; indirect: boolean }[] = [];
      for (let k = 0, g = 0; k < bufs.length; g++) {
        const n = Math.min(cuts[g]!, bufs.length - k);
        groups.push({ bufs: bufs.slice(k, k + n), indirect: indirect[g]! });
        k += n;
      }
      return { bufs, groups };
    }),
  );

function scenario(groups: { bufs: Buf[]; indirect: boolean }[]): ScenarioStep[] {
  const steps: ScenarioStep[] = [
    { op: 'device', dev: '00:02.0', name: 'virtio-blk', path: 'direct', features: ['VERSION_1', 'INDIRECT_DESC'] },
    { op: 'queue', dev: '00:02.0', q: 0, num: 16, desc: H(RING) },
  ];
  let slot = 0;
  let data = DATA;
  const ring: { addr: number; len: number; flags: string[] }[] = [];
  groups.forEach((g, gi) => {
    if (g.indirect) {
      const table = TABLES + gi * 0x100;
      g.bufs.forEach((b, k) => {
        const flags = [...(b.write ? ['WRITE'] : []), ...(k < g.bufs.length - 1 ? ['NEXT'] : [])];
        steps.push({ op: 'desc', table: H(table), i: k, addr: H(data), len: b.len, flags, next: k + 1 });
        data += 0x1000;
      });
      ring.push({ addr: table, len: 16 * g.bufs.length, flags: ['INDIRECT'] });
    } else
      for (const b of g.bufs) {
        ring.push({ addr: data, len: b.len, flags: b.write ? ['WRITE'] : [] });
        data += 0x1000;
      }
  });
  ring.forEach((d, k) => {
    const flags = [...d.flags, ...(k < ring.length - 1 ? ['NEXT'] : [])];
    steps.push({ op: 'desc', table: H(RING), i: slot + k, addr: H(d.addr), len: d.len, flags, next: slot + k + 1 });
  });
  const avail = RING + 16 * 16;
  steps.push({ op: 'write16', gpa: H(avail + 4), value: 0 }, { op: 'write16', gpa: H(avail + 2), value: 1 }, { op: 'kick', q: 0 });
  return steps;
}

function run(steps: ScenarioStep[], backend: 'vhost' | 'qemu') {
  const config: SimConfig = { workload: 'scenario', path: 'direct', ops: steps.length, ringNum: 256, faults: [], variants: { backend }, scenario: steps };
  const events: DmaEvent[] = [];
  new Sim(config, '1', { event: (e) => events.push({ ...e }) }).run();
  return deviceReport(events);
}

const flat = (bufs: Buf[]) => {
  let data = DATA;
  return bufs.map((b) => {
    const r = { gpa: BigInt(data), len: b.len, write: b.write };
    data += 0x1000;
    return r;
  });
};

describe('the chain walk', () => {
  it('vhost: any legal chain, with indirect tables anywhere in it, gives its buffers in order', () => {
    fc.assert(
      fc.property(chainArb, ({ bufs, groups }) => {
        const r = run(scenario(groups), 'vhost');
        expect(r.errors).toEqual([]);
        expect(r.chains).toHaveLength(1);
        const want = flat(bufs);
        expect(r.chains[0]!.read.map((b) => [b.gpa, b.len])).toEqual(want.filter((b) => !b.write).map((b) => [b.gpa, b.len]));
        const total = want.filter((b) => b.write).reduce((a, b) => a + b.len, 0);
        expect(r.chains[0]!.written.reduce((a, b) => a + b.len, 0)).toBe(total);
      }),
      { numRuns: 80, seed: 3 },
    );
  });

  it('QEMU agrees when the only indirect descriptor is the whole chain', () => {
    fc.assert(
      fc.property(chainArb, fc.boolean(), ({ bufs }, whole) => {
        const groups = [{ bufs, indirect: whole }];
        const vhost = run(scenario(groups), 'vhost');
        const qemu = run(scenario(groups), 'qemu');
        expect(qemu.errors).toEqual([]);
        expect(qemu.chains.map((c) => c.read)).toEqual(vhost.chains.map((c) => c.read));
        expect(qemu.chains.map((c) => c.written.map((b) => [b.gpa, b.len]))).toEqual(vhost.chains.map((c) => c.written.map((b) => [b.gpa, b.len])));
      }),
      { numRuns: 40, seed: 4 },
    );
  });
});
