/**
 * The parsers against real traces.
 *
 * - Fixture tests (always run) use the verbatim excerpts in traces/real/. Their expected per-event counts
 *   in traces/real/excerpts.json were computed with the sed/awk pipeline of the original
 *   postprocess.sh, not with these parsers.
 * - Whole-file tests compare full parses with the stats-*.txt counts. They run only where the complete
 *   originals exist (/work/shared/traces-real), so CI does not depend on files outside the repo.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type FtraceEndOfInput,
  type FtraceItem,
  type FtraceMalformed,
  type FtraceMeta,
  type FtraceRecord,
  isFtraceRecord,
  parsePciDeviceName,
  readFtrace,
  rtMark,
} from '../../src/import/ftrace.js';
import {
  type QemuEndOfInput,
  type QemuMalformed,
  type QemuRecord,
  bdfOfSid,
  formatBdf,
  qemuPhaseMarker,
  readQemuLog,
} from '../../src/import/qemu-log.js';

const FIX = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real');
// the shared originals sit next to the repository (../shared/traces-real), where they exist at all
const SHARED = process.env.DMAREPLAY_SHARED_TRACES ?? resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/traces-real');
const HAVE_SHARED = existsSync(join(SHARED, 'NOTES.md'));

interface Excerpt {
  file: string;
  format: 'qemu-log' | 'ftrace';
  source: string;
  ranges: [number, number][];
  lines: number;
  sha256: string;
  counts: Record<string, number>;
}
const EXCERPTS: Excerpt[] = JSON.parse(readFileSync(join(FIX, 'excerpts.json'), 'utf8')).excerpts;

interface QemuParse {
  records: QemuRecord[];
  malformed: QemuMalformed[];
  end: QemuEndOfInput;
  counts: Map<string, number>;
}
interface FtraceParse {
  records: FtraceRecord[];
  meta: FtraceMeta[];
  malformed: FtraceMalformed[];
  end: FtraceEndOfInput;
  counts: Map<string, number>;
}

const bump = (m: Map<string, number>, k: string): void => {
  m.set(k, (m.get(k) ?? 0) + 1);
};

async function parseQemu(path: string, keep = true): Promise<QemuParse> {
  const records: QemuRecord[] = [];
  const malformed: QemuMalformed[] = [];
  const counts = new Map<string, number>();
  let end: QemuEndOfInput | undefined;
  for await (const it of readQemuLog(path)) {
    if (it.kind === 'malformed') malformed.push(it);
    else if (it.kind === 'end-of-input') end = it;
    else {
      bump(counts, it.event);
      if (keep) records.push(it);
    }
  }
  return { records, malformed, end: end!, counts };
}

async function parseFtrace(path: string, keep = true): Promise<FtraceParse> {
  const records: FtraceRecord[] = [];
  const meta: FtraceMeta[] = [];
  const malformed: FtraceMalformed[] = [];
  const counts = new Map<string, number>();
  let end: FtraceEndOfInput | undefined;
  for await (const it of readFtrace(path) as AsyncGenerator<FtraceItem>) {
    if (isFtraceRecord(it)) {
      bump(counts, it.event);
      if (keep) records.push(it);
    } else if (it.kind === 'malformed') malformed.push(it);
    else if (it.kind === 'end-of-input') end = it;
    else meta.push(it);
  }
  return { records, meta, malformed, end: end!, counts };
}

const sorted = (m: Map<string, number> | Record<string, number>): [string, number][] =>
  (m instanceof Map ? [...m] : Object.entries(m)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** stats-CASE.txt: `# host: FILE (N lines …)`, `  COUNT event` …, `# guest: FILE`, `  COUNT event:` … */
function parseStats(text: string): { hostLines: number; host: Map<string, number>; guest: Map<string, number> } {
  let section: 'host' | 'guest' | null = null;
  let hostLines = -1;
  const host = new Map<string, number>();
  const guest = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# host:')) {
      section = 'host';
      hostLines = parseInt(/\((\d+) lines/.exec(line)![1]!, 10);
    } else if (line.startsWith('# guest:')) section = 'guest';
    else {
      const m = /^\s*(\d+) (\S+)$/.exec(line);
      if (m && section) (section === 'host' ? host : guest).set(m[2]!.replace(/:$/, ''), parseInt(m[1]!, 10));
    }
  }
  return { hostLines, host, guest };
}

