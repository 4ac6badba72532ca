// Whole real runs captured here with make-traces.sh (traces/real/runs/, brotli-compressed verbatim
// copies, see PROVENANCE.md): strict-mode VT-d in caching mode (vtd-cm) and AMD-Vi (amd).
// - clean: no finding, the order rebuilt from the clocks puts >= 95% of host translations inside a
//   live guest mapping, counts equal the stats files;
// - each in-phase race injected into a copy of the real log (lines deleted, inserted, moved,
//   duplicated, the guest log cut) is found at that IOVA and nowhere else. What to mutate is worked
//   out from the raw text with regular expressions, not with the importer.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTrace, type ImportResult } from '../../src/app/import.js';
import { traceStats } from '../../src/app/stats.js';
import { tempDir } from '../helpers.js';

const RUNS = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real/runs');
const text = (f: string): string => brotliDecompressSync(readFileSync(join(RUNS, `${f}.br`))).toString('utf8');
const page = (a: string | bigint): bigint => BigInt(a) >> 12n;

async function pair(guest: string, host: string): Promise<ImportResult & { db: string }> {
  const dir = tempDir();
  writeFileSync(join(dir, 'g.txt'), guest);
  writeFileSync(join(dir, 'q.log'), host);
  const db = join(dir, 't.db');
  return { ...(await importTrace({ db, guest: join(dir, 'g.txt'), host: join(dir, 'q.log') })), db };
}

function parseStats(t: string): { host: Map<string, number>; guest: Map<string, number> } {
  let side: 'host' | 'guest' | null = null;
  const host = new Map<string, number>();
  const guest = new Map<string, number>();
  for (const line of t.split('\n')) {
    if (line.startsWith('# host:')) side = 'host';
    else if (line.startsWith('# guest:')) side = 'guest';
    const m = /^\s*(\d+) (\S+)$/.exec(line);
    if (m && side) (side === 'host' ? host : guest).set(m[2]!.replace(/:$/, ''), Number(m[1]));
  }
  return { host, guest };
}

/** Host log lines of phase n: after the `0x525400NN` marker line, up to the next marker. */
function hostPhase(lines: string[], n: number): [number, number] {
  const hex = n.toString(16).padStart(2, '0');
  const a = lines.findIndex((l) => l.endsWith(`@0xfc <- 0x525400${hex}`));
  const b = lines.findIndex((l, i) => i > a && /@0xfc <- 0x525400[0-9a-f]{2}$/.test(l));
  return [a, b];
}

const GUEST_MAP = /map: IOMMU: iova=0x([0-9a-f]+) - 0x[0-9a-f]+ paddr=0x([0-9a-f]+) size=4096$/;
const GUEST_UNMAP = /unmap: IOMMU: iova=0x([0-9a-f]+) - 0x[0-9a-f]+ size=(\d+) unmapped_size=\d+$/;

