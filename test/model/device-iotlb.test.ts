import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { addRange, delRange, evictOldest, lookup, RETIRED_KEPT, retiredEntry, translate, wakeCovered, type DeviceIotlb } from '../../src/model/device-iotlb.js';
import { allocIova } from '../../src/model/iova.js';

const tlb = (): DeviceIotlb => ({ entries: [], pending: [] });
const entry = (start: bigint, last: bigint, seq: number, perm: 'RO' | 'WO' | 'RW' = 'RW') => ({ start, last, uaddr: 0x7f00_0000_0000n + start, perm, seq });

describe('vhost device IOTLB (drivers/vhost/iotlb.c rules)', () => {
  it('keeps overlapping entries and resolves to the one with the lowest start', () => {
    const t = tlb();
    addRange(t, entry(0x2000n, 0x2fffn, 1));
    addRange(t, entry(0x1000n, 0x3fffn, 2));
    expect(t.entries).toHaveLength(2);
    expect(lookup(t, 0x2800n)!.seq).toBe(2);
  });

  it('deletes every overlapping entry whole, never splitting it', () => {
    const t = tlb();
    addRange(t, entry(0x0n, 0x1f_ffffn, 1)); // a 2 MiB entry
    addRange(t, entry(0x40_0000n, 0x40_0fffn, 2));
    const gone = delRange(t, 0x1000n, 0x1fffn); // a 4 KiB invalidate inside it
    expect(gone.map((e) => e.seq)).toEqual([1]);
    expect(lookup(t, 0x0n)).toBeNull();
    expect(lookup(t, 0x40_0000n)!.seq).toBe(2);
  });

  it('evicts the oldest entry at the cap', () => {
    const t = tlb();
    for (let i = 0; i < 4; i++) addRange(t, entry(BigInt(i) * 0x1000n, BigInt(i) * 0x1000n + 0xfffn, i + 1), 4);
    const evicted = addRange(t, entry(0x9000n, 0x9fffn, 5), 4);
    expect(evicted!.seq).toBe(1);
    expect(lookup(t, 0x0n)).toBeNull();
  });

  it('wakes a pending miss when the UPDATE ends exactly at the missed byte (the >= rule)', () => {
    const t = tlb();
    t.pending.push({ q: 0, iova: 0x1fffn, perm: 'RO', seq: 7 });
    t.pending.push({ q: 1, iova: 0x5000n, perm: 'RO', seq: 8 });
    const woken = wakeCovered(t, 0x1000n, 0x1000n); // last byte 0x1fff
    expect(woken.map((m) => m.seq)).toEqual([7]);
    expect(t.pending.map((m) => m.seq)).toEqual([8]);
  });

  it('translates a hole to EAGAIN and a permission mismatch to EPERM', () => {
    const t = tlb();
    addRange(t, entry(0x1000n, 0x1fffn, 1, 'RO'));
    expect(translate(t, 0x3000n, 4, 'RO')).toMatchObject({ ok: false, err: 'EAGAIN', addr: 0x3000n });
    expect(translate(t, 0x1000n, 4, 'WO')).toMatchObject({ ok: false, err: 'EPERM' });
    const ok = translate(t, 0x1ff0n, 0x40, 'RO');
    expect(ok).toMatchObject({ ok: true, len: 0x10, hva: 0x7f00_0000_1ff0n });
  });
});

describe('IOVA allocation', () => {
  it('allocates top-down below 4 GiB and hands a freed range out again', () => {
    const live = [{ start: 0xffff_e000n, size: 0x2000n }];
    const a = allocIova(live, 0x1000n)!;
    expect(a).toBe(0xffff_d000n);
    live.push({ start: a, size: 0x1000n });
    expect(allocIova(live, 0x2000n)).toBe(0xffff_b000n);
    live.pop();
    expect(allocIova(live, 0x1000n)).toBe(a);
  });
});

describe('retired entries (the findings’ memory of removals)', () => {
  // the list the kernel-side rules keep is hashed state: whatever retire does inside, its contents
  // must be those of the plain FIFO (shift the oldest at RETIRED_KEPT, push the newest)
  it('keeps the last RETIRED_KEPT removals, oldest first, for any sequence of inserts, invalidations and evictions', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ op: fc.constant('add' as const), page: fc.nat(40), pages: fc.integer({ min: 1, max: 3 }) }), fc.record({ op: fc.constant('del' as const), page: fc.nat(40), pages: fc.integer({ min: 1, max: 8 }) }), fc.record({ op: fc.constant('evict' as const), page: fc.constant(0), pages: fc.constant(0) })), { maxLength: 400 }),
        fc.integer({ min: 2, max: 16 }),
        (ops, max) => {
          const t = tlb();
          const removed: { seq: number; by: number; how: string }[] = [];
          let seq = 0;
          for (const o of ops) {
            seq++;
            if (o.op === 'add') {
              const ev = addRange(t, entry(BigInt(o.page) * 0x1000n, BigInt(o.page + o.pages) * 0x1000n - 1n, seq), max);
              if (ev) removed.push({ seq: ev.seq, by: seq, how: 'evict' });
            } else if (o.op === 'del') {
              for (const g of delRange(t, BigInt(o.page) * 0x1000n, BigInt(o.page + o.pages) * 0x1000n - 1n, seq)) removed.push({ seq: g.seq, by: seq, how: 'invalidate' });
            } else {
              const g = evictOldest(t, seq);
              if (g) removed.push({ seq: g.seq, by: seq, how: 'fault' });
            }
          }
          const want = removed.slice(-RETIRED_KEPT);
          if (!removed.length) expect(t.retired ?? null).toBeNull();
          else expect((t.retired ?? []).map((r) => ({ seq: r.seq, by: r.by, how: r.how }))).toEqual(want);
          for (const w of want) expect(retiredEntry(t, w.seq)).not.toBeNull();
        },
      ),
      { numRuns: 200 },
    );
  });
});
