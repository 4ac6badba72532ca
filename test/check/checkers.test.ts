// One case per checker class: it fires when it should and stays silent when it should not.
// Crafted event sequences are folded through the same checkers a recording runs; the scenarios
// that need the whole simulation come from running it.
import { describe, expect, it } from 'vitest';
import { FINDING_CLASSES, JUDGE } from '../../src/check/index.js';
import { chunksOf } from '../../src/engine/chunks.js';
import { fold } from '../../src/engine/replay.js';
import type { DmaEvent, NewEvent } from '../../src/events/schema.js';
import { DMA_MAPPING_ERROR } from '../../src/model/types.js';
import type { Fault, SimConfig } from '../../src/sim/config.js';
import { Sim } from '../../src/sim/sim.js';
import { SCENARIOS } from '../../src/sim/catalog.js';

const DEV = 0x18;
type E = Omit<NewEvent, 'actor' | 'cause'> & { actor?: string; cause?: number };

function classesOf(list: E[]): string[] {
  const events = list.map((e, i) => ({ actor: 'cpu0', cause: 0, ...e, seq: i + 1 }) as DmaEvent);
  return fold(chunksOf(events), JUDGE).findings.map((f) => (f as { cls: string }).cls);
}

const setup = (path = 'dma-direct', prot = 0): E[] => [
  { kind: 'trace.config', workload: 'test', protected: prot, variants: '{}' } as E,
  { kind: 'mem.table', gpa: 0n, size: 0x8000_0000n, hva: 0x7f00_0000_0000n } as E,
  { kind: 'dev.add', dev: DEV, name: 'virtio-net', path, features: 0n, useDmaApi: 1, translate: path === 'iommu' ? 'iova' : 'gpa', backend: 'vhost', dmaMask: (1n << 64n) - 1n } as E,
  { kind: 'vring.setup', dev: DEV, q: 0, num: 16, packed: 0, eventIdx: 0, desc: 0x800_0000n, avail: 0x800_0100n, used: 0x800_1000n, descGpa: 0x800_0000n, availGpa: 0x800_0100n, usedGpa: 0x800_1000n } as E,
];
const map = (dma: bigint, size: number, dir = 'FROM_DEVICE', type = 'page', phys = dma): E[] => [
  { kind: 'dma.map', dev: DEV, phys, dma, size, dir, type, path: 'direct' } as E,
  { kind: 'dma.check', dev: DEV, dma } as E,
];
const unmap = (dma: bigint, size: number, dir = 'FROM_DEVICE', type = 'page'): E => ({ kind: 'dma.unmap', dev: DEV, dma, size, dir, type }) as E;
const sync = (dma: bigint, size: number, dir: string, forCpu: number): E => ({ kind: 'dma.sync', dev: DEV, dma, size, dir, forCpu }) as E;
const access = (dma: bigint, len: number, dir: 'read' | 'write', gpa = dma, via = 'gpa', entry = 0): E =>
  ({ kind: 'dev.access', actor: 'vq0', q: 0, dma, len, dir, area: 'buf', via, gpa, hva: 0x7f00_0000_0000n + gpa, entry, sum: 0, data: dir === 'write' ? new Uint8Array(len) : new Uint8Array(0) }) as E;
const B = 0x1000_0000n;