describe('captured runs: clean', () => {
  const runs = new Map<string, ImportResult & { db: string }>();
  beforeAll(async () => {
    for (const c of ['vtd-cm', 'amd']) runs.set(c, await pair(text(`guest-${c}.txt`), text(`qemu-${c}.log`)));
  }, 120_000);

  it.each(['vtd-cm', 'amd'])('%s: strict mode, no finding, >= 95%% of translations inside a live mapping', (c) => {
    const r = runs.get(c)!;
    expect(r.findings).toEqual([]);
    expect(r.mode?.path).toBe('iommu');
    const s = traceStats(r.db, String(r.trace));
    expect(s.order!.translations).toBeGreaterThan(6000);
    expect(s.order!.share).toBeGreaterThanOrEqual(0.95);
    expect(r.alignment!.order!.insideLiveMapping).toBe(s.order!.insideLiveMapping);
  });

  it('vtd-cm: counts equal its stats file', () => {
    const r = runs.get('vtd-cm')!;
    const want = parseStats(readFileSync(join(RUNS, 'stats-vtd-cm.txt'), 'utf8'));
    const s = traceStats(r.db, String(r.trace));
    expect(s.iommu.maps).toBe(want.guest.get('map'));
    expect(s.iommu.unmaps).toBe(want.guest.get('unmap'));
    expect(s.iommu.translations).toBe(want.host.get('vtd_dmar_translate'));
    expect(s.iommu.translationsByCache.hit).toBe(want.host.get('vtd_iotlb_page_hit'));
    expect(s.iommu.translationsByCache.miss).toBe(want.host.get('vtd_iotlb_page_update'));
    expect(s.iommu.invalidations.page).toBe(want.host.get('vtd_inv_desc_iotlb_pages'));
    expect(s.iommu.invalidations.domain).toBe(want.host.get('vtd_inv_desc_iotlb_domain'));
    expect(s.iommu.invalidations.global).toBe(want.host.get('vtd_inv_desc_iotlb_global'));
  });

  it('amd: counts equal its stats file; all-inval is a global invalidation; the blocked e1000 fetches are no dmar-fault', () => {
    const r = runs.get('amd')!;
    const want = parseStats(readFileSync(join(RUNS, 'stats-amd.txt'), 'utf8'));
    const s = traceStats(r.db, String(r.trace));
    expect(s.iommu.maps).toBe(want.guest.get('map'));
    expect(s.iommu.unmaps).toBe(want.guest.get('unmap'));
    expect(s.iommu.translations).toBe(want.host.get('amdvi_translation_result'));
    expect(s.iommu.invalidations.domain).toBe(want.host.get('amdvi_pages_inval'));
    expect(s.iommu.invalidations.global).toBe(want.host.get('amdvi_all_inval'));
    // the e1000 (00:05.0) fetching TX descriptors at the unmapped IOVA 0x12340000: hpa 0x0, no fault line
    const zero = text('qemu-amd.log').split('\n').filter((l) => /amdvi_translation_result devid: 00:05\.0 gpa 0x[0-9a-f]+ hpa 0x0$/.test(l)).length;
    expect(zero).toBeGreaterThan(0);
    expect(s.blocked).toEqual({ '00:05.0': zero });
    expect(r.notes.join(' ')).toMatch(/raised no fault/);
    expect(r.mode!.why).toMatch(/invalidations for \d+ guest unmaps/);
  });
});

