// The VMM (QEMU) between the vIOMMU and vhost (hw/virtio/vhost.c, hw/i386/intel_iommu.c):
// - a MISS is answered by translating through the vIOMMU and writing one UPDATE covering one IOMMU
//   page, clipped to the memory region (vhost_device_iotlb_miss); a vIOMMU fault sends nothing;
// - the vIOMMU's UNMAP notifications are forwarded as INVALIDATEs (vhost_iommu_unmap_notify); MAPs
//   are never forwarded: vhost is filled lazily, by misses only;
// - for MAP-capable listeners (vfio shadow page tables) an invalidation re-syncs the shadow: only the
//   changed ranges since 63b88968f1, or unmap-all then replay before it (a DMA window, Q1).
import { PAGE_BIG, pfnBase } from '../model/memory.js';
import { gpaToHva } from '../model/memtable.js';
import { guestTranslate } from '../model/virtio-iommu.js';
import type { DeviceState } from '../model/world.js';
import type { Sim } from './sim.js';

/** `alone`: no other actor can run (a miss left unread for the latency knob is read then). */
export function vmmRunnable(sim: Sim, alone = true): boolean {
  const w = sim.world;
  const lat = sim.config.knobs?.missLatency ?? 0;
  const miss = w.vmm.toRead.length > 0 && (alone || lat === 0 || sim.seq - w.vmm.toRead[0]! >= lat);
  if (miss) return true;
  // asked before every scheduler step: a loop, not some() and its closure
  const invals = w.vmm.invals;
  for (let i = 0; i < invals.length; i++) if (invals[i]!.due <= w.passes) return true;
  return staleShadow(sim) !== null;
}

/** A shadow (vfio) device whose shadow lacks a mapping the IOMMU has: the replay half of an unmap-all resync. */
function staleShadow(sim: Sim): DeviceState | null {
  for (const d of sim.world.devices.values()) {
    if (d.translate !== 'shadow') continue;
    for (const [pfn, pte] of d.iommu) if (d.shadow.get(pfn)?.gpa !== pte.gpa) return d;
  }
  return null;
}

export function vmmStep(sim: Sim): void {
  const w = sim.world;
  const stale = staleShadow(sim);
  if (stale) {
    replayRange(sim, stale, 0, 0n, 1n << 32n);
    return;
  }
  const due = w.vmm.invals.find((i) => i.due <= w.passes);
  if (due) {
    deliverInvalidate(sim, due.dev, due.iova, due.size, due.req);
    // a reordered UPDATE goes out right after the next invalidation, whatever it covers
    const held = w.vmm.held.find((h) => h.dev === due.dev);
    if (held) sendUpdate(sim, held.dev, held.iova, held.gpa, held.perm, held.miss);
    return;
  }
  const missSeq = w.vmm.toRead[0]!;
  for (const d of w.devices.values()) {
    const miss = d.iotlb.pending.find((m) => m.seq === missSeq);
    if (miss) return serviceMiss(sim, d, miss.iova, miss.perm === 'WO' || miss.perm === 'RW', missSeq);
  }
}