describe('dma-debug checks (kernel/dma/debug.c)', () => {
  const clean = [...setup(), ...map(B, 256), unmap(B, 256)];
  it('a matching map/unmap is clean', () => expect(classesOf(clean)).toEqual([]));
  it('dma-unmap-unknown', () => expect(classesOf([...setup(), unmap(B, 256)])).toEqual(['dma-unmap-unknown']));
  it('dma-unmap-invalid', () => expect(classesOf([...setup(), unmap(DMA_MAPPING_ERROR, 256)])).toEqual(['dma-unmap-invalid']));
  it('dma-unmap-size', () => expect(classesOf([...setup(), ...map(B, 256), unmap(B, 512)])).toEqual(['dma-unmap-size']));
  it('dma-unmap-dir', () => expect(classesOf([...setup(), ...map(B, 256), unmap(B, 256, 'TO_DEVICE')])).toEqual(['dma-unmap-dir']));
  it('dma-unmap-type (mapped single, freed as coherent)', () => expect(classesOf([...setup(), ...map(B, 256), unmap(B, 256, 'FROM_DEVICE', 'coherent')])).toEqual(['dma-unmap-type']));
  it('dma-map-unchecked, and not when dma_mapping_error() was called', () => {
    expect(classesOf([...setup(), map(B, 256)[0]!, unmap(B, 256)])).toEqual(['dma-map-unchecked']);
    expect(classesOf(clean)).not.toContain('dma-map-unchecked');
  });
  it('dma-sync-unknown / dma-sync-range', () => {
    expect(classesOf([...setup(), sync(B, 64, 'FROM_DEVICE', 1)])).toEqual(['dma-sync-unknown']);
    expect(classesOf([...setup(), ...map(B, 256), sync(B + 128n, 256, 'FROM_DEVICE', 1), unmap(B, 256)])).toEqual(['dma-sync-range']);
    expect(classesOf([...setup(), ...map(B, 256), sync(B + 128n, 128, 'FROM_DEVICE', 1), unmap(B, 256)])).toEqual([]);
  });
  it('dma-sync-dir, skipped for BIDIRECTIONAL mappings', () => {
    expect(classesOf([...setup(), ...map(B, 256, 'FROM_DEVICE'), sync(B, 256, 'BIDIRECTIONAL', 1), unmap(B, 256)])).toContain('dma-sync-dir');
    expect(classesOf([...setup(), ...map(B, 256, 'BIDIRECTIONAL'), sync(B, 256, 'TO_DEVICE', 1), unmap(B, 256, 'BIDIRECTIONAL')])).toEqual([]);
  });
  it('dma-sync-cpu-readonly / dma-sync-device-writeonly', () => {
    expect(classesOf([...setup(), ...map(B, 256, 'TO_DEVICE'), sync(B, 256, 'FROM_DEVICE', 1), unmap(B, 256, 'TO_DEVICE')])).toContain('dma-sync-cpu-readonly');
    expect(classesOf([...setup(), ...map(B, 256, 'FROM_DEVICE'), sync(B, 256, 'TO_DEVICE', 0), unmap(B, 256)])).toContain('dma-sync-device-writeonly');
  });
  it('dma-overlap for two FROM_DEVICE mappings of one cacheline, not for TO_DEVICE', () => {
    expect(classesOf([...setup(), ...map(B, 32), ...map(B + 32n, 32), unmap(B, 32), unmap(B + 32n, 32)])).toEqual(['dma-overlap']);
    expect(classesOf([...setup(), ...map(B, 32, 'TO_DEVICE'), ...map(B + 32n, 32, 'TO_DEVICE'), unmap(B, 32, 'TO_DEVICE'), unmap(B + 32n, 32, 'TO_DEVICE')])).toEqual([]);
    expect(classesOf([...setup(), ...map(B, 64), ...map(B + 64n, 64), unmap(B, 64), unmap(B + 64n, 64)])).toEqual([]);
  });
  it('dma-leak at teardown, not after the unmap', () => {
    const teardown = { kind: 'dev.teardown', dev: DEV } as E;
    expect(classesOf([...setup(), ...map(B, 256), teardown])).toEqual(['dma-leak']);
    expect(classesOf([...clean, teardown])).toEqual([]);
  });
  it('mapping the same page twice is legal (several entries per address)', () => {
    expect(classesOf([...setup(), ...map(B, 256, 'TO_DEVICE'), ...map(B, 128, 'TO_DEVICE'), unmap(B, 128, 'TO_DEVICE'), unmap(B, 256, 'TO_DEVICE')])).toEqual([]);
  });
});