describe('captured vtd-cm run, mutated: each injected race is found at its IOVA and nowhere else', () => {
  const G = text('guest-vtd-cm.txt');
  const H = text('qemu-vtd-cm.log');
  const hl = H.split('\n');
  const gl = G.split('\n');
  const pages = (r: ImportResult) => [...new Set(r.findings.map((f) => page(f.iova!)))];

  it('an IOTLB hit right after the invalidation that covered it, no fill between → iotlb-hit-after-invalidation', async () => {
    // the first page invalidation in phase 3 whose page virtio-blk filled before it
    const [a, b] = hostPhase(hl, 3);
    let at = -1;
    let fill: RegExpExecArray | null = null;
    for (let i = a; i < b && at < 0; i++) {
      const inv = /vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x([0-9a-f]+) addr 0x([0-9a-f]+) mask 0x0$/.exec(hl[i]!);
      if (!inv) continue;
      for (let j = i - 1; j > a; j--) {
        const f = new RegExp(`vtd_iotlb_page_update IOTLB page update sid (0x[0-9a-f]+) iova 0x(${inv[2]}[0-9a-f]{0,0}) slpte (0x[0-9a-f]+) domain 0x${inv[1]}$`).exec(hl[j]!);
        if (f) {
          fill = f;
          at = i;
          break;
        }
      }
    }
    expect(at).toBeGreaterThan(0);
    const [, sid, iova, slpte] = fill!;
    const tid = hl[at]!.split('@')[0];
    const ts = hl[at]!.split('@')[1]!.split(':')[0];
    const gpa = `0x${(BigInt(slpte!) & ~0xfffn).toString(16)}`;
    const sidN = Number(sid);
    const dev = `${(sidN >> 8).toString(16).padStart(2, '0')}:${((sidN >> 3) & 31).toString(16).padStart(2, '0')}.${(sidN & 7).toString(16).padStart(2, '0')}`;
    const hit = [`${tid}@${ts}:vtd_iotlb_page_hit IOTLB page hit sid ${sid} iova 0x${iova} slpte ${slpte} domain ${/domain (0x[0-9a-f]+)/.exec(fill![0])![1]}`, `${tid}@${ts}:vtd_dmar_translate dev ${dev} iova 0x${iova} -> gpa ${gpa} mask 0xfff`];
    const mutated = [...hl.slice(0, at + 1), ...hit, ...hl.slice(at + 1)].join('\n');
    const r = await pair(G, mutated);
    expect(r.findings.map((f) => f.class)).toEqual(['iotlb-hit-after-invalidation']);
    expect(pages(r)).toEqual([page(`0x${iova}`)]);
  });

  // The guest unmaps the old mapping and maps the new one about 2.8 ms apart here (TCG), so the merge's
  // causality repair needs that reach (REPAIR_US) to put the host's first translation to the new GPA
  // after the guest's remap; with less, the stale hit looked like a translation inside the old mapping.
  it('invalidations dropped and a hit returning the old GPA after the guest remapped, in one phase → stale-translation', async () => {
    // guest phase 3: the first IOVA mapped to one GPA, unmapped, then mapped to another
    const g0 = gl.findIndex((l) => l.includes('RT-MARK 3 '));
    const g1 = gl.findIndex((l) => l.includes('RT-MARK 4 '));
    const seen = new Map<string, string>();
    let iova = '';
    let oldGpa = '';
    let newGpa = '';
    for (let i = g0; i < g1 && !iova; i++) {
      const m = GUEST_MAP.exec(gl[i]!);
      if (!m) continue;
      const was = seen.get(m[1]!);
      if (was && was !== m[2]) [iova, oldGpa, newGpa] = [m[1]!, was, m[2]!];
      seen.set(m[1]!, m[2]!);
    }
    expect(iova).not.toBe('');
    const x = BigInt(`0x${iova}`);
    const [a, b] = hostPhase(hl, 3);
    // the host's first translation of the IOVA to the new GPA
    const newAt = hl.findIndex((l, i) => i > a && i < b && new RegExp(`vtd_dmar_translate dev \\S+ iova 0x${x.toString(16)} -> gpa 0x${BigInt(`0x${newGpa}`).toString(16)} `).test(l));
    expect(newAt).toBeGreaterThan(a);
    const tr = hl[newAt]!;
    const lookup = hl[newAt - 1]!;
    expect(lookup).toMatch(/vtd_iotlb_page_update/);
    const oldG = `0x${BigInt(`0x${oldGpa}`).toString(16)}`;
    const stale = [
      lookup.replace('vtd_iotlb_page_update IOTLB page update', 'vtd_iotlb_page_hit IOTLB page hit').replace(/slpte 0x[0-9a-f]+/, `slpte ${oldG.slice(0, -3)}003`),
      tr.replace(/-> gpa 0x[0-9a-f]+/, `-> gpa ${oldG}`),
    ];
    // every page invalidation of that IOVA in the phase removed
    const invRe = new RegExp(`vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x[0-9a-f]+ addr 0x${x.toString(16)} mask 0x0$`);
    const mutated: string[] = [];
    hl.forEach((l, i) => {
      if (i > a && i < b && invRe.test(l)) return;
      mutated.push(l);
      if (i === newAt) mutated.push(...stale);
    });
    const r = await pair(G, mutated.join('\n'));
    expect(r.findings.map((f) => f.class)).toContain('stale-translation');
    expect(pages(r)).toEqual([page(x)]);
    const f = r.findings.find((y) => y.class === 'stale-translation')!;
    expect(BigInt(f.gpa!)).toBe(BigInt(oldG));
  });

  it('a device use moved before the guest first maps that IOVA → translate-before-map', async () => {
    // an IOVA page the guest maps for the first time in phase 7 (net-up), and the host's first translation of it
    const first = new Map<string, number>();
    let phase = 0;
    for (const l of gl) {
      const mk = /RT-MARK (\d+) /.exec(l);
      if (mk) phase = Number(mk[1]);
      const m = GUEST_MAP.exec(l);
      if (m && !first.has(m[1]!)) first.set(m[1]!, phase);
    }
    const [a7, b7] = hostPhase(hl, 7);
    let at = -1;
    for (let i = a7; i < b7 && at < 0; i++) {
      const m = /vtd_dmar_translate dev \S+ iova 0x([0-9a-f]+) -> gpa/.exec(hl[i]!);
      if (m && first.get(BigInt(`0x${m[1]}`).toString(16).padStart(16, '0')) === 7 && /vtd_iotlb_page_update/.test(hl[i - 1]!)) at = i;
    }
    expect(at).toBeGreaterThan(0);
    const moved = hl.slice(at - 1, at + 1);
    const iova = /iova 0x([0-9a-f]+) ->/.exec(moved[1]!)![1]!;
    // moved to phase 2, right after its marker
    const [a2] = hostPhase(hl, 2);
    const rest = hl.filter((_, i) => i !== at - 1 && i !== at);
    const mutated = [...rest.slice(0, a2 + 1), ...moved, ...rest.slice(a2 + 1)].join('\n');
    const r = await pair(G, mutated);
    expect(r.findings.map((f) => f.class)).toContain('translate-before-map');
    expect(pages(r)).toEqual([page(`0x${iova}`)]);
  });

  it('a guest unmap duplicated → double-unmap', async () => {
    // a phase-3 unmap after which nothing maps the page (maps minus unmaps per page back to 0)
    const live = new Map<string, number>();
    let at = -1;
    let phase = 0;
    gl.forEach((l, i) => {
      const mk = /RT-MARK (\d+) /.exec(l);
      if (mk) phase = Number(mk[1]);
      const m = GUEST_MAP.exec(l);
      if (m) live.set(m[1]!, (live.get(m[1]!) ?? 0) + 1);
      const u = GUEST_UNMAP.exec(l);
      if (u && u[2] === '4096') {
        live.set(u[1]!, (live.get(u[1]!) ?? 0) - 1);
        if (at < 0 && phase === 3 && live.get(u[1]!) === 0) at = i;
      }
    });
    expect(at).toBeGreaterThan(0);
    const iova = GUEST_UNMAP.exec(gl[at]!)![1]!;
    const mutated = [...gl.slice(0, at + 1), gl[at]!, ...gl.slice(at + 1)].join('\n');
    const r = await pair(mutated, H);
    expect(r.findings.map((f) => f.class)).toContain('double-unmap');
    expect(pages(r)).toEqual([page(`0x${iova}`)]);
  });

  it('the guest log cut off in the middle of phase 3 → no finding, and the import says what was not judged', async () => {
    const g0 = gl.findIndex((l) => l.includes('RT-MARK 3 '));
    const g1 = gl.findIndex((l) => l.includes('RT-MARK 4 '));
    const cut = gl.slice(0, Math.floor((g0 + g1) / 2)).join('\n') + '\n';
    const r = await pair(cut, H);
    expect(r.truncated.map((t) => t.file)).toEqual([expect.stringMatching(/g\.txt$/)]);
    expect(r.findings).toEqual([]);
    expect(r.notes.join(' ')).toMatch(/cut off: host events after its end .* are not judged/);
    const s = traceStats(r.db, String(r.trace));
    expect(s.notes.join(' ')).toMatch(/guest log was cut off/);
  });
});

