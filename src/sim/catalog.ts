// The bug catalog: each real bug as a scenario — a workload, a schedule or fault that exposes it,
// and the kernel/QEMU behaviour before (buggy) and after (fixed) the change that fixed it. The
// buggy variant must yield the expected finding class; the fixed one must not.
// Sources: ../shared/reference/dma-domain.md §6 (and the commits named there).
import type { SimConfig } from './config.js';
import { BLK, NET } from './config.js';

export interface Scenario {
  id: string;
  upstream: string;
  title: string;
  /** what happens, in one line */
  story: string;
  expected: string;
  seed: string;
  buggy: SimConfig;
  fixed: SimConfig;
}

const base = (over: Partial<SimConfig>): SimConfig => ({ workload: 'net-tx', path: 'iommu', ops: 6, ringNum: 16, faults: [], ...over });
const one = (dev: number, what: 'tx' | 'rx' | 'read' | 'write', gpa: string, len: number) => ({ dev, what, segs: [{ gpa, len }] });

export const SCENARIOS: Scenario[] = [
  {
    id: 'R1',
    upstream: 'model race (dma-domain.md §6 R1; "what if guest changes the GPA while keeping bus address constant?", vhost device IOTLB RFC, 2016)',
    title: 'GPA changes under a constant IOVA with a late device-IOTLB invalidation',
    story: 'the guest unmaps IOVA I (GPA A) and reuses I for GPA B; the INVALIDATE reaches vhost a pass late, so the device touches A',
    expected: 'stale-iotlb',
    seed: '7',
    buggy: base({ workload: 'remap', ops: 6, faults: [{ kind: 'delay-invalidate', arg: 1 }] }),
    fixed: base({ workload: 'remap', ops: 6 }),
  },
  {
    id: 'B1',
    upstream: 'e2ae38cf3d91 "vhost: fix hung thread due to erroneous iotlb entries" (syzbot, 2022)',
    title: 'zero-size UPDATE hangs the vhost worker',
    story: 'UPDATE {iova 0, size 0} becomes the entry [0, ULONG_MAX] with size 0; iotlb_access_ok() adds 0 forever',
    expected: 'vhost-hang',
    seed: '1',
    buggy: base({ ops: 2, faults: [{ kind: 'zero-update', arg: 0 }], variants: { sizeZero: 'accept' } }),
    fixed: base({ ops: 2, faults: [{ kind: 'zero-update', arg: 0 }], variants: { sizeZero: 'reject-update' } }),
  },
  {
    id: 'B1b',
    upstream: 'follow-up to e2ae38cf3d91 by Eric Auger (2023, Cc stable 5.17+): allow VHOST_IOTLB_INVALIDATE with size 0 again',
    title: 'invalidate-all with size 0 rejected: every old translation stays live',
    story: 'QEMU (smmuv3 path) invalidates everything with size 0; the kernel answers EINVAL, and once the flush queue hands IOVAs out again the device uses the old entries',
    expected: 'stale-iotlb',
    seed: '3',
    buggy: base({ workload: 'remap', path: 'iommu-lazy', ops: 40, variants: { vmmInvalidateAll: 'size0', sizeZero: 'reject-all' } }),
    fixed: base({ workload: 'remap', path: 'iommu-lazy', ops: 40, variants: { vmmInvalidateAll: 'size0', sizeZero: 'reject-update' } }),
  },
  {
    id: 'B2',
    upstream: '"vhost: correctly check the iova range when waking virtqueue" (Jason Wang; Fixes 6b1e6cc7855b)',
    title: 'an UPDATE ending exactly at the missed byte does not wake the vq',
    story: 'a buffer starts at the last byte of a page; the MISS is for that byte; the page-sized UPDATE covers it, but the `>` check does not wake the vq',
    expected: 'vq-parked',
    seed: '1',
    buggy: base({ workload: 'script', ops: 1, script: [one(NET, 'tx', '0x10000fff', 1)], variants: { wakeRule: 'gt' } }),
    fixed: base({ workload: 'script', ops: 1, script: [one(NET, 'tx', '0x10000fff', 1)], variants: { wakeRule: 'ge' } }),
  },
  {
    id: 'B3',
    upstream: 'CVE-2019-14835, 060423bfdee3 "vhost: make sure log_num < in_num"',
    title: 'zero-length descriptors overflow the dirty log during migration',
    story: 'with VHOST_F_LOG_ALL a guest posts a zero-length writable descriptor: a log entry without an iovec, so log_num exceeds in_num',
    expected: 'log-overflow',
    seed: '1',
    buggy: base({ workload: 'net-rx', path: 'direct', ops: 2, faults: [{ kind: 'zero-len-desc', arg: 1 }], variants: { dirtyLog: true, logNumFix: false } }),
    fixed: base({ workload: 'net-rx', path: 'direct', ops: 2, faults: [{ kind: 'zero-len-desc', arg: 1 }], variants: { dirtyLog: true, logNumFix: true } }),
  },
  {
    id: 'S1',
    upstream: 'CVE-2022-0854 (swiotlb information leak with DMA_FROM_DEVICE), fixed by an unconditional orig→tlb copy at map time',
    title: 'swiotlb copies back slot bytes the device never wrote',
    story: 'no orig→tlb copy at map for FROM_DEVICE; the device writes half the buffer; the unmap copies the whole slot back, including a previous user\'s data',
    expected: 'swiotlb-leak',
    seed: '1',
    buggy: base({ workload: 'net-rx', path: 'swiotlb-force', ops: 3, faults: [{ kind: 'partial-write', arg: 0 }], variants: { swiotlbMapCopy: 'dir' } }),
    fixed: base({ workload: 'net-rx', path: 'swiotlb-force', ops: 3, faults: [{ kind: 'partial-write', arg: 0 }], variants: { swiotlbMapCopy: 'always' } }),
  },
  {
    id: 'S2',
    upstream: '1f221a0d0dbf "swiotlb: respect min_align_mask" (NVMe corruption under swiotlb=force / SEV)',
    title: 'bouncing loses the buffer\'s offset under min_align_mask',
    story: 'the device relies on the low bits of the dma address (NVMe PRP); the bounce address drops them',
    expected: 'swiotlb-offset-lost',
    seed: '1',
    buggy: base({ workload: 'net-rx', path: 'swiotlb-force', ops: 2, variants: { minAlignMask: 0xfff, swiotlbKeepOffset: false } }),
    fixed: base({ workload: 'net-rx', path: 'swiotlb-force', ops: 2, variants: { minAlignMask: 0xfff, swiotlbKeepOffset: true } }),
  },
  {
    id: 'S3',
    upstream: 'daf9514fd5eb "swiotlb: Validate bounce size in the sync/unmap path" (Martin Radev, SEV)',
    title: 'an oversized unmap copies past the bounce slot',
    story: 'the driver unmaps with a larger size than it mapped; without validation the copy back runs past alloc_size',
    expected: 'swiotlb-overflow',
    seed: '1',
    buggy: base({ workload: 'net-rx', path: 'swiotlb-force', ops: 2, faults: [{ kind: 'unmap-size', arg: 64 }], variants: { swiotlbValidateSize: false } }),
    fixed: base({ workload: 'net-rx', path: 'swiotlb-force', ops: 2, faults: [{ kind: 'unmap-size', arg: 64 }], variants: { swiotlbValidateSize: true } }),
  },
  {
    id: 'S4',
    upstream: '"virtio_ring: fix unmap of indirect descriptors" (Matthias Lange, 2019)',
    title: 'after a failed map with indirect descriptors the error path unmaps the wrong descriptors',
    story: 'the second mapping of an indirect chain fails (swiotlb full); the old error path walks the main ring from head instead of the indirect table',
    expected: 'dma-unmap-unknown',
    seed: '1',
    buggy: base({ workload: 'net-tx', path: 'swiotlb-force', ops: 1, faults: [{ kind: 'swiotlb-full', arg: 2 }], variants: { indirectUnmapFix: false } }),
    fixed: base({ workload: 'net-tx', path: 'swiotlb-force', ops: 1, faults: [{ kind: 'swiotlb-full', arg: 2 }], variants: { indirectUnmapFix: true } }),
  },
  {
    id: 'Q1',
    upstream: '63b88968f1 "intel-iommu: rework the page walk logic" (Peter Xu, 2018)',
    title: 'a domain resync unmaps everything before replaying the maps: DMA faults in the window',
    story: 'a vfio device with shadow page tables; a domain-selective invalidation is handled as UNMAP all + MAP replay; the device DMAs in between and faults',
    expected: 'dmar-fault',
    seed: '21',
    buggy: base({ ops: 16, faults: [{ kind: 'resync', arg: 1 }], variants: { vtdResync: 'unmap-remap' }, devices: [{ dev: NET, name: 'virtio-net', path: 'iommu', translate: 'shadow', backend: 'qemu' }] }),
    fixed: base({ ops: 16, faults: [{ kind: 'resync', arg: 1 }], variants: { vtdResync: 'tree' }, devices: [{ dev: NET, name: 'virtio-net', path: 'iommu', translate: 'shadow', backend: 'qemu' }] }),
  },
  {
    id: 'Q2',
    upstream: '1804857f19f6 "memory: Skip bad range assertion if notifier is DEVIOTLB_UNMAP type" (QEMU 5.2)',
    title: 'a device-IOTLB invalidation of [0, ~0] trips QEMU\'s notifier range assertion',
    story: 'the guest sends a device-TLB invalidation for the whole space (a rhel7 guest did); QEMU asserted instead of clamping',
    expected: 'qemu-assert',
    seed: '1',
    buggy: base({ ops: 2, faults: [{ kind: 'devtlb-inv-all', arg: 1 }], variants: { devIotlbClamp: false } }),
    fixed: base({ ops: 2, faults: [{ kind: 'devtlb-inv-all', arg: 1 }], variants: { devIotlbClamp: true } }),
  },
  {
    id: 'P1',
    upstream: 'openvmm PR #3448; rivosinc/salus #55; legacy/transitional devices cannot negotiate ACCESS_PLATFORM (tp-qemu #3685)',
    title: 'a device behind the IOMMU without ACCESS_PLATFORM: raw GPAs are faulted',
    story: 'the driver bypasses the DMA API and puts GPAs in the ring; the device translates them as IOVAs; nothing maps them',
    expected: 'dmar-fault',
    seed: '1',
    buggy: base({ ops: 2, devices: [{ dev: NET, name: 'virtio-net', path: 'direct', translate: 'iova' }] }),
    fixed: base({ ops: 2, devices: [{ dev: NET, name: 'virtio-net', path: 'iommu' }] }),
  },
  {
    id: 'P2',
    upstream: 'drivers/virtio/virtio.c virtio_features_ok(): "device must provide VIRTIO_F_ACCESS_PLATFORM"',
    title: 'a protected guest refuses a device without ACCESS_PLATFORM',
    story: 'SEV/TDX guest, legacy device: the probe fails with -ENODEV rather than doing plaintext DMA',
    expected: 'probe-refused',
    seed: '1',
    buggy: base({ workload: 'blk-read', ops: 2, protected: true, devices: [{ dev: BLK, name: 'virtio-blk', path: 'direct' }] }),
    fixed: base({ workload: 'blk-read', ops: 2, protected: true, devices: [{ dev: BLK, name: 'virtio-blk', path: 'swiotlb-force' }] }),
  },
];
