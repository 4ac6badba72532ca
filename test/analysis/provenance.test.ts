// why (provenance) keeps only the current writers of the range, not every translation and finding of
// the trace (a 10M-event trace took 520 MB): it must say exactly what the keep-everything version
// said, whatever the range, the moment and the trace.
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { whyBytes } from '../../src/app/analyze.js';
import { withTrace } from '../../src/app/load.js';
import { logTrace } from '../../src/app/log.js';
import { record } from '../../src/app/record.js';
import type { DmaEvent } from '../../src/events/schema.js';
import { readChunks } from '../../src/store/db.js';
import { provenance } from '../../src/analysis/provenance.js';
import { decodeAt, sizeAt } from '../../src/events/binary.js';

/** the offset of the i-th event in a chunk */
const offsetOf = (data: Uint8Array, i: number) => {
  let off = 0;
  for (let k = 0; k < i; k++) off += sizeAt(data, off);
  return off;
};
import { referenceProvenance } from './reference-analyses.js';
import { tempDir } from '../helpers.js';

const writesOf = (db: string, trace: number) => {
  const out: { seq: number; gpa: bigint; len: number }[] = [];
  logTrace(db, String(trace), {}, (ev: DmaEvent) => {
    if (ev.kind === 'dev.access' && ev.dir === 'write') out.push({ seq: ev.seq, gpa: ev.gpa, len: ev.len });
  });
  return out;
};

const reference = (db: string, trace: number, at: number, gpa: bigint, len: number) =>
  withTrace(db, String(trace), ({ db: d, trace: t }) => referenceProvenance(readChunks(d, t, 1, at), at, gpa, len));

describe('why: bounded provenance', () => {
  it('agrees with the keep-everything version on any written range, at any later event', () => {
    const dir = tempDir();
    let n = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }).map(String),
        fc.integer({ min: 6, max: 40 }),
        fc.nat(),
        fc.integer({ min: -8, max: 8 }),
        fc.integer({ min: 1, max: 96 }),
        fc.nat(),
        (seed, ops, pick, shift, len, later) => {
          const db = join(dir, `w${n++}.db`);
          const t = record({ db, seed, config: { workload: 'remap', path: 'iommu', ops, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] } });
          const writes = writesOf(db, t.trace);
          const w = writes[pick % writes.length]!;
          const gpa = w.gpa + BigInt(shift) > 0n ? w.gpa + BigInt(shift) : w.gpa;
          const at = w.seq + (later % (t.events - w.seq + 1));
          expect(whyBytes(db, String(t.trace), at, gpa, len).runs).toEqual(reference(db, t.trace, at, gpa, len));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('pruning after every new writer (gap 1) changes nothing: any range, any moment', () => {
    const dir = tempDir();
    let n = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }).map(String), fc.nat(), fc.integer({ min: 1, max: 300 }), fc.nat(), (seed, pick, len, later) => {
        const db = join(dir, `g${n++}.db`);
        const t = record({ db, seed, config: { workload: 'remap', path: 'iommu', ops: 20, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] } });
        const writes = writesOf(db, t.trace);
        const w = writes[pick % writes.length]!;
        const at = w.seq + (later % (t.events - w.seq + 1));
        withTrace(db, String(t.trace), ({ db: d, trace }) => {
          const eventAt = (seq: number) => {
            for (const c of readChunks(d, trace, seq, seq)) return decodeAt(c.data, offsetOf(c.data, seq - c.seq0), seq);
            return null;
          };
          const got = provenance(readChunks(d, trace, 1, at), at, w.gpa, len, eventAt, 1);
          expect(got).toEqual(referenceProvenance(readChunks(d, trace, 1, at), at, w.gpa, len));
        });
      }),
      { numRuns: 20 },
    );
  });

  it('agrees on a ring index rewritten at every operation (more writers than it keeps at once)', () => {
    const db = join(tempDir(), 'ring.db');
    const t = record({ db, seed: '5', config: { workload: 'remap', path: 'iommu', ops: 400, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] } });
    let availIdx = 0n; // avail->idx of queue 1: the driver rewrites it at every post
    let posts = 0;
    logTrace(db, String(t.trace), {}, (ev: DmaEvent) => {
      if (ev.kind === 'vring.setup' && ev.q === 1) availIdx = ev.availGpa + 2n;
      if (ev.kind === 'vring.post' && ev.q === 1) posts++;
    });
    expect(posts).toBeGreaterThan(3 * 64); // more writers than the kept set holds for len 2: it is pruned on the way, more than once
    const r = whyBytes(db, String(t.trace), t.events, availIdx, 2).runs;
    expect(r).toEqual(reference(db, t.trace, t.events, availIdx, 2));
    expect(r.some((x) => x.writer?.kind === 'vring.post')).toBe(true);
  });
});