// vhost-user run (runs/vhost-run.sh, PROVENANCE.md): DPDK testpmd's vhost PMD (iommu-support=1) serves
// the device IOTLB of a virtio-net with iommu_platform=on behind VT-d in caching mode.
describe('captured vhost-user run', () => {
  let r: ImportResult & { db: string };
  let host: string[];
  beforeAll(async () => {
    host = text('qemu-vhost.log').split('\n');
    r = await pair(text('guest-vhost.txt'), host.join('\n'));
  }, 60_000);

  it('no finding; every miss, UPDATE and INVALIDATE QEMU exchanged with the back-end is an iotlb event', () => {
    expect(r.findings).toEqual([]);
    expect(r.mode?.path).toBe('iommu');
    const count = (re: RegExp) => host.filter((l) => re.test(l)).length;
    const misses = count(/:vhost_iotlb_miss \S+ step 1$/);
    expect(misses).toBeGreaterThan(10);
    expect(count(/:vhost_iotlb_miss \S+ step 2$/)).toBe(misses); // every miss answered
    // VHOST_USER_IOTLB_MSG (req 22) writes: one UPDATE per miss, the rest are invalidations
    const iotlbMsgs = count(/:vhost_user_write req:22 /);
    expect(r.byKind['iotlb.miss']).toBe(misses);
    expect(r.byKind['iotlb.update']).toBe(misses);
    expect(r.byKind['iotlb.invalidate']).toBe(iotlbMsgs - misses);
    expect(r.byKind['iotlb.invalidate']).toBeGreaterThan(100);
    expect(r.unknownByEvent['vhost_iotlb_miss'] ?? 0).toBe(0);
  });

  it('strict VT-d: >= 95% of its translations (most of them the back-end\'s misses, seconds apart) inside a live mapping', () => {
    const s = traceStats(r.db, String(r.trace));
    expect(s.order!.translations).toBeGreaterThan(100);
    expect(s.order!.share).toBeGreaterThanOrEqual(0.95);
  });

  it('counts equal its stats file', () => {
    const want = parseStats(readFileSync(join(RUNS, 'stats-vhost.txt'), 'utf8'));
    const s = traceStats(r.db, String(r.trace));
    expect(s.iommu.maps).toBe(want.guest.get('map'));
    expect(s.iommu.unmaps).toBe(want.guest.get('unmap'));
    expect(s.iommu.translations).toBe(want.host.get('vtd_dmar_translate'));
    expect(s.iommu.invalidations.page).toBe(want.host.get('vtd_inv_desc_iotlb_pages'));
    // every vhost_iotlb_miss line is one of a step 1 / step 2 pair
    expect(s.deviceIotlb.misses * 2).toBe(want.host.get('vhost_iotlb_miss'));
    expect(s.deviceIotlb.updates).toEqual({ ok: s.deviceIotlb.misses });
    expect(s.deviceIotlb.invalidations).toBe(r.byKind['iotlb.invalidate']);
  });
});

