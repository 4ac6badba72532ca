// Trace lines → dmareplay events: one test per mapping (src/import/to-events.ts). Real lines are
// copied from /work/shared/traces-real (and NOTES.md); lines of events those runs did not produce
// (dma:*, io_page_fault, AMD-Vi, virtio-iommu) follow the kernel / QEMU format strings.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../src/events/schema.js';
import { guestEvents, hostEvents } from '../../src/import/merge.js';
import { dmaMode, scanGuest, scanHost } from '../../src/import/to-events.js';
import { tempDir } from '../helpers.js';

async function guest(lines: string[]): Promise<NewEvent[]> {
  const f = join(tempDir(), 'g.txt');
  writeFileSync(f, lines.join('\n') + '\n');
  const out: NewEvent[] = [];
  for await (const b of guestEvents(await scanGuest(f))) out.push(...b.map((e) => e.ev));
  return out;
}

async function host(lines: string[]): Promise<NewEvent[]> {
  const f = join(tempDir(), 'q.log');
  writeFileSync(f, lines.join('\n') + '\n');
  const out: NewEvent[] = [];
  for await (const b of hostEvents(await scanHost(f), [{ n: 7, name: 'net-up', t: 0 }])) out.push(...b.map((e) => e.ev));
  return out;
}

const G = (ts: string, event: string, args: string) => `              dd-120     [000] d..1.     ${ts}: ${event}: ${args}`;

