import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import { cliJson, tempDir } from '../helpers.js';

describe('determinism', () => {
  it('the same seed gives the same event stream and hash in two separate processes', () => {
    const dir = tempDir();
    const args = ['record', '--workload', 'remap', '--path', 'iommu', '--seed', '7', '--ops', '40'];
    const a = cliJson([...args, '--db', join(dir, 'a.db')]);
    const b = cliJson([...args, '--db', join(dir, 'b.db')]);
    expect(a.events).toBeGreaterThan(500);
    expect(b.hash).toBe(a.hash);
    expect(b.events).toBe(a.events);
    expect(b.findings).toEqual(a.findings);
    const logA = cliJson(['log', String(a.trace), '--db', join(dir, 'a.db')]);
    const logB = cliJson(['log', String(b.trace), '--db', join(dir, 'b.db')]);
    expect(logB).toEqual(logA);
  });

  it('a different seed, path or fault changes the hash', () => {
    const db = join(tempDir(), 't.db');
    const base = { workload: 'remap' as const, path: 'iommu' as const, ops: 20, ringNum: 16, faults: [] };
    const h = (cfg: typeof base & { faults: any[] }, seed: string) => record({ db, config: cfg, seed, checkpointEvery: 64 }).hash;
    const ref = h(base, '7');
    expect(h(base, '7')).toBe(ref);
    expect(h(base, '8')).not.toBe(ref);
    expect(h({ ...base, path: 'direct' as any }, '7')).not.toBe(ref);
    expect(h({ ...base, faults: [{ kind: 'delay-invalidate', arg: 1 }] }, '7')).not.toBe(ref);
  });

  it('treats the seed as a string: the same digits give the same stream', () => {
    const db = join(tempDir(), 't.db');
    const cfg = { workload: 'remap' as const, path: 'iommu' as const, ops: 10, ringNum: 16, faults: [] };
    expect(record({ db, config: cfg, seed: '1' }).hash).toBe(record({ db, config: cfg, seed: '1' }).hash);
  });
});
