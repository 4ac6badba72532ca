// The package as a library: package.json points at the built entry and its declarations, and
// `import('dmareplay')` (self-reference through "exports") gives the API the README lists.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

describe('package exports', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  it('exports "." with types and an ESM entry, and both files exist after the build', () => {
    expect(pkg.exports['.']).toEqual({ types: './dist/src/index.d.ts', import: './dist/src/index.js' });
    expect(pkg.types).toBe('./dist/src/index.d.ts');
    const dts = readFileSync(join(ROOT, pkg.types), 'utf8');
    for (const name of ['record', 'replayTrace', 'fold', 'seek', 'stateAt', 'bisectRun', 'importTrace', 'exportTrace', 'exportPerfetto', 'runSql', 'DmaEvent']) expect(dts).toMatch(new RegExp(`\\b${name}\\b`));
  });
  it('import("dmareplay") resolves to the built entry with the API', async () => {
    const m = await import('dmareplay');
    for (const f of ['record', 'replayTrace', 'replay', 'fold', 'reexecute', 'chunksOf', 'seek', 'stateAt', 'bisectRun', 'bisectTraces', 'importTrace', 'exportTrace', 'exportPerfetto', 'buildReport', 'reportHtml', 'runSql', 'eventToJson', 'formatEvent'] as const)
      expect(typeof (m as Record<string, unknown>)[f], f).toBe('function');
    expect(Object.keys(m.KINDS)).toContain('iotlb.update');
  });
});