describe('guest ftrace lines', () => {
  it('iommu map / unmap: dev 0xffff (the guest does not say), end exclusive, unmapped_size', async () => {
    const evs = await guest([
      '    kworker/0:1H-38      [000] d..1.     3.716401: map: IOMMU: iova=0x00000000fffbd000 - 0x00000000fffbe000 paddr=0x000000003ff96000 size=4096',
      '              ip-145     [000] .....     4.969941: map: IOMMU: iova=0x00000000fffec000 - 0x00000000fffee000 paddr=0x000000000505b000 size=8192',
      '          <idle>-0       [000] d.h2.     3.710378: unmap: IOMMU: iova=0x00000000fffad000 - 0x00000000fffae000 size=4096 unmapped_size=4096',
    ]);
    expect(evs).toEqual([
      { kind: 'iommu.map', actor: 'cpu0', cause: 0, dev: 0xffff, iova: 0xfffbd000n, gpa: 0x3ff96000n, size: 4096n, perm: 'RW' },
      { kind: 'iommu.map', actor: 'cpu0', cause: 0, dev: 0xffff, iova: 0xfffec000n, gpa: 0x505b000n, size: 8192n, perm: 'RW' },
      { kind: 'iommu.unmap', actor: 'cpu0', cause: 0, dev: 0xffff, iova: 0xfffad000n, size: 4096n },
    ]);
  });

  it('swiotlb_bounced, 4- and 3-argument forms → swiotlb.bounce (orig = dev_addr, slot unknown)', async () => {
    const evs = await guest([
      '    kworker/0:1H-38      [000] d..1.     1.862564: swiotlb_bounced: dev_name: 0000:00:02.0 dma_mask=ffffffffffffffff dev_addr=4b62210 size=16 FORCE',
      G('2.0', 'swiotlb_bounced', 'dev_name: 0000:00:03.0 dma_mask=ffffffff dev_addr=4b13c00 size=1536'),
    ]);
    expect(evs).toEqual([
      { kind: 'swiotlb.bounce', actor: 'cpu0', cause: 0, dev: 0x10, orig: 0x4b62210n, tlb: 0n, size: 16, toTlb: 1, trigger: 'map' },
      { kind: 'swiotlb.bounce', actor: 'cpu0', cause: 0, dev: 0x18, orig: 0x4b13c00n, tlb: 0n, size: 1536, toTlb: 1, trigger: 'map' },
    ]);
  });

  it('io_page_fault → iommu.fault (IOMMU_FAULT_WRITE = 1, no reason in the tracepoint)', async () => {
    expect(await guest([G('5.0', 'io_page_fault', 'IOMMU:AMD-Vi 0000:00:03.0 iova=0x0000000012340000 flags=0x0001')])).toEqual([
      { kind: 'iommu.fault', actor: 'iommu', cause: 0, dev: 0x18, iova: 0x12340000n, write: 1, reason: 0 },
    ]);
  });

  it('dma:* (6.12+) → dma.map / dma.unmap / dma.sync', async () => {
    const evs = await guest([
      G('1.0', 'dma_map_page', '0000:00:02.0 dir=TO_DEVICE dma_addr=fffff000 size=4096 phys_addr=3ff96000 attrs='),
      G('1.1', 'dma_sync_single_for_cpu', '0000:00:02.0 dir=FROM_DEVICE dma_addr=fffff000 size=64'),
      G('1.2', 'dma_unmap_page', '0000:00:02.0 dir=TO_DEVICE dma_addr=fffff000 size=4096 attrs='),
      G('1.3', 'dma_map_sg', '0000:00:03.0 dir=FROM_DEVICE dma_addrs={0xffffe000,0xffffd000} sizes={0x1000,0x200} phys_addrs={0x10000000,0x20000000} attrs='),
      G('1.4', 'dma_unmap_sg', '0000:00:03.0 dir=FROM_DEVICE phys_addrs={0x10000000,0x20000000} attrs='),
      G('1.5', 'dma_alloc', '0000:00:03.0 dma_addr=ffffc000 size=8192 virt_addr=00000000deadbeef flags=GFP_KERNEL attrs='),
    ]);
    expect(evs).toEqual([
      { kind: 'dma.map', actor: 'cpu0', cause: 0, dev: 0x10, phys: 0x3ff96000n, dma: 0xfffff000n, size: 4096, dir: 'TO_DEVICE', type: 'page', path: 'direct' },
      { kind: 'dma.sync', actor: 'cpu0', cause: 0, dev: 0x10, dma: 0xfffff000n, size: 64, dir: 'FROM_DEVICE', forCpu: 1 },
      { kind: 'dma.unmap', actor: 'cpu0', cause: 0, dev: 0x10, dma: 0xfffff000n, size: 4096, dir: 'TO_DEVICE', type: 'page' },
      { kind: 'dma.map', actor: 'cpu0', cause: 0, dev: 0x18, phys: 0x10000000n, dma: 0xffffe000n, size: 0x1000, dir: 'FROM_DEVICE', type: 'sg', path: 'direct' },
      { kind: 'dma.map', actor: 'cpu0', cause: 0, dev: 0x18, phys: 0x20000000n, dma: 0xffffd000n, size: 0x200, dir: 'FROM_DEVICE', type: 'sg', path: 'direct' },
      { kind: 'dma.unmap', actor: 'cpu0', cause: 0, dev: 0x18, dma: 0xffffe000n, size: 0x1000, dir: 'FROM_DEVICE', type: 'sg' },
      { kind: 'dma.unmap', actor: 'cpu0', cause: 0, dev: 0x18, dma: 0xffffd000n, size: 0x200, dir: 'FROM_DEVICE', type: 'sg' },
      { kind: 'dma.map', actor: 'cpu0', cause: 0, dev: 0x18, phys: 0n, dma: 0xffffc000n, size: 8192, dir: 'BIDIRECTIONAL', type: 'coherent', path: 'direct' },
    ]);
  });

  it('RT-MARK → marker; framing, other markers and unmodelled events → opaque, verbatim', async () => {
    const lines = [
      '=====RT-TRACE-BEGIN case=vtd-pt kernel=6.1.0-56-amd64 cmdline=intel_iommu=on iommu=pt=====',
      '            init-1       [000] .....     2.343393: tracing_mark_write: RT-MARK 1 modules-load',
      '            init-1       [000] .....     1.469484: add_device_to_group: IOMMU: groupID=2 device=0000:00:02.0',
      G('2.5', 'tracing_mark_write', 'hello'),
      '=====RT-TRACE-END=====',
    ];
    expect(await guest(lines)).toEqual([
      { kind: 'opaque', actor: 'cpu0', cause: 0, side: 'guest', event: 'RT-TRACE-BEGIN', text: lines[0] },
      { kind: 'marker', actor: 'cpu0', cause: 0, n: 1, name: 'modules-load', side: 'guest' },
      { kind: 'opaque', actor: 'cpu0', cause: 0, side: 'guest', event: 'add_device_to_group', text: lines[2] },
      { kind: 'opaque', actor: 'cpu0', cause: 0, side: 'guest', event: 'tracing_mark_write', text: lines[3] },
      { kind: 'opaque', actor: 'cpu0', cause: 0, side: 'guest', event: 'RT-TRACE-END', text: lines[4] },
    ]);
  });
});

