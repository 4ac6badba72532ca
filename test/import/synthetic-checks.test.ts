// The rules of the real-trace checks (src/check/real.ts) on small synthetic guest + host pairs (see
// synth.ts): each scenario is first shown clean (no finding), then with one thing wrong, and the
// matching check must fire at that IOVA and nowhere else.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importTrace, type ImportResult, MAX_FINDINGS_LISTED } from '../../src/app/import.js';
import { JUDGE } from '../../src/check/index.js';
import { fold } from '../../src/engine/replay.js';
import { replayTrace } from '../../src/app/replay.js';
import { getTrace, listFindings, openDb, readChunks } from '../../src/store/db.js';
import { tempDir } from '../helpers.js';
import { BLK, NET, Run } from './synth.js';

async function imp(run: Run, drop: number[] = []): Promise<ImportResult> {
  const dir = tempDir();
  const f = run.write(dir, drop);
  return importTrace({ db: join(dir, 't.db'), guest: f.guest, host: f.host });
}

const classes = (r: ImportResult) => r.findings.map((f) => [f.class, f.iova]);

const X = 0xfffff000n;
const Y = 0xffffe000n;

describe('strict mode: every unmap needs its IOTLB invalidation', () => {
  let invY = -1;
  // phase 0 holds the boot-time global invalidation; a flush may cover the unmaps of its own phase and
  // of the phases just before and after it (their order is not known), so the I/O is in phase 2
  const strict = () => {
    const r = new Run('intel_iommu=on iommu=nopt iommu.strict=1');
    r.invGlobal().mark(1, 'modules');
    r.mark(2, 'io').map(X, 0x10000000n).map(Y, 0x10001000n).translate(BLK, X + 0x10n, 0x10000000n).translate(BLK, Y, 0x10001000n);
    r.unmap(X).invPage(BLK, X).unmap(Y).invPage(BLK, Y);
    invY = r.lastHost;
    r.mark(3, 'more').map(X, 0x20000000n).invPage(BLK, X).translate(BLK, X, 0x20000000n).unmap(X).invPage(BLK, X);
    r.mark(4, 'done');
    return r;
  };

  it('clean: no finding, and the mode is strict', async () => {
    const r = await imp(strict());
    expect(r.mode?.path).toBe('iommu');
    expect(r.findings).toEqual([]);
    expect(r.byKind['iommu.translate']).toBe(3);
    expect(r.byKind['iommu.inv']).toBe(5);
  });

  it('one invalidation left out: missing-invalidation at that IOVA only', async () => {
    const r = await imp(strict(), [invY]);
    expect(classes(r)).toEqual([['missing-invalidation', '0xffffe000']]);
    expect(r.findings[0]!.message).toMatch(/strict mode: the guest unmapped IOVA \[0xffffe000, 0xfffff000\) at #\d+ in phase 2 \(after marker 2 io\)/);
  });

  it('a domain invalidation covers the unmaps of its phase and the neighbouring ones, not further', async () => {
    const near = strict();
    near.invDomain(BLK); // phase 4: covers phase 3 and 4 unmaps only
    expect(classes(await imp(near, [invY]))).toEqual([['missing-invalidation', '0xffffe000']]);
    const same = new Run('iommu.strict=1');
    same.mark(1, 'modules').mark(2, 'io').map(Y, 0x10001000n).invPage(BLK, 0x1000n).unmap(Y).mark(3, 'x').invDomain(BLK).mark(4, 'y');
    expect((await imp(same)).findings).toEqual([]);
  });
});

describe('lazy mode: an unmapped IOVA must be flushed eventually', () => {
  const lazy = (flush: boolean) => {
    const r = new Run('intel_iommu=on iommu=nopt iommu.strict=0');
    r.invGlobal().mark(1, 'modules');
    r.mark(2, 'io').map(X, 0x10000000n).translate(BLK, X, 0x10000000n).unmap(X);
    r.mark(3, 'later');
    if (flush) r.invDomain(BLK);
    r.mark(4, 'end');
    return r;
  };
  it('flushed in a later phase: no finding', async () => {
    const r = await imp(lazy(true));
    expect(r.mode?.path).toBe('iommu-lazy');
    expect(r.findings).toEqual([]);
  });
  it('never flushed before the logs end: missing-invalidation', async () => {
    expect(classes(await imp(lazy(false)))).toEqual([['missing-invalidation', '0xfffff000']]);
  });
});

describe('translations against the guest mappings', () => {
  it('a translation of an IOVA unmapped in an earlier phase: translate-after-unmap', async () => {
    const r = new Run('iommu.strict=1');
    r.invGlobal();
    r.mark(1, 'io').map(X, 0x10000000n).translate(BLK, X, 0x10000000n).unmap(X).invPage(BLK, X);
    r.mark(2, 'later').translate(BLK, X + 0x40n, 0x10000000n, true);
    r.mark(3, 'end');
    const res = await imp(r);
    // the host log alone already shows it: a hit after the page's invalidation with no fill between
    expect(classes(res)).toEqual([['iotlb-hit-after-invalidation', '0xfffff040']]);
    // as a miss (a fresh walk of a stale page table), the guest's unmap in the earlier phase shows it
    const m = new Run('iommu.strict=1');
    m.invGlobal();
    m.mark(1, 'io').map(X, 0x10000000n).translate(BLK, X, 0x10000000n).unmap(X).invPage(BLK, X);
    m.mark(2, 'later').translate(BLK, X + 0x40n, 0x10000000n);
    m.mark(3, 'end');
    const mr = await imp(m);
    expect(classes(mr)).toEqual([['translate-after-unmap', '0xfffff040']]);
    expect(mr.findings[0]!.message).toMatch(/translated IOVA 0xfffff040 .* but the guest unmapped that IOVA at #\d+ in phase 1 \(after marker 1 io\)/);
  });

  it('the same translation in the phase of the unmap is not judged (the order inside a phase is not known)', async () => {
    const r = new Run('iommu.strict=1');
    r.invGlobal();
    r.mark(1, 'io').map(X, 0x10000000n).unmap(X).invPage(BLK, X).translate(BLK, X, 0x10000000n);
    r.mark(2, 'a').mark(3, 'b');
    expect((await imp(r)).findings).toEqual([]);
  });

  it('a translation to a GPA the guest never mapped there: translate-gpa-mismatch', async () => {
    const r = new Run('iommu.strict=1');
    r.invGlobal();
    r.mark(1, 'io').map(X, 0x10000000n).translate(BLK, X, 0x10000000n).translate(BLK, Y, 0x30000000n).map(Y, 0x10001000n).translate(BLK, Y, 0x10001000n);
    r.mark(2, 'a').mark(3, 'b');
    const res = await imp(r);
    expect(classes(res)).toEqual([['translate-gpa-mismatch', '0xffffe000']]);
  });

  it('two devices mapping the same IOVA to different GPAs (per-domain allocators): no finding', async () => {
    const r = new Run('iommu.strict=0');
    r.invGlobal();
    r.mark(1, 'probe').map(X, 0xa000000n); // virtio-net RX buffer, live all along
    r.mark(2, 'blk').map(X, 0xb000000n).translate(BLK, X, 0xb000000n).translate(NET, X, 0xa000000n).unmap(X); // blk's
    r.invDomain(BLK).map(X, 0xc000000n).translate(BLK, X, 0xc000000n).unmap(X).invDomain(BLK);
    r.mark(3, 'net').translate(NET, X, 0xa000000n, true);
    r.mark(4, 'end');
    expect((await imp(r)).findings).toEqual([]);
  });

  it('in one phase, no invalidation, the old GPA served after the guest remapped: stale-translation', async () => {
    const r = new Run('iommu.strict=1');
    r.invGlobal();
    r.mark(1, 'io').map(X, 0x10000000n).translate(BLK, X, 0x10000000n);
    // well apart in time (the merge may move a translation by a few ms against the guest's events)
    for (let i = 0; i < 40; i++) r.translate(BLK, X + 0x100n, 0x10000100n, true);
    r.unmap(X).map(X, 0x20000000n);
    for (let i = 0; i < 40; i++) r.map(0x80000000n + BigInt(i) * 0x1000n, 0x30000000n + BigInt(i) * 0x1000n);
    for (let i = 0; i < 40; i++) r.translate(BLK, 0x80000000n + BigInt(i) * 0x1000n, 0x30000000n + BigInt(i) * 0x1000n);
    r.translate(BLK, X + 0x200n, 0x10000200n, true);
    r.mark(2, 'end');
    const res = await imp(r);
    // every hit of the old GPA that the clocks place after the guest's remap is stale; the last one certainly is
    expect(res.findings.every((f) => BigInt(f.iova!) >> 12n === X >> 12n)).toBe(true);
    expect(classes(res)).toContainEqual(['stale-translation', '0xfffff200']);
    expect(res.findings.find((f) => f.class === 'stale-translation')!.message).toMatch(/but the guest unmapped that mapping at #\d+ and mapped the IOVA to GPA 0x20000000 at #\d+/);
  });

  it('no shared marker: one phase, still judged at the end of the logs', async () => {
    const r = new Run('iommu.strict=1');
    r.invGlobal().map(X, 0x10000000n).translate(BLK, X, 0x10000000n).translate(BLK, X, 0x10008000n, true);
    r.map(Y, 0x10001000n); // the guest log goes on past the host's last line (aligned by time span)
    const res = await imp(r);
    expect(res.alignment?.method).toBe('span');
    expect(classes(res)).toEqual([['translate-gpa-mismatch', '0xfffff000']]);
  });
});

describe('host order: a GPA change under a constant IOVA needs an invalidation in between', () => {
  const reuse = (inv: boolean) => {
    const r = new Run('iommu.strict=0');
    r.invGlobal();
    r.mark(1, 'a').map(X, 0x10000000n).translate(BLK, X, 0x10000000n).unmap(X);
    if (inv) r.invDomain(BLK);
    r.map(X, 0x20000000n).translate(BLK, X, 0x20000000n).unmap(X).invDomain(BLK);
    r.mark(2, 'b').mark(3, 'c');
    return r;
  };
  it('with the flush: no finding', async () => {
    expect((await imp(reuse(true))).findings).toEqual([]);
  });
  it('without it: reuse-without-invalidation at that IOVA', async () => {
    const res = await imp(reuse(false));
    expect(classes(res)).toEqual([['reuse-without-invalidation', '0xfffff000']]);
    expect(res.findings[0]!.message).toMatch(/device 00:02\.0 \(sid 0x10\) translated IOVA 0xfffff000 to GPA 0x20000000 at #\d+, but to GPA 0x10000000 at #\d+/);
  });
  it('a host log alone is checked too', async () => {
    const dir = tempDir();
    const f = reuse(false).write(dir);
    const res = await importTrace({ db: join(dir, 't.db'), file: f.host });
    expect(res.format).toBe('qemu-log');
    expect(classes(res)).toEqual([['reuse-without-invalidation', '0xfffff000']]);
  });
});

describe('DMAR faults', () => {
  it('repeats of one fault (same device, page, reason, direction) in a phase are one finding', async () => {
    const r = new Run('iommu.strict=1');
    r.mark(1, 'fault');
    for (let i = 0n; i < 4n; i++) r.fault(BLK, 0x12340000n + 4n * i);
    r.fault(BLK, 0x12340000n, 5, true);
    r.mark(2, 'end');
    const res = await imp(r);
    expect(res.byKind['iommu.fault']).toBe(5);
    expect(classes(res)).toEqual([
      ['dmar-fault', '0x12340000'],
      ['dmar-fault', '0x12340000'],
    ]);
    expect(res.findings[1]!.message).toMatch(/write by device 00:02\.0 \(sid 0x10\) at IOVA 0x12340000, fault reason 5 \(PTE Write access is not set\)/);
  });
});

describe('a window that does not close for a long time: unmatched page invalidations stay bounded', () => {
  // a caching-mode vIOMMU gets a page invalidation per map and per unmap; in a window with no marker
  // for long those nobody claims pile up: beyond a bound identical ones are kept as one with a count
  const many = 9000;
  const run = () => {
    const r = new Run('intel_iommu=on iommu=nopt iommu.strict=1');
    r.invGlobal().mark(1, 'modules').mark(2, 'io');
    for (let i = 0; i < many; i++) r.invPage(BLK, Y);
    r.map(Y, 0x10001000n).unmap(Y).map(X, 0x10000000n).unmap(X);
    r.mark(3, 'more').mark(4, 'done');
    return r;
  };

  it('the unmap covered by one of them is satisfied, the other is still missing its invalidation', async () => {
    const dir = tempDir();
    const f = run().write(dir);
    const db = join(dir, 't.db');
    const r = await importTrace({ db, guest: f.guest, host: f.host });
    expect(classes(r)).toEqual([['missing-invalidation', '0xfffff000']]);
    expect(r.byKind['iommu.inv']).toBe(many + 1);
    // the stored trace, folded: the list never holds more than the bound, and counts every
    // invalidation not yet claimed by an unmap
    const store = openDb(db);
    const chunks = [...readChunks(store, getTrace(store, r.trace))].map((c) => ({ seq0: c.seq0, n: c.n, data: Uint8Array.from(c.data) }));
    store.close();
    let pageInvs = 0;
    let yUnmapped = false;
    let longest = 0;
    let checked = 0;
    const folded = fold(chunks, JUDGE, {
      // called once the event is applied, before the checkers judge it: the checkers' state here is
      // that after the events before it
      onEvent: (ev, w) => {
        const real = w.real as { strictInvs: { n?: number }[]; phase: number } | null;
        if (real && real.phase === 2) {
          longest = Math.max(longest, real.strictInvs.length);
          if (ev.seq % 250 === 0 || ev.kind === 'marker') {
            checked++;
            expect(real.strictInvs.reduce((n, i) => n + (i.n ?? 1), 0)).toBe(pageInvs - (yUnmapped ? 1 : 0));
          }
        }
        if (ev.kind === 'iommu.inv' && ev.gran === 'page') pageInvs++;
        if (ev.kind === 'iommu.unmap' && ev.iova === Y) yUnmapped = true;
      },
    });
    expect(checked).toBeGreaterThan(30);
    expect(longest).toBeLessThanOrEqual(8192);
    expect(folded.findings.map((x) => [x.cls, x.iova])).toEqual([['missing-invalidation', X]]);
  });
});

describe('an import with more findings than it lists', () => {
  it('lists the first MAX_FINDINGS_LISTED, counts them all, and stores them all', async () => {
    const r0 = new Run('intel_iommu=on iommu=nopt');
    const n = MAX_FINDINGS_LISTED + 234;
    // one DMAR fault per page: each is a finding of its own (repeats at one page are reported once)
    for (let i = 0; i < n; i++) r0.fault(BLK, 0x10000000n + BigInt(i) * 0x1000n);
    const dir = tempDir();
    const f = r0.write(dir);
    const db = join(dir, 't.db');
    const r = await importTrace({ db, host: f.host });
    expect(r.findingCount).toBe(n);
    expect(r.findings.length).toBe(MAX_FINDINGS_LISTED);
    expect(r.findings.every((x) => x.class === 'dmar-fault')).toBe(true);
    // the listed ones are the first, in trace order
    expect(r.findings[0]!.iova).toBe('0x10000000');
    expect(r.findings[MAX_FINDINGS_LISTED - 1]!.iova).toBe(`0x${(0x10000000 + (MAX_FINDINGS_LISTED - 1) * 0x1000).toString(16)}`);
    const store = openDb(db);
    const stored = listFindings(store, getTrace(store, r.trace));
    expect(stored.length).toBe(n);
    store.close();
    // replay folds the imported trace and judges it again: the same findings, the first ones listed, all counted
    const rep = replayTrace(db, String(r.trace));
    expect(rep).toMatchObject({ mode: 'fold', ok: true, findingCount: n });
    expect(rep.findings.length).toBe(MAX_FINDINGS_LISTED);
    expect(rep.findings.map((x) => [x.class, x.seq])).toEqual(stored.slice(0, MAX_FINDINGS_LISTED).map((x) => [x.class, x.seq]));
  });
});
