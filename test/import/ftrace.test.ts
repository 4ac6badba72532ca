import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  type FtraceItem,
  type FtraceRecord,
  FTRACE_FORMATS,
  isFtraceRecord,
  parseFrameBegin,
  parseFtraceLine,
  parsePciDeviceName,
  readFtrace,
  rtMark,
} from '../../src/import/ftrace.js';

function rec<K extends FtraceRecord['kind']>(line: string, kind: K): Extract<FtraceRecord, { kind: K }> {
  const r = parseFtraceLine(line, 5);
  if (r === null || !isFtraceRecord(r)) throw new Error(`expected ${kind}, got ${JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
  expect(r.kind).toBe(kind);
  expect(r.line).toBe(5);
  return r as Extract<FtraceRecord, { kind: K }>;
}

async function collect(text: string | string[]): Promise<FtraceItem[]> {
  const out: FtraceItem[] = [];
  for await (const it of readFtrace(Readable.from([Array.isArray(text) ? text.join('\n') : text]))) out.push(it);
  return out;
}

// Real lines are copied verbatim from /work/shared/traces-real/guest-*.txt (also in traces/real/) or the
// NOTES.md appendix (which samples guest-vtd-cm.txt). "synthesized" lines follow the printk formats of
// include/trace/events/{iommu,swiotlb,dma}.h for events that no real trace here contains.

const BEGIN_FAULT =
  '=====RT-TRACE-BEGIN case=vtd-fault kernel=6.1.0-56-amd64 cmdline=console=ttyS0 loglevel=6 panic=-1 trace_event=iommu:*,swiotlb:* trace_buf_size=32M rt.case=vtd-fault rt.work=fault intel_iommu=on iommu=nopt=====';

describe('ftrace line header', () => {
  it('parses task, pid, cpu, flags and exact timestamp', () => {
    const r = rec(
      '            init-1       [000] .....     1.386736: add_device_to_group: IOMMU: groupID=2 device=0000:00:02.0',
      'add_device_to_group',
    );
    expect(r).toMatchObject({ task: 'init', pid: 1, cpu: 0, flags: '.....', ts: '1.386736', event: 'add_device_to_group' });
    expect(r.tNs).toBe(1386736000n);
  });

  it('handles <idle>, kworker names with slashes/colons and irq-context flags', () => {
    const u = rec(
      '          <idle>-0       [000] ..s2.    10.196799: unmap: IOMMU: iova=0x00000000fffea000 - 0x00000000fffeb000 size=4096 unmapped_size=4096',
      'unmap',
    );
    expect(u).toMatchObject({ task: '<idle>', pid: 0, flags: '..s2.', ts: '10.196799' });
    expect(u.tNs).toBe(10196799000n);
    const k = rec(
      '    kworker/0:1H-38      [000] d.h1.     4.460672: unmap: IOMMU: iova=0x00000000fff03000 - 0x00000000fff04000 size=4096 unmapped_size=4096',
      'unmap',
    );
    expect(k).toMatchObject({ task: 'kworker/0:1H', pid: 38, flags: 'd.h1.' });
  });

  it('handles task names with dashes and spaces, 4-char flags and no flags column (synthesized)', () => {
    const a = rec(' irq/24-AMD-Vi-140     [003] d..1  5.123456: attach_device_to_domain: IOMMU: device=0000:00:03.0', 'attach_device_to_domain');
    expect(a).toMatchObject({ task: 'irq/24-AMD-Vi', pid: 140, cpu: 3, flags: 'd..1', device: '0000:00:03.0' });
    const b = rec('     Web Content-4711  [001]  12.000001: attach_device_to_domain: IOMMU: device=0000:00:02.0', 'attach_device_to_domain');
    expect(b).toMatchObject({ task: 'Web Content', pid: 4711, cpu: 1, flags: '', ts: '12.000001' });
    const c = rec('            init-1     (      1) [000] .....     1.386736: attach_device_to_domain: IOMMU: device=x', 'attach_device_to_domain');
    expect(c).toMatchObject({ task: 'init', pid: 1, device: 'x' });
  });

  it('timestamps convert to nanoseconds exactly, also beyond 2^53 ns', () => {
    const r = rec('            init-1       [000] .....  123456789.987654: tracing_mark_write: RT-MARK 1 x', 'tracing_mark_write');
    expect(r.ts).toBe('123456789.987654');
    expect(r.tNs).toBe(123456789987654000n);
    const ns = rec('            init-1       [000] .....     3.000000001: tracing_mark_write: hi', 'tracing_mark_write');
    expect(ns.tNs).toBe(3000000001n);
  });

  it('skips # header lines and blank lines', () => {
    expect(parseFtraceLine('# tracer: nop', 2)).toBeNull();
    expect(parseFtraceLine('#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION', 12)).toBeNull();
    expect(parseFtraceLine('#', 3)).toBeNull();
    expect(parseFtraceLine('', 3)).toBeNull();
    expect(parseFtraceLine('##### CPU 2 buffer started ####', 3)).toBeNull();
  });

  it('keeps other events as opaque (synthesized irq_handler_entry line)', () => {
    const r = rec('          <idle>-0       [000] d.h2.     2.452934: irq_handler_entry: irq=24 name=virtio1-requests', 'opaque');
    expect(r.event).toBe('irq_handler_entry');
    expect(r.args).toBe('irq=24 name=virtio1-requests');
  });
});

describe('iommu events', () => {
  it('map (real, the 16 MiB ISA identity map)', () => {
    const r = rec(
      '            init-1       [000] .....     1.390831: map: IOMMU: iova=0x0000000000000000 - 0x0000000001000000 paddr=0x0000000000000000 size=16777216',
      'map',
    );
    expect(r).toMatchObject({ iova: 0n, end: 0x1000000n, paddr: 0n, size: 16777216n });
  });

  it('map (real, 8 KiB chunk; end is exclusive = iova + size)', () => {
    const r = rec(
      '              dd-132     [000] d..1.     4.457482: map: IOMMU: iova=0x00000000fffea000 - 0x00000000fffec000 paddr=0x000000002ab59000 size=8192',
      'map',
    );
    expect(r).toMatchObject({ task: 'dd', pid: 132, flags: 'd..1.', iova: 0xfffea000n, end: 0xfffec000n, paddr: 0x2ab59000n, size: 8192n });
    expect(r.end - r.iova).toBe(r.size);
  });

  it('map with 64-bit addresses (synthesized)', () => {
    const r = rec(
      '              dd-132     [000] d..1.     4.457482: map: IOMMU: iova=0xfffffffffffff000 - 0x0000000000000000 paddr=0x000fedcba9876000 size=4096',
      'map',
    );
    expect(r.iova).toBe(0xfffffffffffff000n);
    expect(r.paddr).toBe(0xfedcba9876000n);
  });

  it('unmap (real)', () => {
    const r = rec(
      '              dd-120     [000] d.h2.     3.613817: unmap: IOMMU: iova=0x00000000fffc9000 - 0x00000000fffca000 size=4096 unmapped_size=4096',
      'unmap',
    );
    expect(r).toMatchObject({ iova: 0xfffc9000n, end: 0xfffca000n, size: 4096n, unmappedSize: 4096n });
  });

  it('add_device_to_group / attach_device_to_domain (real)', () => {
    const g = rec(
      '            init-1       [000] .....     1.387073: add_device_to_group: IOMMU: groupID=3 device=0000:00:1f.3',
      'add_device_to_group',
    );
    expect(g).toMatchObject({ groupId: 3, device: '0000:00:1f.3' });
    expect(parsePciDeviceName(g.device)).toEqual({ domain: 0, bus: 0, dev: 0x1f, fn: 3 });
    const a = rec(
      '            init-1       [000] .....     1.389727: attach_device_to_domain: IOMMU: device=0000:00:02.0',
      'attach_device_to_domain',
    );
    expect(a.device).toBe('0000:00:02.0');
  });

  it('remove_device_from_group / detach_device_from_domain (synthesized; never fired in the real runs)', () => {
    expect(
      rec('            init-1       [000] .....     7.000001: remove_device_from_group: IOMMU: groupID=4 device=0000:00:1f.2', 'remove_device_from_group'),
    ).toMatchObject({ groupId: 4, device: '0000:00:1f.2' });
    expect(
      rec('            init-1       [000] .....     7.000002: detach_device_from_domain: IOMMU: device=0000:00:1f.2', 'detach_device_from_domain'),
    ).toMatchObject({ device: '0000:00:1f.2' });
  });

  it('io_page_fault (synthesized from "IOMMU:%s %s iova=0x%016llx flags=0x%04x")', () => {
    const r = rec(
      '          <idle>-0       [000] d.h1.     3.759565: io_page_fault: IOMMU:e1000 0000:00:02.0 iova=0x0000000012340000 flags=0x0001',
      'io_page_fault',
    );
    expect(r).toMatchObject({ driver: 'e1000', device: '0000:00:02.0', iova: 0x12340000n, faultFlags: 1, flags: 'd.h1.' });
    const big = rec(
      '          <idle>-0       [000] d.h1.     3.759565: io_page_fault: IOMMU:virtio-pci 0000:00:03.0 iova=0xffffffffffe00000 flags=0x0000',
      'io_page_fault',
    );
    expect(big.iova).toBe(0xffffffffffe00000n);
  });
});

describe('swiotlb_bounced', () => {
  it('4-argument form (real, Linux 6.1)', () => {
    const r = rec(
      '    kworker/0:1H-38      [000] d..1.     4.082986: swiotlb_bounced: dev_name: 0000:00:02.0 dma_mask=ffffffffffffffff dev_addr=4b62990 size=16 FORCE',
      'swiotlb_bounced',
    );
    expect(r).toMatchObject({ task: 'kworker/0:1H', pid: 38, device: '0000:00:02.0', devAddr: 0x4b62990n, size: 16n, force: 'FORCE' });
    expect(r.dmaMask).toBe(0xffffffffffffffffn);
    expect(r.dmaMask).toBe(2n ** 64n - 1n);
    const net = rec(
      '              ip-137     [000] .....     4.131515: swiotlb_bounced: dev_name: 0000:00:03.0 dma_mask=ffffffffffffffff dev_addr=4b13c00 size=1536 FORCE',
      'swiotlb_bounced',
    );
    expect(net).toMatchObject({ task: 'ip', pid: 137, device: '0000:00:03.0', devAddr: 0x4b13c00n, size: 1536n });
  });

  it('other force tokens and the 3-argument form of newer kernels (synthesized)', () => {
    const base = '    kworker/0:1H-38      [000] d..1.     4.082986: swiotlb_bounced: dev_name: 0000:00:02.0 dma_mask=ffffffff dev_addr=1ffffe000 size=4096';
    expect(rec(base, 'swiotlb_bounced')).toMatchObject({ force: null, dmaMask: 0xffffffffn, devAddr: 0x1ffffe000n, size: 4096n });
    expect(rec(base + ' NORMAL', 'swiotlb_bounced').force).toBe('NORMAL');
    expect(rec(base + ' NO_FORCE', 'swiotlb_bounced').force).toBe('NO_FORCE');
    expect(parseFtraceLine(base + ' SOMETIMES', 1)).toMatchObject({ kind: 'malformed' });
  });
});

describe('dma:* events (synthesized from include/trace/events/dma.h printk formats)', () => {
  const pre = '     kworker/u8:1-57      [001] .....   123.456789: ';

  it('dma_map_phys / dma_map_page / dma_map_resource', () => {
    const r = rec(pre + 'dma_map_phys: 0000:00:02.0 dir=FROM_DEVICE dma_addr=fffff000 size=4096 phys_addr=3cfa4000 attrs=', 'dma_map_phys');
    expect(r).toMatchObject({ device: '0000:00:02.0', dir: 'FROM_DEVICE', dmaAddr: 0xfffff000n, size: 4096n, physAddr: 0x3cfa4000n, attrs: [] });
    const p = rec(
      pre + 'dma_map_page: 0000:00:03.0 dir=TO_DEVICE dma_addr=ffffffffffe00000 size=1536 phys_addr=10004b13c00 attrs=SKIP_CPU_SYNC|WEAK_ORDERING',
      'dma_map_page',
    );
    expect(p).toMatchObject({ dir: 'TO_DEVICE', dmaAddr: 0xffffffffffe00000n, physAddr: 0x10004b13c00n, attrs: ['SKIP_CPU_SYNC', 'WEAK_ORDERING'] });
    const res = rec(pre + 'dma_map_resource: 0000:00:04.0 dir=BIDIRECTIONAL dma_addr=fee00000 size=4 phys_addr=fee00000 attrs=MMIO', 'dma_map_resource');
    expect(res).toMatchObject({ dir: 'BIDIRECTIONAL', attrs: ['MMIO'] });
  });

  it('dma_unmap_phys / dma_unmap_page / dma_unmap_resource', () => {
    expect(rec(pre + 'dma_unmap_phys: 0000:00:02.0 dir=FROM_DEVICE dma_addr=fffff000 size=4096 attrs=', 'dma_unmap_phys')).toMatchObject({
      dir: 'FROM_DEVICE',
      dmaAddr: 0xfffff000n,
      size: 4096n,
      attrs: [],
    });
    expect(rec(pre + 'dma_unmap_page: 0000:00:02.0 dir=TO_DEVICE dma_addr=fffe0000 size=512 attrs=SKIP_CPU_SYNC', 'dma_unmap_page').attrs).toEqual([
      'SKIP_CPU_SYNC',
    ]);
    expect(rec(pre + 'dma_unmap_resource: 0000:00:04.0 dir=NONE dma_addr=fee00000 size=4 attrs=', 'dma_unmap_resource').dir).toBe('NONE');
  });

  it('dma_sync_single_for_cpu / _for_device', () => {
    expect(rec(pre + 'dma_sync_single_for_cpu: 0000:00:02.0 dir=FROM_DEVICE dma_addr=fffff000 size=4096', 'dma_sync_single_for_cpu')).toMatchObject({
      dir: 'FROM_DEVICE',
      dmaAddr: 0xfffff000n,
      size: 4096n,
    });
    expect(rec(pre + 'dma_sync_single_for_device: 0000:00:02.0 dir=TO_DEVICE dma_addr=fffff000 size=64', 'dma_sync_single_for_device').size).toBe(64n);
  });

  it('dma_map_sg without counts (first 6.12 form)', () => {
    const r = rec(
      pre + 'dma_map_sg: 0000:00:02.0 dir=TO_DEVICE dma_addrs={0xfffe0000,0xfffe1000} sizes={0x1000,0x200} phys_addrs={0x3c564000,0x3c565000} attrs=',
      'dma_map_sg',
    );
    expect(r).toMatchObject({
      dir: 'TO_DEVICE',
      nents: null,
      ents: null,
      truncated: false,
      dmaAddrs: [0xfffe0000n, 0xfffe1000n],
      sizes: [4096, 512],
      physAddrs: [0x3c564000n, 0x3c565000n],
      attrs: [],
    });
  });

  it('dma_map_sg with counts and [TRUNCATED] (capped at 128 entries)', () => {
    const addrs = Array.from({ length: 128 }, (_, i) => '0x' + (0xfff00000 + i * 0x1000).toString(16)).join(',');
    const sizes = Array.from({ length: 128 }, () => '0x1000').join(',');
    const r = rec(
      pre + `dma_map_sg: 0000:00:02.0 dir=FROM_DEVICE nents=128/130 ents=128/129 [TRUNCATED] dma_addrs={${addrs}} sizes={${sizes}} phys_addrs={${addrs}} attrs=NO_WARN`,
      'dma_map_sg',
    );
    expect(r.nents).toEqual({ traced: 128, full: 130 });
    expect(r.ents).toEqual({ traced: 128, full: 129 });
    expect(r.truncated).toBe(true);
    expect(r.dmaAddrs).toHaveLength(128);
    expect(r.dmaAddrs[127]).toBe(0xfff7f000n);
    expect(r.sizes.every((s) => s === 4096)).toBe(true);
    expect(r.attrs).toEqual(['NO_WARN']);
    const small = rec(
      pre + 'dma_map_sg: 0000:00:02.0 dir=FROM_DEVICE nents=1/1 ents=1/1 dma_addrs={0xfffff000} sizes={0x1000} phys_addrs={0x3cfa4000} attrs=',
      'dma_map_sg',
    );
    expect(small.truncated).toBe(false);
    expect(small.nents).toEqual({ traced: 1, full: 1 });
  });

  it('dma_unmap_sg / dma_sync_sg_for_cpu', () => {
    expect(rec(pre + 'dma_unmap_sg: 0000:00:02.0 dir=TO_DEVICE phys_addrs={0x3c564000,0x3c565000} attrs=', 'dma_unmap_sg')).toMatchObject({
      dir: 'TO_DEVICE',
      physAddrs: [0x3c564000n, 0x3c565000n],
      attrs: [],
    });
    expect(rec(pre + 'dma_sync_sg_for_cpu: 0000:00:02.0 dir=FROM_DEVICE dma_addrs={} sizes={}', 'dma_sync_sg_for_cpu')).toMatchObject({
      dmaAddrs: [],
      sizes: [],
    });
  });

  it('dma_alloc / dma_free (with and without dir=)', () => {
    const a = rec(
      pre + 'dma_alloc: 0000:00:02.0 dir=BIDIRECTIONAL dma_addr=fffff000 size=16384 virt_addr=00000000c0ffee12 flags=GFP_KERNEL|__GFP_ZERO attrs=',
      'dma_alloc',
    );
    expect(a).toMatchObject({
      dir: 'BIDIRECTIONAL',
      dmaAddr: 0xfffff000n,
      size: 16384n,
      virtAddr: 0xc0ffee12n,
      gfpFlags: ['GFP_KERNEL', '__GFP_ZERO'],
      attrs: [],
      flags: '.....',
    });
    const old = rec(pre + 'dma_alloc: 0000:00:02.0 dma_addr=fffff000 size=16384 virt_addr=(____ptrval____) flags=GFP_KERNEL attrs=', 'dma_alloc');
    expect(old.dir).toBeNull();
    expect(old.virtAddr).toBeNull();
    const f = rec(pre + 'dma_free: 0000:00:02.0 dir=BIDIRECTIONAL dma_addr=fffff000 size=16384 virt_addr=ffff888003c00000 attrs=', 'dma_free');
    expect(f).toMatchObject({ dir: 'BIDIRECTIONAL', dmaAddr: 0xfffff000n, size: 16384n, virtAddr: 0xffff888003c00000n, attrs: [] });
  });

  it('rejects unknown directions and keys', () => {
    const r = parseFtraceLine(pre + 'dma_map_phys: 0000:00:02.0 dir=SIDEWAYS dma_addr=fffff000 size=4096 phys_addr=3cfa4000 attrs=', 8);
    expect(r).toMatchObject({ kind: 'malformed', line: 8 });
    expect((r as { malformed: string }).malformed).toContain(FTRACE_FORMATS.dma_map_phys);
    expect(parseFtraceLine(pre + 'dma_unmap_phys: 0000:00:02.0 dir=TO_DEVICE dma_addr=fffff000 size=4096 attrs= bogus=1', 8)).toMatchObject({
      kind: 'malformed',
    });
  });
});

describe('tracing_mark_write and RT-MARK', () => {
  it('real markers', () => {
    const r = rec('            init-1       [000] .N...     1.999015: tracing_mark_write: RT-MARK 1 modules-load', 'tracing_mark_write');
    expect(r.flags).toBe('.N...');
    expect(r.text).toBe('RT-MARK 1 modules-load');
    expect(rtMark(r)).toEqual({ n: 1, name: 'modules-load' });
    const end = rec('            init-1       [000] .....     5.858710: tracing_mark_write: RT-MARK 254 io-done', 'tracing_mark_write');
    expect(rtMark(end)).toEqual({ n: 254, name: 'io-done' });
    const other = rec('            init-1       [000] .....     5.858710: tracing_mark_write: hello world', 'tracing_mark_write');
    expect(rtMark(other)).toBeNull();
  });
});

describe('framing, lost events, malformed and truncated input', () => {
  it('parses the RT-TRACE-BEGIN line (real)', () => {
    const b = parseFrameBegin(BEGIN_FAULT, 1)!;
    expect(b.case).toBe('vtd-fault');
    expect(b.kernel).toBe('6.1.0-56-amd64');
    expect(b.cmdline).toBe(
      'console=ttyS0 loglevel=6 panic=-1 trace_event=iommu:*,swiotlb:* trace_buf_size=32M rt.case=vtd-fault rt.work=fault intel_iommu=on iommu=nopt',
    );
    expect(parseFtraceLine(BEGIN_FAULT, 1)).toMatchObject({ kind: 'frame-begin', case: 'vtd-fault', line: 1 });
    expect(parseFtraceLine('=====RT-TRACE-END=====', 31)).toEqual({ kind: 'frame-end', line: 31 });
  });

  it('reports ring-buffer loss', () => {
    expect(parseFtraceLine('CPU:0 [LOST 1234 EVENTS]', 40)).toEqual({ kind: 'lost-events', line: 40, cpu: 0, count: 1234 });
  });

  it('reports malformed lines with line numbers', async () => {
    const items = await collect([
      BEGIN_FAULT,
      '# tracer: nop',
      '            init-1       [000] .....     1.386050: add_device_to_group: IOMMU: groupID=0 device=0000:00:00.0',
      'this is not a trace line',
      '            init-1       [000] .....     1.390831: map: IOMMU: iova=0x0000000000000000 - 0x0000000001000000 paddr=zz size=16777216',
      '=====RT-TRACE-END=====',
      '',
    ]);
    expect(items.map((i) => [i.kind, 'line' in i ? i.line : null])).toEqual([
      ['frame-begin', 1],
      ['add_device_to_group', 3],
      ['malformed', 4],
      ['malformed', 5],
      ['frame-end', 6],
      ['end-of-input', null],
    ]);
    expect((items[3] as { malformed: string }).malformed).toContain(FTRACE_FORMATS.map);
    expect(items.at(-1)).toMatchObject({ kind: 'end-of-input', records: 1, malformed: 2, frames: 1, truncated: false, unterminatedFrame: false });
  });

  it('a frame without RT-TRACE-END is reported as truncated', async () => {
    const items = await collect([BEGIN_FAULT, '            init-1       [000] .....     2.359527: tracing_mark_write: RT-MARK 1 modules-load', '']);
    const end = items.at(-1)!;
    expect(end).toMatchObject({ kind: 'end-of-input', truncated: true, unterminatedFrame: true, finalNewline: true, records: 1 });
    if (end.kind !== 'end-of-input') throw new Error('unreachable');
    expect(end.begin?.case).toBe('vtd-fault');
  });

  it('a cut-off last line is malformed and makes the trace truncated', async () => {
    const items = await collect(
      BEGIN_FAULT + '\n            init-1       [000] .....     1.390831: map: IOMMU: iova=0x0000000000000000 - 0x0000000001000000 paddr=0x0000000000000000 size=167',
    );
    expect(items[1]).toMatchObject({ kind: 'malformed', line: 2 });
    expect(items.at(-1)).toMatchObject({ kind: 'end-of-input', finalNewline: false, truncated: true });
  });

  it('an END line without final newline still closes the frame', async () => {
    const items = await collect(BEGIN_FAULT + '\n=====RT-TRACE-END=====');
    expect(items.at(-1)).toMatchObject({ kind: 'end-of-input', finalNewline: false, truncated: false, unterminatedFrame: false });
  });

  it('skips what follows RT-TRACE-END (e.g. the dmesg of a raw serial capture) until the next BEGIN', async () => {
    const items = await collect([
      BEGIN_FAULT,
      '            init-1       [000] .....     2.359527: tracing_mark_write: RT-MARK 1 modules-load',
      '=====RT-TRACE-END=====',
      '=====RT-DMESG-BEGIN=====',
      '[    3.763065] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x12340000 [fault reason 0x06] PTE Read access is not set',
      '=====RT-DMESG-END=====',
      '',
    ]);
    expect(items.map((i) => i.kind)).toEqual(['frame-begin', 'tracing_mark_write', 'frame-end', 'end-of-input']);
    expect(items.at(-1)).toMatchObject({ ignoredAfterEnd: 3, truncated: false, malformed: 0 });
  });

  it('an unframed trace (plain /sys/kernel/tracing/trace) is not truncated', async () => {
    const items = await collect(['# tracer: nop', '            init-1       [000] .....     2.359527: tracing_mark_write: RT-MARK 1 modules-load', '']);
    expect(items.at(-1)).toMatchObject({ kind: 'end-of-input', frames: 0, begin: null, truncated: false, records: 1 });
  });
});

describe('64-bit exactness around 2^53 (synthesized values)', () => {
  it.each([
    ['001fffffffffffff', 2n ** 53n - 1n],
    ['0020000000000000', 2n ** 53n],
    ['0020000000000001', 2n ** 53n + 1n],
    ['ffffffffffffffff', 2n ** 64n - 1n],
  ])('0x%s', (hex, want) => {
    const r = rec(`            init-1       [000] .....     1.390831: map: IOMMU: iova=0x${hex} - 0x${hex} paddr=0x${hex} size=0`, 'map');
    expect(r.iova).toBe(want);
    expect(r.end).toBe(want);
    expect(r.paddr).toBe(want);
    // the largest size, where it does not wrap past 2^64
    const big = rec(`            init-1       [000] .....     1.390831: map: IOMMU: iova=0x0 - 0x${hex} paddr=0x0 size=18446744073709551615`, 'map');
    expect(big.size).toBe(2n ** 64n - 1n);
    expect(big.end).toBe(want);
  });
});

describe('no regex blow-up on pathological lines', () => {
  it.each([
    ['long padding', ' '.repeat(200_000) + 'x'],
    ['many -PID fragments', 'a-1 '.repeat(50_000)],
    ['long whitespace after -PID', 'x-1' + ' '.repeat(100_000) + 'y'],
    ['huge args', '            init-1       [000] .....     1.0: map: ' + 'IOMMU: iova=0x'.repeat(20_000)],
    ['dashes and brackets', '-1 [0] '.repeat(30_000)],
  ])('%s', (_n, line) => {
    const t = performance.now();
    const r = parseFtraceLine(line, 1);
    expect(performance.now() - t).toBeLessThan(500);
    expect(r === null || r.kind === 'malformed' || r.kind === 'opaque' || r.kind === 'map' || r.kind === 'lost-events').toBe(true);
  });
});
