import type { DIRS, PERMS, TRANSLATE_MODES } from '../events/schema.js';

export type PermName = (typeof PERMS)[number];
export type DirName = (typeof DIRS)[number];
export type TranslateMode = (typeof TRANSLATE_MODES)[number];

/** VHOST_ACCESS_* bits: RO = 1 (device reads), WO = 2 (device writes). */
export const PERM_BITS: Record<PermName, number> = { NONE: 0, RO: 1, WO: 2, RW: 3 };

/** PERM_BITS[p] for the per-access paths (a keyed lookup with a varying key costs several times this). */
export const permBits = (p: PermName): number => (p === 'RW' ? 3 : p === 'RO' ? 1 : p === 'WO' ? 2 : 0);

/** IOMMU permission a DMA direction needs (TO_DEVICE: the device reads). */
export const PERM_FOR_DIR: Record<DirName, PermName> = { TO_DEVICE: 'RO', FROM_DEVICE: 'WO', BIDIRECTIONAL: 'RW', NONE: 'NONE' };

/**
 * The DMA paths a device can use:
 * - direct: no VIRTIO_F_ACCESS_PLATFORM; vring_use_dma_api() false, desc.addr is the GPA;
 * - dma-direct: ACCESS_PLATFORM, no IOMMU: dma_map_page returns the GPA (1:1);
 * - iommu / iommu-lazy: DMA API through the vIOMMU, strict or flush-queue unmap; vhost in IOTLB mode;
 * - swiotlb: bounce buffers for memory above the device's dma_mask;
 * - swiotlb-force: every streaming mapping bounced (protected guest: SEV/TDX/POWER Ultravisor);
 * - passthrough: iommu=pt, an identity domain: DMA API used, dma == GPA, no translation.
 */
export const PATHS = ['direct', 'dma-direct', 'iommu', 'iommu-lazy', 'swiotlb', 'swiotlb-force', 'passthrough'] as const;
export type PathName = (typeof PATHS)[number];

export const usesIommu = (p: string) => p === 'iommu' || p === 'iommu-lazy';
export const usesSwiotlb = (p: string) => p === 'swiotlb' || p === 'swiotlb-force';

/** VIRTIO_F_ACCESS_PLATFORM (bit 33), VIRTIO_F_VERSION_1 (32), RING_PACKED (34), EVENT_IDX (29), INDIRECT_DESC (28). */
export const F_INDIRECT = 1n << 28n;
export const F_EVENT_IDX = 1n << 29n;
export const F_VERSION_1 = 1n << 32n;
export const F_ACCESS_PLATFORM = 1n << 33n;
export const F_RING_PACKED = 1n << 34n;

export const DMA_MAPPING_ERROR = 0xffff_ffff_ffff_ffffn;
