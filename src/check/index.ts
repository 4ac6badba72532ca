// Checkers turn events into findings (events too, appended right after the event they judge), in
// record, replay and fold alike. Pre-checkers see the world before the event (an unmap is judged
// against the entry it frees); post-checkers see it after.
import type { DmaEvent, NewEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import { checkDeviceAccess } from './coherence.js';
import { checkOverlap, checkSync, checkTeardown, checkUnmap } from './dma-debug.js';
import { finding, hex } from './finding.js';
import { checkFault, checkRealInv, checkRealIotlbInvalidate, checkRealMap, checkRealMarker, checkRealOpaque, checkRealTranslate, checkRealUnmap } from './real.js';
import { checkLog, checkPost, checkVqError } from './ring.js';
import { checkBounce, checkCpuRead, checkMap } from './swiotlb.js';

export const FINDING_CLASSES = [
  // IOTLB coherence and device access
  'stale-iotlb',
  'use-after-unmap',
  'access-outside-mapping',
  'access-wrong-dir',
  'unshared-access',
  'dmar-fault',
  'device-dma-fault',
  // DMA-API debug
  'dma-unmap-unknown',
  'dma-unmap-invalid',
  'dma-unmap-size',
  'dma-unmap-type',
  'dma-unmap-dir',
  'dma-map-unchecked',
  'dma-sync-unknown',
  'dma-sync-range',
  'dma-sync-dir',
  'dma-sync-cpu-readonly',
  'dma-sync-device-writeonly',
  'dma-overlap',
  'dma-leak',
  // swiotlb
  'swiotlb-leak',
  'swiotlb-stale-read',
  'swiotlb-offset-lost',
  'swiotlb-overflow',
  // liveness
  'miss-unanswered',
  'vq-parked',
  // ring sanity and vhost
  'ring-id-out-of-range',
  'ring-used-not-head',
  'ring-zero-len-desc',
  'ring-error',
  'vhost-hang',
  'log-overflow',
  // platform
  'probe-refused',
  'qemu-assert',
  // real (imported) traces
  'translate-after-unmap',
  'translate-gpa-mismatch',
  'reuse-without-invalidation',
  'missing-invalidation',
  'iotlb-hit-after-invalidation',
  'stale-translation',
  'translate-before-map',
  'double-unmap',
  'device-iotlb-not-invalidated',
] as const;

export function runPreCheckers(w: World, ev: DmaEvent): NewEvent[] | null {
  switch (ev.kind) {
    case 'dma.unmap':
      return checkUnmap(w, ev);
    case 'dma.sync':
      return checkSync(w, ev);
    case 'dma.map':
      return [...checkOverlap(w, ev), ...checkMap(w, ev)];
    default:
      return null;
  }
}

export function runPostCheckers(w: World, ev: DmaEvent): NewEvent[] {
  switch (ev.kind) {
    case 'dev.access':
      return checkDeviceAccess(w, ev);
    case 'swiotlb.bounce':
      return checkBounce(w, ev);
    case 'cpu.read':
      return checkCpuRead(w, ev);
    case 'dev.teardown':
      return checkTeardown(w, ev);
    case 'vq.error':
      return checkVqError(w, ev);
    case 'vq.log':
      return checkLog(w, ev);
    case 'vring.post':
      return checkPost(w, ev);
    case 'iommu.fault':
      return checkFault(w, ev);
    case 'iommu.map':
      return checkRealMap(w, ev);
    case 'iommu.unmap':
      return checkRealUnmap(w, ev);
    case 'iommu.translate':
      return checkRealTranslate(w, ev);
    case 'marker':
      return checkRealMarker(w, ev);
    case 'iotlb.invalidate':
      return checkRealIotlbInvalidate(w, ev); // nothing for a simulated trace
    case 'opaque':
      return checkRealOpaque(w, ev);
    case 'dev.probe_fail':
      return [finding(ev.seq, 'probe-refused', `device ${hex(BigInt(ev.dev))} refused: ${ev.reason}`, [ev.seq])];
    case 'iommu.inv':
      // QEMU before 1804857f19f6 asserted that a notification lies within the notifier's range
      if (ev.gran === 'device' && !w.variants.devIotlbClamp && ev.iova + ev.size > 1n << 48n)
        return [finding(ev.seq, 'qemu-assert', `device-IOTLB invalidation of [${hex(ev.iova)}, ${hex(ev.iova + ev.size - 1n)}] is outside the IOMMU notifier's range: QEMU aborts (memory_region_notify_one assertion)`, [ev.seq], ev.iova)];
      return checkRealInv(w, ev); // nothing for a simulated trace
    default:
      return [];
  }
}
