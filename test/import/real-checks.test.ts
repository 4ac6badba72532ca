// The importer and the real-trace checks on real logs.
// - Always: the excerpts in traces/real/ (verbatim cuts, see PROVENANCE.md), imported as guest + host
//   pairs: the clean runs give no finding, the fault run gives the real DMAR fault, and an excerpt
//   mutated here (one invalidation removed; one translated address changed) makes the matching check
//   fire at that IOVA and nowhere else. The expected IOVAs are worked out from the raw text with
//   regular expressions, not with the importer.
// - Where /work/shared/traces-real exists: the whole runs, and their counts against stats-*.txt.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTrace, type ImportResult } from '../../src/app/import.js';
import { traceStats } from '../../src/app/stats.js';
import { tempDir } from '../helpers.js';

const FIX = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real');
// the shared originals sit next to the repository (../shared/traces-real), where they exist at all
const SHARED = process.env.DMAREPLAY_SHARED_TRACES ?? resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/traces-real');
const HAVE_SHARED = existsSync(join(SHARED, 'NOTES.md'));

async function pair(guest: string, host: string): Promise<ImportResult & { db: string }> {
  const db = join(tempDir(), 't.db');
  return { ...(await importTrace({ db, guest, host })), db };
}

const page = (a: string | bigint): bigint => BigInt(a) >> 12n;
const classes = (r: ImportResult) => r.findings.map((f) => f.class);

describe('real excerpts (traces/real): clean runs give no finding', () => {
  it.each([
    ['vtd-lazy phase 5 (blk-write-buffered)', 'guest-vtd-lazy.p005-blk-write-buffered.txt', 'qemu-vtd-lazy.p005-blk-write-buffered.log'],
    ['vtd-lazy phase 7 (net-up)', 'guest-vtd-lazy.p007-net-up.txt', 'qemu-vtd-lazy.p007-net-up.log'],
    ['vtd-pt (identity domains)', 'guest-vtd-pt.txt', 'qemu-vtd-pt.boot-dmar-enable.log'],
    ['swiotlb phase 6 (blk-read-small-direct)', 'guest-swiotlb.p006-blk-read-small-direct.txt', 'qemu-swiotlb.p006-blk-read-small-direct.log'],
  ])('%s', async (_name, g, h) => {
    const r = await pair(join(FIX, g), join(FIX, h));
    expect(r.findings).toEqual([]);
    expect(r.malformed).toBe(0);
    expect(r.events).toBeGreaterThan(100);
  });

  it('phase 7: what the pair holds, and how it was aligned', async () => {
    const r = await pair(join(FIX, 'guest-vtd-lazy.p007-net-up.txt'), join(FIX, 'qemu-vtd-lazy.p007-net-up.log'));
    expect(r.byKind['iommu.map']).toBe(298);
    expect(r.byKind['iommu.unmap']).toBe(42);
    expect(r.byKind['iommu.translate']).toBe(163); // one per vtd_dmar_translate line
    expect(r.byKind['iommu.inv']).toBe(4);
    expect(r.mode).toMatchObject({ path: 'iommu-lazy' });
    expect(r.mode!.why).toMatch(/iommu\.strict=0/);
    expect(r.alignment!.method).toBe('markers');
    expect(r.alignment!.boundaries).toEqual([{ n: 7, name: 'net-up' }]);
    const [p0, p1] = r.alignment!.phases;
    expect(p0).toMatchObject({ phase: 0, guestEvents: 1 }); // the RT-TRACE-BEGIN line
    expect(p1).toMatchObject({ phase: 1, n: 7, name: 'net-up' });
    expect(p1!.guestEvents).toBe(298 + 42 + 1); // maps, unmaps, RT-TRACE-END
    expect(r.alignment!.note).toMatch(/shift tracked along the host translations/);
  });

  it('vtd-fault phase 10: the real DMAR fault, with device, address, reason and direction', async () => {
    const r = await pair(join(FIX, 'guest-vtd-fault.txt'), join(FIX, 'qemu-vtd-fault.p010-fault-e1000-tx.log'));
    expect(r.byKind['iommu.fault']).toBe(16); // 16 vtd_dmar_fault lines, 0x12340000 + 4i
    expect(r.findings).toHaveLength(1); // the retries of the same page are one fault
    const f = r.findings[0]!;
    expect(f.class).toBe('dmar-fault');
    expect(f.iova).toBe('0x12340000');
    expect(f.message).toMatch(/^DMAR fault: read by device 00:02\.0 \(sid 0x10, e1000\) at IOVA 0x12340000, fault reason 6 \(PTE Read access is not set\)$/);
    const s = traceStats(r.db, String(r.trace));
    expect(s.faults).toEqual([{ device: '00:02.0', reason: 6, write: false, count: 16, firstSeq: f.cause, firstIova: '0x12340000' }]);
  });
});

