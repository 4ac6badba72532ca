import type { DIRS, PERMS } from '../events/schema.js';

export type PermName = (typeof PERMS)[number];
export type DirName = (typeof DIRS)[number];

/** VHOST_ACCESS_* bits: RO = 1 (device reads), WO = 2 (device writes). */
export const PERM_BITS: Record<PermName, number> = { NONE: 0, RO: 1, WO: 2, RW: 3 };
export const PERM_OF_BITS: PermName[] = ['NONE', 'RO', 'WO', 'RW'];

/** The DMA paths a device can use (issue "DMA world model" adds dma-direct, swiotlb, passthrough). */
export const PATHS = ['direct', 'iommu'] as const;
export type PathName = (typeof PATHS)[number];
