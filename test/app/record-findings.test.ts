// record lists a bounded number of findings and counts them all: a workload whose every remap races
// yields thousands of findings, and the result must not hold them (issue 12: findings counted and
// streamed, never all loaded). The listed ones are the first stored ones, and all are stored.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_FINDINGS_LISTED, streamFindings } from '../../src/app/findings.js';
import { record } from '../../src/app/record.js';
import { tempDir } from '../helpers.js';

describe('record findings', () => {
  it('lists the first MAX_FINDINGS_LISTED, counts them all, and stores them all', () => {
    const db = join(tempDir(), 'many.db');
    const r = record({
      db,
      seed: '1',
      config: { workload: 'remap', path: 'iommu', ops: 1200, ringNum: 256, faults: [{ kind: 'delay-invalidate', arg: 1 }], variants: {} },
    });
    const stored = [...streamFindings(db, String(r.trace))];
    expect(stored.length).toBeGreaterThan(MAX_FINDINGS_LISTED);
    expect(r.findingCount).toBe(stored.length);
    expect(r.findings.length).toBe(MAX_FINDINGS_LISTED);
    expect(r.findings.map((f) => [f.seq, f.class, f.message])).toEqual(stored.slice(0, MAX_FINDINGS_LISTED).map((f) => [f.seq, f.class, f.message]));
  });

  it('lists every finding of a trace with fewer than the bound', () => {
    const db = join(tempDir(), 'few.db');
    const r = record({ db, seed: '1', config: { workload: 'remap', path: 'iommu', ops: 8, ringNum: 256, faults: [{ kind: 'delay-invalidate', arg: 1 }], variants: {} } });
    const stored = [...streamFindings(db, String(r.trace))];
    expect(stored.length).toBeGreaterThan(0);
    expect(r.findingCount).toBe(stored.length);
    expect(r.findings.map((f) => f.seq)).toEqual(stored.map((f) => f.seq));
  });
});
