// vhost lines of a QEMU log → iotlb.miss / update / invalidate (src/import/to-events.ts HostConverter.vhost).
// The lines follow QEMU's format strings (hw/virtio/trace-events, hw/i386/trace-events); the sequence
// is what hw/virtio/vhost.c vhost_device_iotlb_miss logs: step 1, the vIOMMU translation, step 2.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../src/events/schema.js';
import { hostEvents } from '../../src/import/merge.js';
import { scanHost } from '../../src/import/to-events.js';
import { cli, tempDir } from '../helpers.js';

const L = (us: number, tid: number, event: string, args: string) => `${tid}@1796040000.${String(us).padStart(6, '0')}:${event} ${args}`;

const MISS_OK = [
  L(1, 10, 'pci_cfg_write', 'virtio-net-pci 00:03.0 @0x4 <- 0x7'),
  L(2, 10, 'vhost_region_add_section', 'pc.ram: 0x0+0x80000000 @ 0x7f0000000000'),
  L(100, 10, 'vhost_iotlb_miss', '0x55d0c0de0000 step 1'),
  L(101, 10, 'vtd_iotlb_page_update', 'IOTLB page update sid 0x18 iova 0xfffff000 slpte 0x3000003 domain 0x5'),
  L(102, 10, 'vtd_dmar_translate', 'dev 00:03.00 iova 0xfffff000 -> gpa 0x3000000 mask 0xfff'),
  L(103, 10, 'vhost_iotlb_miss', '0x55d0c0de0000 step 2'),
  // the guest's Device-TLB invalidation of that page (lo: SID in bits 32..47, type 3), then a 16 KiB one (S bit)
  L(200, 11, 'vtd_inv_desc', 'invalidate desc type device high 0xfffff000 low 0x1800000003'),
  L(201, 11, 'vtd_inv_desc', 'invalidate desc type device high 0x11001 low 0x1800000003'),
];

// vhost-user as QEMU 7.2 logs it with DPDK's vhost PMD (traces/real/runs/qemu-vhost.log): the UPDATE is a
// VHOST_USER_IOTLB_MSG (req 22) inside the miss; outside a miss, a req 22 right after a page
// invalidation is the INVALIDATE vhost_iommu_unmap_notify sends for it
const VHOST_USER = [
  L(1, 10, 'pci_cfg_write', 'virtio-net-pci 00:02.0 @0x4 <- 0x7'),
  L(100, 10, 'vhost_iotlb_miss', '0x557ad5de20f0 step 1'),
  L(101, 10, 'vtd_iotlb_page_update', 'IOTLB page update sid 0x10 iova 0xfffff240 slpte 0x32f8e003 domain 0x4'),
  L(102, 10, 'vtd_dmar_translate', 'dev 00:02.00 iova 0xfffff000 -> gpa 0x32f8e000 mask 0xfff'),
  L(103, 10, 'vhost_user_write', 'req:22 flags:0x9'),
  L(104, 10, 'vhost_user_read', 'req:22 flags:0x5'),
  L(105, 10, 'vhost_iotlb_miss', '0x557ad5de20f0 step 2'),
  L(200, 11, 'vtd_inv_desc_iotlb_pages', 'iotlb invalidate domain 0x4 addr 0xfffff000 mask 0x0'),
  L(201, 11, 'vhost_user_write', 'req:22 flags:0x9'),
  L(202, 11, 'vhost_user_read', 'req:22 flags:0x5'),
];

// vhost-kernel (vhost-net): no vhost_user_* lines; the INVALIDATE QEMU writes to the vhost fd is not
// traced, so a page invalidation of a device that took an UPDATE stands for it
const VHOST_KERNEL = [
  L(1, 10, 'pci_cfg_write', 'virtio-net-pci 00:03.0 @0x4 <- 0x7'),
  L(50, 11, 'vtd_inv_desc_iotlb_pages', 'iotlb invalidate domain 0x5 addr 0xffffe000 mask 0x0'),
  MISS_OK[2]!, MISS_OK[3]!, MISS_OK[4]!, MISS_OK[5]!,
  L(200, 11, 'vtd_inv_desc_iotlb_pages', 'iotlb invalidate domain 0x5 addr 0xfffff000 mask 0x1'),
];

const MISS_FAULT = [
  L(1, 10, 'pci_cfg_write', 'virtio-net-pci 00:03.0 @0x4 <- 0x7'),
  L(100, 10, 'vhost_iotlb_miss', '0x55d0c0de0000 step 1'),
  L(101, 10, 'vtd_dmar_fault', 'sid 0x18 fault 6 addr 0x12340000 write 0'),
  L(102, 10, 'vhost_iotlb_miss', '0x55d0c0de0000 step 2'),
];

const VDPA = [
  L(1, 10, 'vhost_vdpa_dma_map', 'vdpa:0x55d0c0de1000 fd: 17 msg_type: 2 asid: 0 iova: 0x100000 size: 0x7ff00000 uaddr: 0x7f1234500000 perm: 0x3 type: 2'),
  L(2, 10, 'vhost_vdpa_dma_unmap', 'vdpa:0x55d0c0de1000 fd: 17 msg_type: 2 asid: 0 iova: 0x100000 size: 0x7ff00000 type: 3'),
];

async function host(lines: string[]): Promise<NewEvent[]> {
  const f = join(tempDir(), 'q.log');
  writeFileSync(f, lines.join('\n') + '\n');
  const out: NewEvent[] = [];
  for await (const b of hostEvents(await scanHost(f), [])) out.push(...b.map((e) => e.ev));
  return out;
}