describe('a real excerpt mutated by hand: the matching check fires at that IOVA and nowhere else', () => {
  const G = join(FIX, 'guest-vtd-lazy.p007-net-up.txt');
  const H = join(FIX, 'qemu-vtd-lazy.p007-net-up.log');
  const hostLines = readFileSync(H, 'utf8').split('\n');

  it('one invalidation removed → reuse-without-invalidation at the IOVA that needed it', async () => {
    // excerpt line 355: the whole-domain invalidation of domain 5 (virtio-net) at …493.125062
    const removed = 354;
    expect(hostLines[removed]).toMatch(/vtd_inv_desc_iotlb_domain iotlb invalidate whole domain 0x5$/);
    // independently of the importer: which (sid, IOVA page) changes GPA across it with no other
    // invalidation in between?
    const want = new Set<string>();
    const last = new Map<string, { gpa: bigint; inv: number }>();
    let inv = 0;
    hostLines.forEach((l, i) => {
      if (i !== removed && /vtd_inv_desc_iotlb_(domain|global|pages) /.test(l)) inv++;
      const m = /vtd_iotlb_page_(?:hit|update) IOTLB page (?:hit|update) sid (0x[0-9a-f]+) iova (0x[0-9a-f]+) slpte (0x[0-9a-f]+)/.exec(l);
      if (!m) return;
      const key = `${m[1]}:${page(m[2]!)}`;
      const gpa = BigInt(m[3]!) >> 12n;
      const p = last.get(key);
      if (p && p.gpa !== gpa && p.inv === inv) want.add(key);
      last.set(key, { gpa, inv });
    });
    expect([...want]).toEqual([`0x18:${page('0xffe97000')}`]);

    const dir = tempDir();
    writeFileSync(join(dir, 'q.log'), hostLines.filter((_, i) => i !== removed).join('\n'));
    const r = await pair(G, join(dir, 'q.log'));
    expect(classes(r)).toEqual(['reuse-without-invalidation']);
    expect(page(r.findings[0]!.iova!)).toBe(page('0xffe97000'));
    expect(r.findings[0]!.message).toMatch(/^device 00:03\.0 \(sid 0x18\) translated IOVA 0xffe97/);
  });

  it('one translated address changed → translate-gpa-mismatch at that IOVA', async () => {
    // excerpt line 17: virtio-net's translation of 0xffebc000, which the guest mapped to 0x47f7000
    const at = 16;
    expect(hostLines[at]).toMatch(/vtd_dmar_translate dev 00:03\.00 iova 0xffebc000 -> gpa 0x47f7000 mask 0xfff$/);
    expect(readFileSync(G, 'utf8')).toMatch(/map: IOMMU: iova=0x00000000ffebc000 - 0x00000000ffebd000 paddr=0x00000000047f7000 size=4096/);
    const dir = tempDir();
    writeFileSync(join(dir, 'q.log'), hostLines.map((l, i) => (i === at ? l.replace('gpa 0x47f7000', 'gpa 0x47f8000') : l)).join('\n'));
    const r = await pair(G, join(dir, 'q.log'));
    expect(classes(r)).toEqual(['translate-gpa-mismatch']);
    const f = r.findings[0]!;
    expect(page(f.iova!)).toBe(page('0xffebc000'));
    expect(page(f.gpa!)).toBe(page('0x47f8000'));
    expect(f.message).toMatch(/the guest mapped that IOVA page only to GPA 0x47f7000/);
  });
});

// ---------------------------------------------------------------------------------------------

/** stats-CASE.txt → {host: event → count, guest: event → count} */
function parseStats(text: string): { host: Map<string, number>; guest: Map<string, number> } {
  let section: 'host' | 'guest' | null = null;
  const host = new Map<string, number>();
  const guest = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# host:')) section = 'host';
    else if (line.startsWith('# guest:')) section = 'guest';
    else {
      const m = /^\s*(\d+) (\S+)$/.exec(line);
      if (m && section) (section === 'host' ? host : guest).set(m[2]!.replace(/:$/, ''), parseInt(m[1]!, 10));
    }
  }
  return { host, guest };
}

