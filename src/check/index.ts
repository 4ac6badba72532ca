// Checkers turn events into findings (events too, appended right after the event they judge), in
// record, replay and fold alike. Pre-checkers see the world before the event (an unmap is judged
// against the entry it frees); post-checkers see it after.
import type { DmaEvent, EventOf, NewEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import { checkDeviceAccess } from './coherence.js';
import { checkOverlap, checkSync, checkTeardown, checkUnmap } from './dma-debug.js';
import { finding, hex } from './finding.js';
import { checkFault, checkRealInv, checkRealMap, checkRealMarker, checkRealOpaque, checkRealTranslate, checkRealUnmap } from './real.js';
import { checkLog, checkPost, checkVqError } from './ring.js';
import { checkBounce, checkCpuRead, checkMap } from './swiotlb.js';
import { validateIommuUnmap, validateLazyDmaMap, validateLazyMap } from './validate-iommu.js';
import { validateInvalidate, validateIotlbAccess, validateMiss, validateUpdate } from './validate-iotlb.js';
import { validateGetbuf, validateSetup, validateUsed } from './validate-ring.js';
import { validateBounceMap, validateSwiotlbCall } from './validate-swiotlb.js';

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
  // the model validates results a trace records (imported or hand-written traces)
  'iotlb-entry-gone',
  'iotlb-perm-mismatch',
  'iotlb-resolution-mismatch',
  'iotlb-miss-covered',
  'iotlb-result-mismatch',
  'swiotlb-copy-mismatch',
  'ring-size-invalid',
  'iommu-unmap-unmapped',
  'iova-reuse-before-flush',
] as const;

export function runPreCheckers(w: World, ev: DmaEvent): NewEvent[] | null {
  // a swiotlb sync/unmap is judged once its bounce copies are over
  if (w.swiotlb.call && ev.kind !== 'swiotlb.bounce') return [...validateSwiotlbCall(w), ...(preCheck(w, ev) ?? [])];
  return preCheck(w, ev);
}

function preCheck(w: World, ev: DmaEvent): NewEvent[] | null {
  switch (ev.kind) {
    case 'dma.unmap':
      return checkUnmap(w, ev);
    case 'dma.sync':
      return checkSync(w, ev);
    case 'dma.map':
      return concat4(checkOverlap(w, ev), checkMap(w, ev), validateBounceMap(w, ev), validateLazyDmaMap(w, ev));
    case 'iommu.map':
      return validateLazyMap(w, ev);
    case 'iommu.unmap':
      return validateIommuUnmap(w, ev);
    case 'vring.used':
      return validateUsed(w, ev);
    case 'vring.getbuf':
      return validateGetbuf(w, ev);
    default:
      return null;
  }
}

/** A resolution the device IOTLB could not have produced is reported as such, not also as a stale translation. */
const IMPOSSIBLE = new Set(['iotlb-entry-gone', 'iotlb-resolution-mismatch']);

const concat4 = (a: NewEvent[], b: NewEvent[], c: NewEvent[], d: NewEvent[]) => (a.length + b.length + c.length + d.length ? [...a, ...b, ...c, ...d] : a);

function deviceAccess(w: World, ev: EventOf<'dev.access'>): NewEvent[] {
  const c = checkDeviceAccess(w, ev);
  if (ev.via !== 'iotlb' && ev.via !== 'meta') return c;
  const v = validateIotlbAccess(w, ev);
  if (!v.length) return c;
  if (!v.some((f) => f.kind === 'finding' && IMPOSSIBLE.has(f.cls))) return [...v, ...c];
  return [...v, ...c.filter((f) => f.kind !== 'finding' || (f.cls !== 'stale-iotlb' && f.cls !== 'use-after-unmap'))];
}

export function runPostCheckers(w: World, ev: DmaEvent): NewEvent[] {
  switch (ev.kind) {
    case 'dev.access':
      return deviceAccess(w, ev);
    case 'iotlb.miss':
      return validateMiss(w, ev);
    case 'iotlb.update':
      return validateUpdate(w, ev);
    case 'iotlb.invalidate':
      return validateInvalidate(w, ev);
    case 'vring.setup':
      return validateSetup(w, ev);
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