describe('device access checks', () => {
  it('access-outside-mapping / access-wrong-dir / clean', () => {
    expect(classesOf([...setup(), ...map(B, 256), access(B + 16n, 64, 'write'), unmap(B, 256)])).toEqual([]);
    expect(classesOf([...setup(), ...map(B, 256), access(B + 512n, 64, 'write'), unmap(B, 256)])).toEqual(['access-outside-mapping']);
    expect(classesOf([...setup(), ...map(B, 256, 'TO_DEVICE'), access(B, 64, 'write'), unmap(B, 256, 'TO_DEVICE')])).toEqual(['access-wrong-dir']);
  });
  it('unshared-access only in a protected guest, outside shared memory', () => {
    const P = 0x3c00_0000n; // the swiotlb pool
    expect(classesOf([...setup('swiotlb-force', 1), ...map(B, 256, 'TO_DEVICE'), access(B, 64, 'read'), unmap(B, 256, 'TO_DEVICE')])).toEqual(['unshared-access']);
    expect(classesOf([...setup('swiotlb-force', 0), ...map(B, 256, 'TO_DEVICE'), access(B, 64, 'read'), unmap(B, 256, 'TO_DEVICE')])).toEqual([]);
    expect(classesOf([...setup('swiotlb-force', 1), ...map(P, 256, 'TO_DEVICE'), access(P, 64, 'read'), unmap(P, 256, 'TO_DEVICE')])).toEqual([]);
  });
  it('use-after-unmap and stale-iotlb through a device-IOTLB entry', () => {
    const I = 0xffff_d000n;
    const base = [
      ...setup('iommu'),
      { kind: 'iommu.map', dev: DEV, iova: I, gpa: B, size: 0x1000n, perm: 'RW' } as E,
      { kind: 'dma.map', dev: DEV, phys: B, dma: I, size: 4096, dir: 'FROM_DEVICE', type: 'page', path: 'iommu' } as E,
      { kind: 'dma.check', dev: DEV, dma: I } as E,
      { kind: 'iotlb.update', actor: 'vmm', dev: DEV, iova: I, size: 0x1000n, uaddr: 0x7f00_0000_0000n + B, perm: 'RW', result: 'ok' } as E,
    ];
    const seqOfUpdate = base.length; // seq of the UPDATE above
    const fresh = access(I, 64, 'write', B, 'iotlb', seqOfUpdate);
    expect(classesOf([...base, fresh])).toEqual([]);
    const unmapped = [...base, { kind: 'dma.unmap', dev: DEV, dma: I, size: 4096, dir: 'FROM_DEVICE', type: 'page' } as E, { kind: 'iommu.unmap', dev: DEV, iova: I, size: 0x1000n } as E];
    expect(classesOf([...unmapped, fresh])).toContain('use-after-unmap');
    const remapped = [...unmapped, { kind: 'iommu.map', dev: DEV, iova: I, gpa: B + 0x5000n, size: 0x1000n, perm: 'RW' } as E, { kind: 'dma.map', dev: DEV, phys: B + 0x5000n, dma: I, size: 4096, dir: 'FROM_DEVICE', type: 'page', path: 'iommu' } as E];
    expect(classesOf([...remapped, fresh])).toContain('stale-iotlb');
  });
  it('dmar-fault names the device, address and reason', () => {
    const events = [...setup('iommu'), { kind: 'iommu.fault', actor: 'iommu', dev: 0x10, iova: 0x1234_0000n, write: 0, reason: 6 } as E].map((e, i) => ({ actor: 'cpu0', cause: 0, ...e, seq: i + 1 }) as DmaEvent);
    const f = fold(chunksOf(events), JUDGE).findings[0] as { cls: string; message: string };
    expect(f.cls).toBe('dmar-fault');
    expect(f.message).toMatch(/00:02.0|0x10/);
    expect(f.message).toContain('0x12340000');
    expect(f.message).toMatch(/reason 6/);
    expect(f.message).toMatch(/read/);
  });
});

describe('ring sanity and vhost errors', () => {
  const err = (msg: string, actor = 'vq0') => ({ kind: 'vq.error', actor, q: 0, msg }) as E;
  it('classifies vq_err and BAD_RING messages', () => {
    expect(classesOf([...setup(), err('id 300 out of range', 'cpu0')])).toEqual(['ring-id-out-of-range']);
    expect(classesOf([...setup(), err('id 3 is not a head!', 'cpu0')])).toEqual(['ring-used-not-head']);
    expect(classesOf([...setup(), err('Loop detected')])).toEqual(['ring-error']);
  });
  it('log-overflow only when log entries exceed writable iovecs', () => {
    expect(classesOf([...setup(), { kind: 'vq.log', actor: 'vq0', q: 0, logNum: 3, inNum: 2 } as E])).toEqual(['log-overflow']);
    expect(classesOf([...setup(), { kind: 'vq.log', actor: 'vq0', q: 0, logNum: 2, inNum: 2 } as E])).toEqual([]);
  });
});

