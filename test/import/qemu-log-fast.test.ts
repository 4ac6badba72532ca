// The QEMU log parser's fast paths (a hand-scanned header, field scanners for the frequent events)
// must give exactly what the regex parser gives (parseQemuLogLineByRegex: HEADER_RE and the regex
// builders, the parser as it was before): the same record, the same malformed reason, for real lines
// and for lines mutated in the places the fast paths look at.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseQemuLogLine, parseQemuLogLineByRegex } from '../../src/import/qemu-log.js';
import { runLines } from './real-runs.js';

const REAL = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real');

/** Real lines: the excerpts, and the captured runs' lines of every distinct event (a few of each). */
function realLines(): string[] {
  const out: string[] = [];
  for (const f of readdirSync(REAL)) if (f.startsWith('qemu-') && f.endsWith('.log')) out.push(...readFileSync(join(REAL, f), 'utf8').split('\n'));
  out.push(...runLines(40));
  return out.filter((l) => l.length > 0);
}

const LINES = realLines();

const classOf = (c: string): number => (/[0-9]/.test(c) ? 0 : /[a-fA-F]/.test(c) ? 1 : /[A-Za-z_]/.test(c) ? 2 : c === ' ' ? 3 : 4);
/** the offsets where one kind of character (digit, hex letter, letter, space, other) gives way to another */
function boundaries(l: string): number[] {
  const out = [0, l.length];
  for (let i = 1; i < l.length; i++) if (classOf(l[i - 1]!) !== classOf(l[i]!)) out.push(i);
  return out;
}

describe('QEMU log parser fast paths', () => {
  it('parse every real line as the regex parser does', () => {
    expect(LINES.length).toBeGreaterThan(1000);
    for (let i = 0; i < LINES.length; i++) expect(parseQemuLogLine(LINES[i]!, i + 1)).toEqual(parseQemuLogLineByRegex(LINES[i]!, i + 1));
  });

  /** What a mutation puts in: digits, hex, separators, blanks, line terminators, non-ASCII. */
  const insert = fc.constantFrom('0', '9', 'a', 'F', 'g', 'x', '0x', ' ', '  ', '\t', ':', '.', '@', '-', '_', '\r', '\n', '\u2028', '\u00a0', 'é', '(nil)', '0000000000000000', 'ffffffffffffffff1', '123456789012345678');
  const mutation = fc.record({
    at: fc.nat(),
    del: fc.oneof(fc.constant(0), fc.nat({ max: 4 })),
    ins: fc.oneof(insert, fc.array(insert, { maxLength: 3 }).map((a) => a.join(''))),
  });

  it('parse mutated real lines as the regex parser does', () => {
    fc.assert(
      fc.property(fc.nat({ max: LINES.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }), (i, muts) => {
        let l = LINES[i]!;
        for (const m of muts) {
          // mostly where the character class changes (a field's edge), where parsers go wrong
          const edges = boundaries(l);
          const p = m.at % 4 === 0 ? (m.at >> 2) % (l.length + 1) : edges[(m.at >> 2) % edges.length]!;
          l = l.slice(0, p) + m.ins + l.slice(p + m.del);
        }
        expect(parseQemuLogLine(l, 3)).toEqual(parseQemuLogLineByRegex(l, 3));
      }),
      { numRuns: 40000 },
    );
  });

  it('an invalidation mask past VT-d\'s 6-bit AM field is a malformed line naming the mask, not a thrown RangeError', () => {
    for (const mask of ['40', '1000', 'ffffffff']) {
      const l = `1234@1700000000.000001:vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x1 addr 0x1000 mask 0x${mask}`;
      const byRegex = parseQemuLogLineByRegex(l, 1) as { kind: string; malformed?: string } | null;
      expect(byRegex?.kind).toBe('malformed');
      expect(byRegex?.malformed).toBe(`vtd_inv_desc_iotlb_pages: mask ${parseInt(mask, 16)} is out of range (at most 63)`);
      expect(parseQemuLogLine(l, 1)).toEqual(byRegex);
    }
  });

  it('parse lines with any header numbers as the regex parser does', () => {
    const digits = fc.stringMatching(/^[0-9]{0,22}$/);
    fc.assert(
      fc.property(digits, digits, digits, fc.nat({ max: LINES.length - 1 }), (tid, sec, usec, i) => {
        const rest = LINES[i]!.slice(LINES[i]!.indexOf(':'));
        const l = `${tid}@${sec}.${usec}${rest}`;
        expect(parseQemuLogLine(l, 5)).toEqual(parseQemuLogLineByRegex(l, 5));
      }),
      { numRuns: 5000 },
    );
  });
});