function serviceMiss(sim: Sim, d: DeviceState, iova: bigint, write: boolean, missSeq: number): void {
  const t = guestTranslate(sim.world, d, iova);
  if (!t || sim.faultHit('viommu-fault', 'misses')) {
    // vtd_do_iommu_translate reports the fault; vhost_device_iotlb_miss sends nothing (trace step 2)
    if (t) sim.emit({ kind: 'fault', actor: 'vmm', cause: missSeq, what: 'viommu-fault', arg: 0, dev: d.dev, iova, size: 0n, seq: 0 });
    sim.emit({ kind: 'iommu.fault', actor: 'iommu', cause: missSeq, dev: d.dev, iova, write: write ? 1 : 0, reason: write ? 5 : 6, seq: 0 });
    return;
  }
  if (sim.faultHit('reorder-update-invalidate', 'updates')) {
    sim.emit({ kind: 'iommu.translate', actor: 'vmm', cause: missSeq, dev: d.dev, iova: t.pageIova, gpa: t.pageGpa, perm: t.perm, cache: 'miss', seq: 0 });
    sim.emit({ kind: 'fault', actor: 'vmm', cause: missSeq, what: 'reorder-update-invalidate', arg: 0, dev: d.dev, iova: t.pageIova, size: PAGE_BIG, seq: 0 });
    return;
  }
  let gpa = t.pageGpa;
  if (sim.faultHit('wrong-page-update', 'updates')) {
    gpa += PAGE_BIG;
    sim.emit({ kind: 'fault', actor: 'vmm', cause: missSeq, what: 'wrong-page-update', arg: 0, dev: d.dev, iova: t.pageIova, size: PAGE_BIG, seq: 0 });
  }
  sendUpdate(sim, d.dev, t.pageIova, gpa, t.perm, missSeq);
}

/** UPDATE of one IOMMU page → its HVA, clipped to the memory region. */
export function sendUpdate(sim: Sim, dev: number, iova: bigint, gpa: bigint, perm: 'NONE' | 'RO' | 'WO' | 'RW', cause: number): void {
  const h = gpaToHva(sim.world.memTable, gpa);
  if (!h) return;
  const size = h.left < PAGE_BIG ? h.left : PAGE_BIG;
  sim.emit({ kind: 'iotlb.update', actor: 'vmm', cause, dev, iova, size, uaddr: h.hva, perm, result: 'ok', seq: 0 });
}

/** vhost_device_iotlb_miss(hdev, used_phys, true) at vhost_dev_start: the used ring is pre-faulted. */
export function vmmPrefault(sim: Sim, d: DeviceState, iova: bigint, cause: number): void {
  const t = guestTranslate(sim.world, d, iova);
  if (t) sendUpdate(sim, d.dev, t.pageIova, t.pageGpa, t.perm, cause);
}

/** The B1 trigger: a buggy or malicious VMM writes UPDATE {iova 0, size 0, uaddr 0}. */
export function vmmZeroUpdate(sim: Sim, d: DeviceState): void {
  const rule = sim.world.variants.sizeZero;
  sim.emit({ kind: 'fault', actor: 'vmm', cause: 0, what: 'zero-update', arg: 0, dev: d.dev, iova: 0n, size: 0n, seq: 0 });
  sim.emit({ kind: 'iotlb.update', actor: 'vmm', cause: 0, dev: d.dev, iova: 0n, size: 0n, uaddr: 0n, perm: 'RW', result: rule === 'accept' ? 'ok' : 'EINVAL', seq: 0 });
}

/**
 * The vIOMMU fired an UNMAP notification (iommu.inv at invSeq). For kernel vhost QEMU's write() of
 * the INVALIDATE blocks on the vq mutexes and returns before the guest's invalidation wait
 * completes, so it lands now, between device passes; faults hold or drop it.
 */
export function vmmUnmapNotify(sim: Sim, d: DeviceState, invSeq: number, iova: bigint, size: bigint, gran: 'page' | 'domain' | 'device'): void {
  if (d.translate === 'shadow') return shadowSync(sim, d, invSeq, iova, size, gran);
  if (d.translate !== 'iova' || !d.backend.startsWith('vhost')) return;
  if (sim.faultHit('drop-invalidate', 'invalidations')) {
    sim.emit({ kind: 'fault', actor: 'vmm', cause: invSeq, what: 'drop-invalidate', arg: 0, dev: d.dev, iova, size, seq: 0 });
    return;
  }
  const delay = sim.fault('delay-invalidate');
  if (delay && delay.arg > 0) {
    sim.emit({ kind: 'fault', actor: 'vmm', cause: invSeq, what: 'delay-invalidate', arg: delay.arg, dev: d.dev, iova, size, seq: 0 });
    return;
  }
  if (sim.world.variants.asyncInvalidate) return; // owed (apply queued it); the VMM's own step delivers it
  const held = sim.world.vmm.held.find((h) => h.dev === d.dev);
  deliverInvalidate(sim, d.dev, iova, size, invSeq);
  if (held) sendUpdate(sim, held.dev, held.iova, held.gpa, held.perm, held.miss);
}

