// Inputs that used to take time out of proportion to their size: each must now finish (the vitest
// timeout is the guard; nothing here measures time) with the outcome its input calls for.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importTrace } from '../../src/app/import.js';
import { InputError } from '../../src/errors.js';
import { alignMarkers } from '../../src/import/merge.js';
import { iommuMap, iommuUnmap, type IommuTable } from '../../src/model/viommu.js';
import { ROOT, tempDir } from '../helpers.js';

describe('no input runs longer than linear time', () => {
  it('a guest unmap of 99999999999999999999999999 bytes is a malformed line, and the import ends', async () => {
    const dir = tempDir();
    const src = readFileSync(join(ROOT, 'traces', 'real', 'guest-vtd-lazy.p007-net-up.txt'), 'utf8');
    const file = join(dir, 'g.txt');
    writeFileSync(file, src.replace(/size=4096 unmapped_size=4096/, 'size=99999999999999999999999999 unmapped_size=99999999999999999999999999'));
    const r = await importTrace({ db: join(dir, 'g.db'), file, format: 'ftrace' });
    expect(r.malformed).toBe(1);
    expect(r.malformedLines[0]!.reason).toMatch(/does not fit in 64 bits/);
    await expect(importTrace({ db: join(dir, 'g.db'), file, format: 'ftrace', strict: true })).rejects.toBeInstanceOf(InputError);
  });

  it('an unmap of almost 2^64 bytes walks the page table, not the range', () => {
    const t: IommuTable = new Map();
    iommuMap(t, 0x1000n, 0x5000n, 0x3000n, 'RW', 1);
    iommuMap(t, 0x100000n, 0x9000n, 0x1000n, 'RW', 2);
    expect(iommuUnmap(t, 0x2000n, (1n << 64n) - 0x3000n)).toEqual([2, 3, 0x100]); // page frame numbers (exact numbers)
    expect([...t.keys()]).toEqual([1]);
  });

  it('marker alignment beyond the LCS table is linear, also when no number is shared', () => {
    const g = Array.from({ length: 6000 }, (_, i) => ({ n: 1, name: '', t: i }));
    const h = Array.from({ length: 6000 }, (_, i) => ({ n: 2, name: '', t: i }));
    expect(alignMarkers(g, h)).toEqual([]);
    const h2 = [...h, { n: 1, name: 'x', t: 7000 }];
    expect(alignMarkers(g, h2)).toHaveLength(1);
  });
});