function simClasses(cfg: Partial<SimConfig>, seed = '4'): string[] {
  const out: string[] = [];
  new Sim({ workload: 'net-rx', path: 'iommu', ops: 6, ringNum: 16, faults: [], ...cfg }, seed, { event: (e) => e.kind === 'finding' && out.push(e.cls) }).run();
  return [...new Set(out)];
}

describe('faults are recorded inputs with the effect they name', () => {
  const f = (kind: Fault['kind'], arg = 0): Fault[] => [{ kind, arg }];
  it('none: a clean run', () => expect(simClasses({})).toEqual([]));
  it('drop-invalidate / wrong-page-update → stale translations', () => {
    expect(simClasses({ workload: 'remap', ops: 8, faults: f('drop-invalidate') })).toContain('stale-iotlb');
    expect(simClasses({ faults: f('wrong-page-update', 1) })).toContain('stale-iotlb');
  });
  it('viommu-fault → the miss is never answered and the vq stays parked', () => {
    expect(simClasses({ faults: f('viommu-fault', 2) })).toEqual(expect.arrayContaining(['dmar-fault', 'miss-unanswered', 'vq-parked']));
  });
  it('skip-sync on a bounced FROM_DEVICE buffer → the CPU reads stale bytes', () => {
    expect(simClasses({ path: 'swiotlb-force', faults: f('skip-sync') })).toContain('swiotlb-stale-read');
    expect(simClasses({ path: 'swiotlb-force' })).toEqual([]);
  });
  it('skip-unmap → a leak at teardown', () => expect(simClasses({ path: 'dma-direct', faults: f('skip-unmap', 2) })).toEqual(['dma-leak']));
  it('zero-len-desc → flagged where posted', () => expect(simClasses({ faults: f('zero-len-desc', 1) })).toEqual(['ring-zero-len-desc']));
  it('evict-iotlb → more misses, same outcome', () => {
    const misses = (faults: Fault[]) => {
      let n = 0;
      new Sim({ workload: 'net-tx', path: 'iommu', ops: 8, ringNum: 16, faults }, '2', { event: (e) => void (e.kind === 'iotlb.miss' && n++) }).run();
      return n;
    };
    expect(misses(f('evict-iotlb', 2))).toBeGreaterThan(misses([]));
    expect(simClasses({ workload: 'net-tx', faults: f('evict-iotlb', 2) })).toEqual([]);
  });
  it('reorder-update-invalidate → the UPDATE is written after a later INVALIDATE', () => {
    const evs: DmaEvent[] = [];
    new Sim({ workload: 'net-tx', path: 'iommu', ops: 8, ringNum: 16, faults: f('reorder-update-invalidate', 3) }, '2', { event: (e) => evs.push({ ...e }) }).run();
    const held = evs.find((e) => e.kind === 'fault' && (e as { what: string }).what === 'reorder-update-invalidate')!;
    const update = evs.find((e) => e.kind === 'iotlb.update' && e.cause === held.cause);
    if (update) expect(evs.some((e) => e.kind === 'iotlb.invalidate' && e.seq > held.seq && e.seq < update.seq)).toBe(true);
    else expect(evs.some((e) => e.kind === 'finding' && (e as { cls: string }).cls === 'vq-parked')).toBe(true);
  });
});

describe('every finding class has a case', () => {
  it('is produced by this file or by a catalog scenario', async () => {
    const { readFileSync } = await import('node:fs');
    // this file, or the real-trace checks' own tests (synthetic logs in the real line formats)
    // (or the captured real runs mutated by hand)
    const here = ['', '../import/synthetic-checks.test.ts', '../import/captured-runs.test.ts'].map((f) => readFileSync(new URL(f || import.meta.url, import.meta.url), 'utf8')).join('');
    const catalog = new Set(SCENARIOS.map((s) => s.expected));
    const bySim = ['swiotlb-leak', 'swiotlb-offset-lost', 'swiotlb-overflow', 'vhost-hang', 'probe-refused', 'qemu-assert', 'device-dma-fault'];
    for (const c of FINDING_CLASSES) expect(here.includes(`'${c}'`) || catalog.has(c) || bySim.includes(c), c).toBe(true);
  });
});
