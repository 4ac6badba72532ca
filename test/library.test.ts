import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { record, replayTrace, type SimConfig, stateAt } from 'dmareplay';

describe('the GPA-remap race, through the library API', () => {
  it('a late device-IOTLB invalidation is a stale-iotlb finding that replays, and the state shows it owed', () => {
    const db = join(mkdtempSync(join(tmpdir(), 'dmareplay-')), 'race.db');
    const config: SimConfig = { workload: 'remap', path: 'iommu', ops: 8, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] };
    const race = record({ db, seed: '7', config });
    const first = race.findings[0]!;
    expect(first.class).toBe('stale-iotlb');
    expect(replayTrace(db, String(race.trace)).ok).toBe(true);
    const s = stateAt(db, String(race.trace), { at: first.seq });
    // the device-IOTLB INVALIDATE that QEMU still owes at the access was requested by an event of the chain
    expect(s.plain.vmm.invals.some((i) => first.chain.includes(i.req))).toBe(true);
    const prompt = record({ db, seed: '7', config: { ...config, faults: [] } });
    expect(prompt.findings).toEqual([]);
  });
});