function deliverInvalidate(sim: Sim, dev: number, iova: bigint, size: bigint, req: number): void {
  const w = sim.world;
  // vhost-vdpa takes a range change as a batch (vhost_vdpa_listener_begin_batch/commit); kernel vhost-net would answer EINVAL
  const batch = w.devices.get(dev)?.backend === 'vhost-vdpa' && iova === 0n && size >= 1n << 32n;
  if (batch) sim.emit({ kind: 'iotlb.batch', actor: 'vmm', cause: req, dev, begin: 1, result: 'ok', seq: 0 });
  // Invalidate-all: a ranged message, or size 0 as QEMU's smmuv3 path sends it (B1b).
  const all = iova === 0n && size >= 1n << 48n;
  const wireSize = all && w.variants.vmmInvalidateAll === 'size0' ? 0n : size;
  const rejected = wireSize === 0n && w.variants.sizeZero === 'reject-all';
  sim.emit({ kind: 'iotlb.invalidate', actor: 'vmm', cause: req, dev, iova, size: wireSize, result: rejected ? 'EINVAL' : 'ok', seq: 0 });
  if (batch) sim.emit({ kind: 'iotlb.batch', actor: 'vmm', cause: req, dev, begin: 0, result: 'ok', seq: 0 });
}

// vfio-style listeners get MAP and UNMAP. 'tree' (63b88968f1) sends only what changed; before it an
// invalidation unmapped the whole range and replayed the maps afterwards, leaving a window.
function shadowSync(sim: Sim, d: DeviceState, invSeq: number, iova: bigint, size: bigint, gran: string): void {
  if (gran === 'domain' && sim.world.variants.vtdResync === 'unmap-remap') {
    // the MAP replay is a later VMM step (staleShadow): the device can run in between
    sim.emit({ kind: 'iommu.notify', actor: 'vmm', cause: invSeq, dev: d.dev, op: 'UNMAP', iova: 0n, size: 1n << 32n, gpa: 0n, seq: 0 });
    return;
  }
  const end = gran === 'domain' ? 1n << 32n : iova + size;
  const start = gran === 'domain' ? 0n : iova;
  for (const [pfn, s] of [...d.shadow]) {
    const a = pfnBase(pfn);
    if (a < start || a >= end) continue;
    const pte = d.iommu.get(pfn);
    if (!pte || pte.gpa !== s.gpa) sim.emit({ kind: 'iommu.notify', actor: 'vmm', cause: invSeq, dev: d.dev, op: 'UNMAP', iova: a, size: PAGE_BIG, gpa: s.gpa, seq: 0 });
  }
  replayRange(sim, d, invSeq, start, end);
}

function replayRange(sim: Sim, d: DeviceState, cause: number, start: bigint, end: bigint): void {
  for (const [pfn, pte] of d.iommu) {
    const a = pfnBase(pfn);
    if (a < start || a >= end) continue;
    if (d.shadow.get(pfn)?.gpa !== pte.gpa) sim.emit({ kind: 'iommu.notify', actor: 'vmm', cause, dev: d.dev, op: 'MAP', iova: a, size: PAGE_BIG, gpa: pte.gpa, seq: 0 });
  }
}

/** Shadow devices are told about every mapping as it is made (the vfio MAP notifier). */
export function shadowMap(sim: Sim, d: DeviceState, iova: bigint, gpa: bigint, size: bigint, cause: number): void {
  sim.emit({ kind: 'iommu.notify', actor: 'vmm', cause, dev: d.dev, op: 'MAP', iova, size, gpa, seq: 0 });
}