describe('host QEMU log lines', () => {
  it('an IOTLB lookup and the vtd_dmar_translate QEMU logs after it → one iommu.translate', async () => {
    const evs = await host([
      '8328@1795271467.792956:vtd_iotlb_page_update IOTLB page update sid 0x10 iova 0xfffff002 slpte 0x3cfa4003 domain 0x4',
      '8328@1795271467.792960:vtd_dmar_translate dev 00:02.00 iova 0xfffff000 -> gpa 0x3cfa4000 mask 0xfff',
      '8328@1795271468.970153:vtd_iotlb_page_hit IOTLB page hit sid 0x10 iova 0xfff97130 slpte 0x5010001 domain 0x4',
      '8328@1795271468.970160:vtd_dmar_translate dev 00:02.00 iova 0xfff97000 -> gpa 0x5010000 mask 0xfff',
      '8328@1795271469.000000:vtd_dmar_translate dev 00:03.00 iova 0x1000 -> gpa 0x1000 mask 0xfff',
    ]);
    expect(evs).toEqual([
      { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 0x10, iova: 0xfffff002n, gpa: 0x3cfa4002n, perm: 'RW', cache: 'miss' },
      { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 0x10, iova: 0xfff97130n, gpa: 0x5010130n, perm: 'RO', cache: 'hit' },
      { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 0x18, iova: 0x1000n, gpa: 0x1000n, perm: 'RW', cache: 'pt' },
    ]);
  });

  it('invalidation descriptors → iommu.inv on the device of the domain (learnt from the lookups)', async () => {
    const evs = await host([
      '8330@1795271466.817206:vtd_inv_desc_iotlb_global iotlb invalidate global',
      '8330@1795271467.786210:vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x4 addr 0xffffe000 mask 0x1',
      '8330@1795271466.837426:vtd_inv_desc_iotlb_domain iotlb invalidate whole domain 0x4',
      '8330@1795271466.837427:vtd_inv_desc_iotlb_domain iotlb invalidate whole domain 0x9',
      '8328@1795271467.792964:vtd_iotlb_page_hit IOTLB page hit sid 0x10 iova 0xfffff002 slpte 0x3cfa4003 domain 0x4',
    ]);
    expect(evs.slice(0, 4)).toEqual([
      { kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: 0xffff, iova: 0n, size: 0n, gran: 'global' },
      { kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: 0x10, iova: 0xffffe000n, size: 0x2000n, gran: 'page' },
      { kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: 0x10, iova: 0n, size: 0n, gran: 'domain' },
      { kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: 0xffff, iova: 0n, size: 0n, gran: 'domain' },
    ]);
    // a lookup with nothing after it is still a translation
    expect(evs[4]).toEqual({ kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 0x10, iova: 0xfffff002n, gpa: 0x3cfa4002n, perm: 'RW', cache: 'hit' });
  });

  it('vtd_dmar_fault → iommu.fault', async () => {
    expect(await host(['8385@1795271543.885837:vtd_dmar_fault sid 0x10 fault 6 addr 0x12340000 write 0'])).toEqual([
      { kind: 'iommu.fault', actor: 'iommu', cause: 0, dev: 0x10, iova: 0x12340000n, write: 0, reason: 6 },
    ]);
  });

  it('AMD-Vi: hit/update + translation_result → iommu.translate; hpa 0 without a lookup = fault; pages_inval is per domain', async () => {
    const evs = await host([
      '8392@1795271553.139899:amdvi_iotlb_hit hit iotlb devid 00:03.0 gpa 0xfffff002 hpa 0x48ec002',
      '8392@1795271553.139900:amdvi_translation_result devid: 00:03.0 gpa 0xfffff002 hpa 0x48ec002',
      '8392@1795271554.348440:amdvi_cache_update  update iotlb domid 0x3 devid: 00:03.0 gpa 0xfffbe000 hpa 0x3ff90000',
      '8392@1795271554.348447:amdvi_translation_result devid: 00:03.0 gpa 0xfffbe000 hpa 0x3ff90000',
      '8392@1795271560.000000:amdvi_translation_result devid: 00:02.0 gpa 0x12340000 hpa 0x0',
      '8394@1795271554.270061:amdvi_pages_inval AMD-Vi pages for domain 0x3 invalidated',
    ]);
    expect(evs).toEqual([
      { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 0x18, iova: 0xfffff002n, gpa: 0x48ec002n, perm: 'RW', cache: 'hit' },
      { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 0x18, iova: 0xfffbe000n, gpa: 0x3ff90000n, perm: 'RW', cache: 'miss' },
      { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 0x10, iova: 0x12340000n, gpa: 0n, perm: 'NONE', cache: 'fault' },
      { kind: 'iommu.inv', actor: 'iommu', cause: 0, dev: 0x18, iova: 0n, size: 0n, gran: 'domain' },
    ]);
  });

  it('virtio-iommu: map/unmap requests (end inclusive), translate, fault', async () => {
    const evs = await host([
      '1@1.000001:virtio_iommu_attach domain=1 endpoint=16',
      '1@1.000002:virtio_iommu_map domain=1 virt_start=0xfffff000 virt_end=0xffffffff phys_start=0x3cfa4000 flags=3',
      '1@1.000003:virtio_iommu_translate mr=virtio-iommu-0-16 rid=16 addr=0xfffff040 flag=1',
      '1@1.000004:virtio_iommu_translate_out 0xfffff040 -> 0x3cfa4040 for sid=16',
      '1@1.000005:virtio_iommu_unmap domain=1 virt_start=0xfffff000 virt_end=0xffffffff',
      '1@1.000005:virtio_iommu_unmap_done domain=1 virt_start=0xfffff000 virt_end=0xffffffff',
      '1@1.000006:virtio_iommu_report_fault FAULT reason=2 flags=2 endpoint=16 address =0xfffff000',
    ]);
    expect(evs[3]).toMatchObject({ kind: 'opaque', event: 'virtio_iommu_unmap' }); // the request: what it removed comes from _done
    expect([...evs.slice(1, 3), ...evs.slice(4)]).toEqual([
      { kind: 'iommu.map', actor: 'iommu', cause: 0, dev: 16, iova: 0xfffff000n, gpa: 0x3cfa4000n, size: 0x1000n, perm: 'RW' },
      { kind: 'iommu.translate', actor: 'iommu', cause: 0, dev: 16, iova: 0xfffff040n, gpa: 0x3cfa4040n, perm: 'RO', cache: 'miss' },
      { kind: 'iommu.unmap', actor: 'iommu', cause: 0, dev: 16, iova: 0xfffff000n, size: 0x1000n },
      { kind: 'iommu.fault', actor: 'iommu', cause: 0, dev: 16, iova: 0xfffff000n, write: 1, reason: 2 },
    ]);
    expect(evs[0]).toMatchObject({ kind: 'opaque', event: 'virtio_iommu_attach' });
  });

  it('virtio-iommu UNMAP: removals come from virtio_iommu_unmap_done, one per mapping; a split request (S_RANGE) removes nothing', async () => {
    const evs = await host([
      '1@1.000001:virtio_iommu_attach domain=1 endpoint=16',
      '1@1.000002:virtio_iommu_map domain=1 virt_start=0x0 virt_end=0x4 phys_start=0xa0000 flags=3',
      '1@1.000003:virtio_iommu_map domain=1 virt_start=0x5 virt_end=0x9 phys_start=0xb0000 flags=3',
      // [0, 2] would split [0, 4]: QEMU traces the request, then fails with S_RANGE
      '1@1.000004:virtio_iommu_unmap domain=1 virt_start=0x0 virt_end=0x2',
      // [0, 9] covers both: two removals
      '1@1.000005:virtio_iommu_unmap domain=1 virt_start=0x0 virt_end=0x9',
      '1@1.000005:virtio_iommu_unmap_done domain=1 virt_start=0x0 virt_end=0x4',
      '1@1.000005:virtio_iommu_unmap_done domain=1 virt_start=0x5 virt_end=0x9',
    ]);
    const unmaps = evs.filter((e) => e.kind === 'iommu.unmap');
    expect(unmaps).toEqual([
      { kind: 'iommu.unmap', actor: 'iommu', cause: 0, dev: 16, iova: 0x0n, size: 5n },
      { kind: 'iommu.unmap', actor: 'iommu', cause: 0, dev: 16, iova: 0x5n, size: 5n },
    ]);
    expect(evs.filter((e) => e.kind === 'opaque' && e.event === 'virtio_iommu_unmap')).toHaveLength(2);
  });

  it('virtqueue pop/fill/flush → vq.pop / vq.fill on the device the queue belongs to; notify → vring.irq', async () => {
    const evs = await host([
      '8330@1795271462.114481:pci_cfg_write virtio-blk-pci 00:02.0 @0x18 <- 0x0',
      '8328@1795271462.144208:virtio_queue_notify vdev 0x564dbb5045d0 n 0 vq 0x7ff7c1838010',
      '8328@1795271462.168776:virtio_blk_handle_read vdev 0x564dbb5045d0 req 0x564dbb3a02c0 sector 0 nsectors 1',
      '8328@1795271462.168773:virtqueue_pop vq 0x7ff7c1838010 elem 0x564dbb3a02c0 in_num 2 out_num 1',
      '8328@1795271462.168886:virtqueue_fill vq 0x7ff7c1838010 elem 0x564dbb3a02c0 len 513 idx 0',
      '8328@1795271462.168891:virtqueue_flush vq 0x7ff7c1838010 count 1',
      '8328@1795271467.807404:virtio_notify_irqfd vdev 0x564dbb5045d0 vq 0x7ff7c1838010',
      '8328@1795271471.399839:virtqueue_pop vq 0x7ff7c0ed3010 elem 0x564dba539d40 in_num 1 out_num 0',
    ]);
    const typed = evs.filter((e) => e.kind !== 'opaque');
    expect(typed).toEqual([
      { kind: 'vq.pop', actor: 'vmm', cause: 0, dev: 0x10, q: 0, elem: 0x564dbb3a02c0n, inNum: 2, outNum: 1 },
      { kind: 'vq.fill', actor: 'vmm', cause: 0, dev: 0x10, q: 0, elem: 0x564dbb3a02c0n, len: 513, count: 0 },
      { kind: 'vq.fill', actor: 'vmm', cause: 0, dev: 0x10, q: 0, elem: 0n, len: 0, count: 1 },
      { kind: 'vring.irq', actor: 'vmm', cause: 0, q: 0 },
      { kind: 'vq.pop', actor: 'vmm', cause: 0, dev: 0xffff, q: 0xff, elem: 0x564dba539d40n, inNum: 1, outNum: 0 }, // a queue never notified: unknown
    ]);
  });

  it('the host-bridge marker write → marker (named after the guest marker); other lines → opaque, verbatim', async () => {
    const lines = [
      '8355@1795271493.087071:pci_cfg_write mch 00:00.0 @0xfc <- 0x52540007',
      '8355@1795271493.087072:pci_cfg_write mch 00:00.0 @0x90 <- 0x33333330',
      '8328@1795271465.771780:vtd_ir_irte_get index 1 low 0x4ff00 high 0x1000030000d',
      '8328@1795271462.088938:vtd_context_cache_reset ',
    ];
    expect(await host(lines)).toEqual([
      { kind: 'marker', actor: 'vmm', cause: 0, n: 7, name: 'net-up', side: 'host' },
      { kind: 'opaque', actor: 'vmm', cause: 0, side: 'host', event: 'pci_cfg_write', text: lines[1] },
      { kind: 'opaque', actor: 'vmm', cause: 0, side: 'host', event: 'vtd_ir_irte_get', text: lines[2] },
      { kind: 'opaque', actor: 'vmm', cause: 0, side: 'host', event: 'vtd_context_cache_reset', text: lines[3] },
    ]);
  });
});