const of = <K extends string, R extends { kind: string }>(rs: R[], kind: K): Extract<R, { kind: K }>[] =>
  rs.filter((r): r is Extract<R, { kind: K }> => r.kind === kind);

// ---------------------------------------------------------------------------------------------

describe('fixtures: every excerpt parses to the independently computed per-event counts', () => {
  it.each(EXCERPTS.map((e) => [e.file, e] as const))('%s', async (_name, e) => {
    const path = join(FIX, e.file);
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(e.sha256);
    if (e.format === 'qemu-log') {
      const p = await parseQemu(path, false);
      expect(p.malformed).toEqual([]);
      expect(p.end).toMatchObject({ lines: e.lines, finalNewline: true, records: e.lines, malformed: 0 });
      expect(sorted(p.counts)).toEqual(sorted(e.counts));
    } else {
      const p = await parseFtrace(path, false);
      expect(p.malformed).toEqual([]);
      expect(p.end.lines).toBe(e.lines);
      expect(sorted(p.counts)).toEqual(sorted(e.counts));
    }
  });
});

describe('fixture vtd-fault: the real DMA fault', () => {
  it('host: 16 vtd_dmar_fault for sid 0x10 reading the unmapped IOVA 0x12340000..', async () => {
    const { records } = await parseQemu(join(FIX, 'qemu-vtd-fault.p010-fault-e1000-tx.log'));
    expect(qemuPhaseMarker(records[0]!)).toBe(10);
    const faults = of(records, 'vtd_dmar_fault');
    expect(faults).toHaveLength(16);
    // source line 5288 of qemu-vtd-fault.log = excerpt line 5288 - 4798 + 1
    expect(faults[0]).toMatchObject({ line: 491, tid: 8385, sid: 0x10, fault: 6, addr: 0x12340000n, write: false });
    expect(faults[0]!.tUs).toBe(1795271543885837n);
    expect(formatBdf(bdfOfSid(faults[0]!.sid))).toBe('00:02.0');
    expect(faults.map((f) => f.addr)).toEqual(Array.from({ length: 16 }, (_, i) => 0x12340000n + 4n * BigInt(i)));
    expect(faults.every((f) => f.sid === 0x10 && f.fault === 6 && !f.write)).toBe(true);
    // the context entry was loaded right before the first fault
    const ccu = of(records, 'vtd_iotlb_cc_update');
    expect(ccu).toHaveLength(1);
    expect(ccu[0]).toMatchObject({ line: 490, bus: 0, devfn: 0x10, genFrom: 0, genTo: 1 });
    // only the first fault is recorded (fault compression), then the PPF bit is raised and later cleared
    const frr = of(records, 'vtd_frr_new');
    expect(frr).toHaveLength(1);
    expect(frr[0]).toMatchObject({ line: 492, index: 0, high: 0x40ffff0600000010n, low: 0x12340000n });
    expect(of(records, 'vtd_fsts_ppf').map((r) => [r.line, r.set])).toEqual([
      [493, true],
      [530, false],
    ]);
    expect(records.find((r) => r.event === 'vtd_irq_generate')).toMatchObject({ kind: 'opaque', args: 'addr 0xfee01004 data 0x21' });
    // the guest's MMIO writes that triggered it: PCI command = MEM|BUSMASTER on the e1000
    expect(of(records, 'pci_cfg_write').map((r) => [r.name, r.offset, r.value])).toEqual([
      ['mch', 0xfc, 0x5254000a],
      ['e1000', 4, 6],
      ['e1000', 5, 0],
    ]);
  });

  it('guest: groups, attaches, the ISA identity map and the markers', async () => {
    const p = await parseFtrace(join(FIX, 'guest-vtd-fault.txt'));
    expect(p.end).toMatchObject({ truncated: false, unterminatedFrame: false, frames: 1, finalNewline: true, malformed: 0 });
    expect(p.end.begin).toMatchObject({ line: 1, case: 'vtd-fault', kernel: '6.1.0-56-amd64' });
    expect(p.end.begin!.cmdline).toMatch(/ rt\.work=fault intel_iommu=on iommu=nopt$/);
    expect(p.meta.map((m) => m.kind)).toEqual(['frame-begin', 'frame-end']);
    const groups = of(p.records, 'add_device_to_group');
    expect(groups.map((g) => [g.groupId, g.device])).toEqual([
      [0, '0000:00:00.0'],
      [1, '0000:00:01.0'],
      [2, '0000:00:02.0'],
      [3, '0000:00:1f.0'],
      [3, '0000:00:1f.2'],
      [3, '0000:00:1f.3'],
    ]);
    const maps = of(p.records, 'map');
    expect(maps).toHaveLength(1);
    expect(maps[0]).toMatchObject({ line: 23, task: 'init', pid: 1, iova: 0n, end: 0x1000000n, paddr: 0n, size: 0x1000000n, ts: '1.390831' });
    expect(maps[0]!.tNs).toBe(1390831000n);
    expect(p.records.map(rtMark).filter((m) => m !== null)).toEqual([
      { n: 1, name: 'modules-load' },
      { n: 10, name: 'fault-e1000-tx' },
      { n: 11, name: 'fault-e1000-rxring' },
      { n: 254, name: 'io-done' },
    ]);
  });
});

