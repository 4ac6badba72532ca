// Kernel and QEMU behaviours that changed across releases, as switches. The default of each is
// current upstream (the fixed behaviour); the catalog flips one to reproduce the bug it names.
export interface Variants {
  /** vhost_iotlb_notify_vq: wake when update.last >= miss ('ge', current) or > ('gt', before "vhost: correctly check the iova range when waking virtqueue") */
  wakeRule: 'ge' | 'gt';
  /** size-0 IOTLB messages: 'accept' (before e2ae38cf3d91: UPDATE{0,0} makes [0, ULONG_MAX] with size 0),
   * 'reject-all' (e2ae38cf3d91: UPDATE and INVALIDATE rejected), 'reject-update' (current: invalidate-all allowed) */
  sizeZero: 'accept' | 'reject-all' | 'reject-update';
  /** swiotlb map copies orig→tlb 'always' (post CVE-2022-0854) or only for TO_DEVICE/BIDIRECTIONAL ('dir') */
  swiotlbMapCopy: 'always' | 'dir';
  /** tlb_addr keeps orig & min_align_mask (1f221a0d0dbf "swiotlb: respect min_align_mask") */
  swiotlbKeepOffset: boolean;
  /** unmap/sync sizes validated against the slot's alloc_size (daf9514fd5eb) */
  swiotlbValidateSize: boolean;
  /** virtio_ring error path unmaps the indirect table's entries, not the main ring from head ("virtio_ring: fix unmap of indirect descriptors") */
  indirectUnmapFix: boolean;
  /** intel-iommu invalidation with MAP notifiers: 'tree' (63b88968f1: only changed ranges) or 'unmap-remap' (unmap the range, replay maps) */
  vtdResync: 'tree' | 'unmap-remap';
  /** a device-IOTLB invalidation of an arbitrary range is clamped to the notifier (1804857f19f6) instead of asserting */
  devIotlbClamp: boolean;
  /** vhost: log_num counts only iovecs (060423bfdee3, CVE-2019-14835) */
  logNumFix: boolean;
  /** how the VMM invalidates everything: a ranged INVALIDATE, or size 0 (QEMU smmuv3 + vhost) */
  vmmInvalidateAll: 'range' | 'size0';
  /** VHOST_F_LOG_ALL: dirty logging on (during live migration) */
  dirtyLog: boolean;
  /** the device's min_align_mask (NVMe sets 0xfff; 0 for virtio) */
  minAlignMask: number;
  /**
   * INVALIDATE delivered asynchronously: a vhost-user back-end without REPLY_ACK applies it when its
   * thread runs, not before the guest's invalidation completes (the schedule decides the race)
   */
  asyncInvalidate: boolean;
  /** swiotlb pool size in 2 KiB slots (at most 1024 here); a small pool reuses slots soon */
  swiotlbSlots: number;
  /**
   * Whose virtqueue rules the device follows where they differ: 'vhost' (drivers/vhost/vhost.c
   * vhost_get_vq_desc/get_indirect: an INDIRECT descriptor anywhere in a chain, the table read in
   * order up to the first entry without NEXT, zero-length buffers allowed) or 'qemu'
   * (hw/virtio/virtio.c virtqueue_split_pop: INDIRECT only on the head, the table walked by its
   * next fields, zero-length buffers refused). A device with --backend qemu follows QEMU's rules.
   */
  backend: 'vhost' | 'qemu';
}

export const DEFAULT_VARIANTS: Variants = {
  wakeRule: 'ge',
  sizeZero: 'reject-update',
  swiotlbMapCopy: 'always',
  swiotlbKeepOffset: true,
  swiotlbValidateSize: true,
  indirectUnmapFix: true,
  vtdResync: 'tree',
  devIotlbClamp: true,
  logNumFix: true,
  vmmInvalidateAll: 'range',
  dirtyLog: false,
  minAlignMask: 0,
  asyncInvalidate: false,
  swiotlbSlots: 1024,
  backend: 'vhost',
};

export const VARIANT_CHOICES: Record<keyof Variants, readonly (string | boolean | number)[] | 'number'> = {
  wakeRule: ['ge', 'gt'],
  sizeZero: ['accept', 'reject-all', 'reject-update'],
  swiotlbMapCopy: ['always', 'dir'],
  swiotlbKeepOffset: [true, false],
  swiotlbValidateSize: [true, false],
  indirectUnmapFix: [true, false],
  vtdResync: ['tree', 'unmap-remap'],
  devIotlbClamp: [true, false],
  logNumFix: [true, false],
  vmmInvalidateAll: ['range', 'size0'],
  dirtyLog: [true, false],
  minAlignMask: 'number',
  asyncInvalidate: [true, false],
  swiotlbSlots: 'number',
  backend: ['vhost', 'qemu'],
};
