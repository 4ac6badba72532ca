import { describe, expect, it } from 'vitest';
import { runCatalog } from '../../src/app/catalog.js';
import { SCENARIOS } from '../../src/sim/catalog.js';
import { cli } from '../helpers.js';

describe('the bug catalog', () => {
  const results = runCatalog();
  it('has every required scenario', () => {
    for (const id of ['B1', 'B1b', 'B2', 'B3', 'S1', 'S2', 'S3', 'S4', 'Q1', 'Q2', 'P1', 'P2', 'R1']) expect(results.map((r) => r.id)).toContain(id);
  });
  for (const s of SCENARIOS)
    it(`${s.id}: the buggy trace shows ${s.expected}, the fixed one does not`, () => {
      const r = results.find((x) => x.id === s.id)!;
      expect(r.found).toContain(s.expected);
      expect(r.fixedFound).not.toContain(s.expected);
      expect(r.ok).toBe(true);
      // the stored JSONL is exactly what the model produces from its header (seed + config)
      expect(r.current).toBe(true);
    });
  it('dmareplay catalog --json prints {id, upstream, expected, found, fixedFound, ok} and exits 0', () => {
    const c = cli(['catalog', '--json']);
    expect(c.code).toBe(0);
    const rows = JSON.parse(c.stdout) as Record<string, unknown>[];
    expect(rows).toHaveLength(SCENARIOS.length);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual(['expected', 'fixedFound', 'found', 'id', 'ok', 'upstream']);
  });
  it('an unknown scenario id is a usage error', () => expect(cli(['catalog', 'Z9']).code).toBe(2));
});