describe('fixture vtd-lazy phase 5: map/unmap, translations, whole-domain invalidation', () => {
  it('host side', async () => {
    const { records } = await parseQemu(join(FIX, 'qemu-vtd-lazy.p005-blk-write-buffered.log'));
    expect(qemuPhaseMarker(records[0]!)).toBe(5);
    const inv = of(records, 'vtd_inv_desc_iotlb_domain');
    expect(inv).toHaveLength(1);
    expect(inv[0]).toMatchObject({ line: 7, domain: 4 }); // source line 21899
    const tr = of(records, 'vtd_dmar_translate');
    expect(tr).toHaveLength(155);
    expect(tr.every((t) => t.mask === 0xfffn && (t.iova & 0xfffn) === 0n && (t.gpa & 0xfffn) === 0n)).toBe(true);
    expect(new Set(tr.map((t) => formatBdf(t)))).toEqual(new Set(['00:02.0']));
    const upd = of(records, 'vtd_iotlb_page_update');
    expect(upd).toHaveLength(72);
    expect(upd.every((u) => (u.gpa & 0xfffn) === 0n && (u.perm === 1 || u.perm === 3) && u.sid === 0x10 && u.domain === 4)).toBe(true);
    // QEMU logs the IOTLB lookup (hit, or miss + fill = update) first and then vtd_dmar_translate for
    // the same access: one translation per hit/update, same IOVA page, same frame.
    const hits = of(records, 'vtd_iotlb_page_hit');
    expect(hits.length + upd.length).toBe(tr.length);
    for (const u of [...upd, ...hits]) {
      const t = records[records.indexOf(u) + 1]!;
      expect(t.kind).toBe('vtd_dmar_translate');
      if (t.kind !== 'vtd_dmar_translate') continue;
      expect(t.iova).toBe(u.iova & ~0xfffn);
      expect(t.gpa).toBe(u.gpa);
    }
    const w = of(records, 'virtio_blk_handle_write');
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ sector: 16384n, nsectors: 512n }); // conv=fsync flush of 64 x 4 KiB, merged
  });

  it('guest side: map/unmap pairs, truncated excerpt (no RT-TRACE-END)', async () => {
    const p = await parseFtrace(join(FIX, 'guest-vtd-lazy.p005-blk-write-buffered.txt'));
    expect(p.end).toMatchObject({ truncated: true, unterminatedFrame: true, finalNewline: true, malformed: 0 });
    expect(p.end.begin).toMatchObject({ case: 'vtd-lazy' });
    expect(p.end.begin!.cmdline).toMatch(/iommu\.strict=0$/);
    expect(rtMark(p.records[0]!)).toEqual({ n: 5, name: 'blk-write-buffered' });
    const maps = of(p.records, 'map');
    const unmaps = of(p.records, 'unmap');
    expect(maps).toHaveLength(69);
    expect(unmaps).toHaveLength(69);
    expect(maps.every((m) => m.end - m.iova === m.size && m.size % 4096n === 0n)).toBe(true);
    expect(unmaps.every((u) => u.end - u.iova === u.size && u.unmappedSize === u.size)).toBe(true);
    // every unmapped range was mapped earlier in the phase
    const mapped = new Set(maps.map((m) => `${m.iova}-${m.end}`));
    expect(unmaps.every((u) => mapped.has(`${u.iova}-${u.end}`))).toBe(true);
    // unmaps run from the virtio completion interrupt (hardirq flag 'h')
    expect(unmaps.every((u) => u.flags[2] === 'h')).toBe(true);
  });

  it('host translations agree with the guest map (iova page -> paddr) for the same phase', async () => {
    const host = await parseQemu(join(FIX, 'qemu-vtd-lazy.p005-blk-write-buffered.log'));
    const guest = await parseFtrace(join(FIX, 'guest-vtd-lazy.p005-blk-write-buffered.txt'));
    const guestPage = new Map<bigint, bigint>();
    for (const m of of(guest.records, 'map')) {
      for (let off = 0n; off < m.size; off += 4096n) guestPage.set(m.iova + off, m.paddr + off);
    }
    let matched = 0;
    for (const t of of(host.records, 'vtd_dmar_translate')) {
      const g = guestPage.get(t.iova);
      if (g === undefined) continue;
      expect(t.gpa).toBe(g);
      matched++;
    }
    expect(matched).toBeGreaterThan(0);
  });
});