describe('the DMA mode (strict / lazy / passthrough), from the command line and what the host saw', () => {
  async function mode(cmdline: string, guestLines: string[], hostLines: string[] = []) {
    const dir = tempDir();
    writeFileSync(join(dir, 'g.txt'), [`=====RT-TRACE-BEGIN case=x cmdline=${cmdline}=====`, ...guestLines, '=====RT-TRACE-END====='].join('\n') + '\n');
    writeFileSync(join(dir, 'q.log'), hostLines.join('\n') + '\n');
    return dmaMode(await scanGuest(join(dir, 'g.txt')), hostLines.length ? await scanHost(join(dir, 'q.log')) : null).path;
  }
  const map = G('1.0', 'map', 'IOMMU: iova=0x00000000fffff000 - 0x0000000100000000 paddr=0x0000000010000000 size=4096');
  it('iommu=pt → passthrough', async () => expect(await mode('intel_iommu=on iommu=pt', [])).toBe('passthrough'));
  it('iommu.strict=0 → lazy', async () => expect(await mode('intel_iommu=on iommu=nopt iommu.strict=0', [map])).toBe('iommu-lazy'));
  it('iommu.strict=1 → strict', async () => expect(await mode('iommu.strict=1', [map])).toBe('iommu'));
  it('page-selective invalidations on the host (caching mode forces strict) → strict', async () =>
    expect(await mode('intel_iommu=on iommu=nopt iommu.strict=0', [map], ['8330@1795271467.786210:vtd_inv_desc_iotlb_pages iotlb invalidate domain 0x4 addr 0xffffe000 mask 0x1'])).toBe('iommu'));
  it('nothing said → lazy, the weaker requirement (x86 default)', async () => expect(await mode('intel_iommu=on', [map])).toBe('iommu-lazy'));
  it('swiotlb=force bounces, no IOMMU maps → swiotlb-force', async () =>
    expect(await mode('intel_iommu=off swiotlb=force', [G('1.0', 'swiotlb_bounced', 'dev_name: 0000:00:02.0 dma_mask=ffffffffffffffff dev_addr=4b62210 size=16 FORCE')])).toBe('swiotlb-force'));
});

describe('the host scan of a log imported alone', () => {
  it('keeps no translation samples (they only fit a guest clock), and the rest of the scan is the same', async () => {
    const f = join(tempDir(), 'q.log');
    writeFileSync(
      f,
      [
        '8328@1700000000.000100:vtd_iotlb_page_update IOTLB page update sid 0x10 iova 0xfffff000 slpte 0x10000003 domain 0x4',
        '8328@1700000000.000200:vtd_dmar_translate dev 00:02.00 iova 0xfffff000 -> gpa 0x10000000 mask 0xfff',
        '8328@1700000000.000300:vtd_dmar_translate dev 00:02.00 iova 0xffffe000 -> gpa 0x10001000 mask 0xfff',
      ].join('\n') + '\n',
    );
    const withSamples = await scanHost(f);
    const alone = await scanHost(f, { xlate: false });
    expect(withSamples.xlate.map((x) => [x.page, x.gpaPage])).toEqual([
      [0xfffff, 0x10000],
      [0xffffe, 0x10001],
    ]);
    expect(alone.xlate).toEqual([]);
    expect({ ...alone, xlate: null }).toEqual({ ...withSamples, xlate: null });
  });
});
