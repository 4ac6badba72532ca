import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KIND_NAMES, KINDS } from '../../src/events/schema.js';
import { data } from '../../src/model/codec.js';
import { RULE_GROUPS, RULES } from '../../src/model/rules/index.js';

// The compiler is the main guard (RULES is typed over every kind); this holds the table to the rest
// of what a rule promises at run time.
describe('the per-kind rule table', () => {
  it('has exactly one rule for every kind, each naming what it models', () => {
    for (const k of KIND_NAMES) {
      const owners = Object.entries(RULE_GROUPS).filter(([, g]) => k in g).map(([n]) => n);
      expect(owners, k).toHaveLength(1);
      expect(RULES[k].models.length, k).toBeGreaterThan(10);
    }
    expect(Object.keys(RULES).sort()).toEqual([...KIND_NAMES].sort());
  });

  it('inertWhen names an enum field of its kind and one of its values', () => {
    let n = 0;
    for (const k of KIND_NAMES) {
      const when = RULES[k].inertWhen;
      if (!when) continue;
      n++;
      const spec = (KINDS[k].fields as Record<string, unknown>)[when.field] as { enum?: readonly string[] } | undefined;
      expect(spec?.enum, `${k}.${when.field}`).toContain(when.value);
      expect(RULES[k].evolve, k).toBeDefined();
    }
    expect(n).toBeGreaterThan(0);
  });
});

describe('free-form world data (checker state)', () => {
  const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.uint8Array({ maxLength: 8 }));
  const tree = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      leaf,
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }).filter((s) => s !== '__proto__'), tie('node'), { maxKeys: 4 }),
      fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 1n << 40n }), tie('node')), { maxLength: 4 }).map((e) => new Map(e)),
      fc.array(fc.integer(), { maxLength: 4 }).map((e) => new Set(e)),
    ),
  })).node;

  it('survives the plain form (through JSON) and a clone, exactly, and a clone is independent', () => {
    fc.assert(
      fc.property(tree, (v) => {
        const plain = JSON.parse(JSON.stringify(data.toPlain(v)));
        expect(data.fromPlain(plain)).toEqual(v);
        const c = data.clone(v);
        expect(c).toEqual(v);
        if (v !== null && typeof v === 'object') expect(c).not.toBe(v);
      }),
      { numRuns: 200, seed: 11 },
    );
  });
});