describe('fixture vtd-pt: enabling DMA remapping with identity domains', () => {
  it('host side', async () => {
    const { records } = await parseQemu(join(FIX, 'qemu-vtd-pt.boot-dmar-enable.log'));
    expect(of(records, 'vtd_inv_desc_cc_global')).toHaveLength(1);
    expect(of(records, 'vtd_inv_desc_iotlb_global')).toHaveLength(1);
    const devs = of(records, 'vtd_inv_desc_cc_devices');
    expect(devs.map((d) => formatBdf(bdfOfSid(d.sid)))).toEqual(['00:00.0', '00:01.0', '00:02.0', '00:03.0', '00:1f.0', '00:1f.2', '00:1f.3']);
    expect(of(records, 'vtd_inv_desc_cc_device').map((d) => formatBdf(d))).toEqual(devs.map((d) => formatBdf(bdfOfSid(d.sid))));
    expect(of(records, 'vtd_inv_desc_iotlb_domain').map((d) => d.domain)).toEqual([2, 2, 2, 2, 2, 2, 2]);
    // pass-through: QEMU keeps every device on the plain system-memory address space
    const sw = of(records, 'vtd_switch_address_space');
    expect(sw.length).toBeGreaterThan(0);
    expect(sw.every((s) => !s.on)).toBe(true);
    expect(records.filter((r) => r.event === 'vtd_dmar_enable').map((r) => (r.kind === 'opaque' ? r.args : ''))).toEqual(['enable 1']);
    expect(of(records, 'vtd_dmar_translate')).toHaveLength(0);
    const descTypes = new Set(of(records, 'vtd_inv_desc').map((d) => d.type));
    expect(descTypes).toEqual(new Set(['context-cache', 'iotlb', 'wait', 'iec']));
  });

  it('guest side: identity groups, no map/unmap', async () => {
    const p = await parseFtrace(join(FIX, 'guest-vtd-pt.txt'));
    expect(p.end).toMatchObject({ truncated: false, malformed: 0 });
    expect(p.end.begin!.cmdline).toMatch(/intel_iommu=on iommu=pt$/);
    expect(of(p.records, 'attach_device_to_domain').map((a) => parsePciDeviceName(a.device))).toHaveLength(7);
    expect(of(p.records, 'map')).toHaveLength(0);
    expect(p.records.map(rtMark).filter((m) => m !== null).map((m) => m!.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 254]);
  });
});