describe('captured vhost-user run, mutated', () => {
  it("one INVALIDATE QEMU sent vhost removed → device-iotlb-not-invalidated at that IOVA, nothing else", async () => {
    const hl = text('qemu-vhost.log').split('\n');
    // pages vhost took an UPDATE for: the translation between a miss's step 1 and step 2
    const updated = new Set<bigint>();
    let inMiss = false;
    let at = -1;
    let iova = 0n;
    for (let i = 0; i < hl.length && at < 0; i++) {
      const l = hl[i]!;
      if (/:vhost_iotlb_miss \S+ step 1$/.test(l)) inMiss = true;
      else if (/:vhost_iotlb_miss \S+ step 2$/.test(l)) inMiss = false;
      const tr = /:vtd_dmar_translate dev \S+ iova 0x([0-9a-f]+) -> /.exec(l);
      if (tr && inMiss) updated.add(BigInt(`0x${tr[1]}`) >> 12n);
      const inv = /:vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x[0-9a-f]+ addr 0x([0-9a-f]+) mask 0x0$/.exec(l);
      if (inv && updated.has(BigInt(`0x${inv[1]}`) >> 12n) && /:vhost_user_write req:22 /.test(hl[i + 1]!)) {
        at = i + 1;
        iova = BigInt(`0x${inv[1]}`);
      }
    }
    expect(at).toBeGreaterThan(0);
    // the INVALIDATE and the back-end's reply to it
    expect(hl[at + 1]).toMatch(/:vhost_user_read req:22 /);
    const mutated = [...hl.slice(0, at), ...hl.slice(at + 2)].join('\n');
    const r = await pair(text('guest-vhost.txt'), mutated);
    expect(r.findings.map((f) => f.class)).toEqual(['device-iotlb-not-invalidated']);
    expect(BigInt(r.findings[0]!.iova!)).toBe(iova);
  });
});