const iotlb = (evs: NewEvent[]) => evs.filter((e) => e.kind.startsWith('iotlb.'));

describe('vhost IOTLB lines', () => {
  it('miss (step 1) + translation + step 2 → iotlb.miss with the IOVA, iommu.translate, iotlb.update of the page to its HVA', async () => {
    const evs = await host(MISS_OK);
    const kinds = evs.filter((e) => e.kind !== 'opaque' && e.kind !== 'marker').map((e) => e.kind);
    expect(kinds).toEqual(['iotlb.miss', 'iommu.translate', 'iotlb.update', 'iotlb.invalidate', 'iotlb.invalidate']);
    expect(iotlb(evs)).toEqual([
      { kind: 'iotlb.miss', actor: 'vmm', cause: 0, dev: 0x18, q: 0xff, iova: 0xfffff000n, perm: 'RW' },
      { kind: 'iotlb.update', actor: 'vmm', cause: 0, dev: 0x18, iova: 0xfffff000n, size: 0x1000n, uaddr: 0x7f0003000000n, perm: 'RW', result: 'ok' },
      { kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: 0x18, iova: 0xfffff000n, size: 0x1000n, result: 'ok' },
      { kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: 0x18, iova: 0x10000n, size: 0x4000n, result: 'ok' },
    ]);
    expect(evs.some((e) => e.kind === 'opaque' && e.event === 'vhost_iotlb_miss')).toBe(false);
  });

  it('vhost-user: the req 22 inside the miss is its UPDATE; one after a page invalidation is the INVALIDATE of that range', async () => {
    expect(iotlb(await host(VHOST_USER))).toEqual([
      { kind: 'iotlb.miss', actor: 'vmm', cause: 0, dev: 0x10, q: 0xff, iova: 0xfffff240n, perm: 'RW' },
      { kind: 'iotlb.update', actor: 'vmm', cause: 0, dev: 0x10, iova: 0xfffff000n, size: 0x1000n, uaddr: 0x32f8e000n, perm: 'RW', result: 'ok' },
      { kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: 0x10, iova: 0xfffff000n, size: 0x1000n, result: 'ok' },
    ]);
  });

  it('vhost-kernel: a page invalidation of a device that took an UPDATE is its INVALIDATE (none before the first UPDATE)', async () => {
    expect(iotlb(await host(VHOST_KERNEL)).map((e) => [e.kind, 'iova' in e ? e.iova : null, 'size' in e ? e.size : null])).toEqual([
      ['iotlb.miss', 0xfffff000n, null],
      ['iotlb.update', 0xfffff000n, 0x1000n],
      ['iotlb.invalidate', 0xfffff000n, 0x2000n],
    ]);
  });

  it('a translation that faults: the miss, the fault, and no UPDATE (QEMU sends none)', async () => {
    expect(iotlb(await host(MISS_FAULT))).toEqual([{ kind: 'iotlb.miss', actor: 'vmm', cause: 0, dev: 0x18, q: 0xff, iova: 0x12340000n, perm: 'RO' }]);
  });

  it('without the vIOMMU lines the IOVA is unknown: the two steps stay opaque', async () => {
    const evs = await host([MISS_OK[0]!, MISS_OK[2]!, MISS_OK[5]!]);
    expect(iotlb(evs)).toEqual([]);
    expect(evs.filter((e) => e.kind === 'opaque' && e.event === 'vhost_iotlb_miss')).toHaveLength(2);
  });

  it('vhost-vdpa map/unmap → iotlb.update / iotlb.invalidate on the unknown device', async () => {
    expect(iotlb(await host(VDPA))).toEqual([
      { kind: 'iotlb.update', actor: 'vmm', cause: 0, dev: 0xffff, iova: 0x100000n, size: 0x7ff00000n, uaddr: 0x7f1234500000n, perm: 'RW', result: 'ok' },
      { kind: 'iotlb.invalidate', actor: 'vmm', cause: 0, dev: 0xffff, iova: 0x100000n, size: 0x7ff00000n, result: 'ok' },
    ]);
  });

  it('imported, they fold although the trace names no queue; an unanswered miss is reported', () => {
    const dir = tempDir();
    const ok = join(dir, 'ok.log');
    const bad = join(dir, 'fault.log');
    const vdpa = join(dir, 'vdpa.log');
    writeFileSync(ok, MISS_OK.join('\n') + '\n');
    writeFileSync(bad, MISS_FAULT.join('\n') + '\n');
    writeFileSync(vdpa, VDPA.join('\n') + '\n');
    const a = cli(['import', ok, '--db', join(dir, 'a.db'), '--json']);
    expect(a.code, a.stderr).toBe(0);
    const ja = JSON.parse(a.stdout);
    expect(ja.byKind).toMatchObject({ 'iotlb.miss': 1, 'iotlb.update': 1, 'iotlb.invalidate': 2 });
    expect(ja.findings).toEqual([]);
    const b = cli(['import', bad, '--db', join(dir, 'b.db'), '--json']);
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout).findings.map((f: { class: string }) => f.class)).toContain('miss-unanswered');
    const c = cli(['import', vdpa, '--db', join(dir, 'c.db'), '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).byKind).toMatchObject({ 'iotlb.update': 1, 'iotlb.invalidate': 1 });
  });
});