describe('fixture swiotlb phase 6: bounce buffering without an IOMMU', () => {
  it('host side: 32 single-page virtio-blk reads, each popped, filled and flushed', async () => {
    const { records } = await parseQemu(join(FIX, 'qemu-swiotlb.p006-blk-read-small-direct.log'));
    expect(qemuPhaseMarker(records[0]!)).toBe(6);
    const reads = of(records, 'virtio_blk_handle_read');
    expect(reads).toHaveLength(32);
    expect(reads.every((r) => r.nsectors === 8n)).toBe(true);
    expect(reads.map((r) => r.sector)).toEqual(Array.from({ length: 32 }, (_, i) => 800n + 8n * BigInt(i)));
    const pops = of(records, 'virtqueue_pop');
    const fills = of(records, 'virtqueue_fill');
    expect(pops.map((p) => [p.vq, p.elem])).toEqual(fills.map((f) => [f.vq, f.elem]));
    expect(fills.every((f) => f.len === 4097)).toBe(true); // 4 KiB data + 1 status byte
    expect(pops.every((p) => p.inNum === 2 && p.outNum === 1)).toBe(true);
    expect(of(records, 'vtd_dmar_translate')).toHaveLength(0);
  });

  it('guest side: 128 swiotlb_bounced (4-arg form) and a complete frame', async () => {
    // per request: 16-byte virtio-blk header, 4 KiB data, 1-byte status, and a 48-byte buffer
    const SWIOTLB_SIZES = [1n, 16n, 48n, 4096n];
    const p = await parseFtrace(join(FIX, 'guest-swiotlb.p006-blk-read-small-direct.txt'));
    expect(p.end).toMatchObject({ truncated: false, unterminatedFrame: false, malformed: 0 });
    expect(p.end.begin!.cmdline).toMatch(/intel_iommu=off swiotlb=force$/);
    const b = of(p.records, 'swiotlb_bounced');
    expect(b).toHaveLength(128);
    expect(b.every((x) => x.force === 'FORCE' && x.dmaMask === 0xffffffffffffffffn && x.device === '0000:00:02.0')).toBe(true);
    expect(b[0]).toMatchObject({ line: 15, task: 'kworker/0:1H', pid: 38, devAddr: 0x4b62990n, size: 16n });
    expect(new Set(b.map((x) => x.size))).toEqual(new Set(SWIOTLB_SIZES));
  });
});

// ---------------------------------------------------------------------------------------------
// Whole files (only where /work/shared/traces-real exists)
// ---------------------------------------------------------------------------------------------

const CASES = ['vtd-fault', 'vtd-lazy', 'vtd-pt', 'swiotlb'] as const;

describe.skipIf(!HAVE_SHARED)('whole real files vs stats-*.txt (/work/shared/traces-real)', () => {
  it.each(CASES)('qemu-%s.log: per-event counts and line count', async (c) => {
    const stats = parseStats(readFileSync(join(SHARED, `stats-${c}.txt`), 'utf8'));
    const p = await parseQemu(join(SHARED, `qemu-${c}.log`), false);
    expect(p.malformed).toEqual([]);
    expect(p.end).toMatchObject({ lines: stats.hostLines, records: stats.hostLines, finalNewline: true });
    expect(sorted(p.counts)).toEqual(sorted(stats.host));
  });

  it.each(CASES)('guest-%s.txt: per-event counts, framing', async (c) => {
    const stats = parseStats(readFileSync(join(SHARED, `stats-${c}.txt`), 'utf8'));
    const p = await parseFtrace(join(SHARED, `guest-${c}.txt`), false);
    expect(p.malformed).toEqual([]);
    expect(sorted(p.counts)).toEqual(sorted(stats.guest));
    expect(p.end).toMatchObject({ truncated: false, frames: 1, finalNewline: true });
    expect(p.end.begin!.case).toBe(c);
  });

  it.each(CASES)('qemu-%s.log: phase markers match the guest RT-MARKs', async (c) => {
    const host = await parseQemu(join(SHARED, `qemu-${c}.log`), true);
    const guest = await parseFtrace(join(SHARED, `guest-${c}.txt`), true);
    const hostMarks = host.records.map(qemuPhaseMarker).filter((n): n is number => n !== null);
    const guestMarks = guest.records.map(rtMark).filter((m) => m !== null).map((m) => m!.n);
    expect(hostMarks).toEqual([...guestMarks, 255]);
  });

  it('the stats files in traces/real are unchanged copies', () => {
    for (const c of CASES) expect(readFileSync(join(FIX, `stats-${c}.txt`), 'utf8')).toBe(readFileSync(join(SHARED, `stats-${c}.txt`), 'utf8'));
  });

  it.each(EXCERPTS.map((e) => [e.file, e] as const))('excerpt %s is verbatim from its source line ranges', (_n, e) => {
    const src = readFileSync(join(SHARED, e.source), 'utf8').split('\n');
    const want = e.ranges.map(([a, b]) => src.slice(a - 1, b).join('\n') + '\n').join('');
    expect(readFileSync(join(FIX, e.file), 'utf8')).toBe(want);
  });
});