describe.skipIf(!HAVE_SHARED)('whole real runs (/work/shared/traces-real)', () => {
  const CASES = ['vtd-lazy', 'vtd-pt', 'swiotlb', 'vtd-fault'] as const;
  const runs = new Map<string, ImportResult & { db: string }>();
  beforeAll(async () => {
    for (const c of CASES) runs.set(c, await pair(join(SHARED, `guest-${c}.txt`), join(SHARED, `qemu-${c}.log`)));
  });

  it.each(['vtd-lazy', 'vtd-pt', 'swiotlb'])('%s: zero findings', (c) => {
    expect(runs.get(c)!.findings).toEqual([]);
  });

  it('vtd-fault: exactly the real DMAR fault (sid 0x10, 0x12340000, reason 6, a read)', () => {
    const r = runs.get('vtd-fault')!;
    expect(r.findings.map((f) => [f.class, f.iova])).toEqual([['dmar-fault', '0x12340000']]);
    expect(r.findings[0]!.message).toMatch(/read by device 00:02\.0 \(sid 0x10, e1000\) at IOVA 0x12340000, fault reason 6/);
  });

  it.each(CASES)('%s: map/unmap/translate/bounce/fault counts equal its stats file', (c) => {
    const want = parseStats(readFileSync(join(SHARED, `stats-${c}.txt`), 'utf8'));
    const s = traceStats(runs.get(c)!.db, String(runs.get(c)!.trace));
    expect(s.iommu.maps).toBe(want.guest.get('map') ?? 0);
    expect(s.iommu.unmaps).toBe(want.guest.get('unmap') ?? 0);
    expect(s.iommu.translations).toBe(want.host.get('vtd_dmar_translate') ?? 0);
    expect(s.iommu.translationsByCache.hit ?? 0).toBe(want.host.get('vtd_iotlb_page_hit') ?? 0);
    expect(s.iommu.translationsByCache.miss ?? 0).toBe(want.host.get('vtd_iotlb_page_update') ?? 0);
    expect(s.swiotlb.bounces).toBe(want.guest.get('swiotlb_bounced') ?? 0);
    expect(s.faults.reduce((n, f) => n + f.count, 0)).toBe(want.host.get('vtd_dmar_fault') ?? 0);
    const inv = (k: string) => s.iommu.invalidations[k] ?? 0;
    expect(inv('page')).toBe(want.host.get('vtd_inv_desc_iotlb_pages') ?? 0);
    expect(inv('domain')).toBe(want.host.get('vtd_inv_desc_iotlb_domain') ?? 0);
    expect(inv('global')).toBe(want.host.get('vtd_inv_desc_iotlb_global') ?? 0);
    expect(s.byKind['vq.pop'] ?? 0).toBe(want.host.get('virtqueue_pop') ?? 0);
    // every line is one event (or, for a lookup + translate pair, one together)
    const r = runs.get(c)!;
    expect(r.malformed).toBe(0);
    expect(r.truncated).toEqual([]);
  });

  it('swiotlb: bounces per device and size', () => {
    const s = traceStats(runs.get('swiotlb')!.db, String(runs.get('swiotlb')!.trace));
    const text = readFileSync(join(SHARED, 'guest-swiotlb.txt'), 'utf8');
    for (const d of s.swiotlb.byDevice) {
      const re = new RegExp(`swiotlb_bounced: dev_name: 0000:${d.device.replace('.', '\\.')} .* size=(\\d+) `, 'g');
      const sizes = new Map<string, number>();
      for (const m of text.matchAll(re)) sizes.set(m[1]!, (sizes.get(m[1]!) ?? 0) + 1);
      expect(d.bySize).toEqual(Object.fromEntries([...sizes].sort(([a], [b]) => Number(a) - Number(b))));
    }
    expect(s.swiotlb.byDevice.map((d) => d.device)).toEqual(['00:02.0', '00:03.0']);
  });

  it('vtd-lazy: the whole run mutated (one invalidation removed, one translated address changed)', async () => {
    const lines = readFileSync(join(SHARED, 'qemu-vtd-lazy.log'), 'utf8').split('\n');
    const dir = tempDir();
    expect(lines[25107]).toMatch(/vtd_inv_desc_iotlb_domain iotlb invalidate whole domain 0x5$/);
    writeFileSync(join(dir, 'a.log'), lines.filter((_, i) => i !== 25107).join('\n'));
    const a = await pair(join(SHARED, 'guest-vtd-lazy.txt'), join(dir, 'a.log'));
    expect(a.findings.map((f) => [f.class, page(f.iova!)])).toEqual([['reuse-without-invalidation', page('0xffe97000')]]);
    expect(lines[14090]).toMatch(/vtd_dmar_translate dev 00:02\.00 iova 0xfffca000 -> gpa 0x4972000 /);
    writeFileSync(join(dir, 'b.log'), lines.map((l, i) => (i === 14090 ? l.replace('gpa 0x4972000', 'gpa 0x4973000') : l)).join('\n'));
    const b = await pair(join(SHARED, 'guest-vtd-lazy.txt'), join(dir, 'b.log'));
    expect(b.findings.map((f) => [f.class, page(f.iova!)])).toEqual([['translate-gpa-mismatch', page('0xfffca000')]]);
  });
});
