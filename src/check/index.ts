// Checkers turn events into findings (events too, appended right after the event they judge), in
// record, replay, fold, import and seek alike: the engine's pipeline (src/engine/pipeline.ts) calls
// them through JUDGE. Pre-checkers see the world before the event (an unmap is judged against the
// entry it frees); post-checkers see it after. CHECKS says which checks each kind triggers.
import type { Judge, KindChecks } from '../engine/pipeline.js';
import { bdf } from '../events/format.js';
import type { DmaEvent, Kind, NewEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import { checkDeviceAccess } from './coherence.js';
import { checkOverlap, checkSync, checkTeardown, checkUnmap } from './dma-debug.js';
import { finding, hex } from './finding.js';
import { liveness } from './liveness.js';
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

/** Which checks each event kind triggers. A kind that is not here is never judged. */
export const CHECKS: { readonly [K in Kind]?: KindChecks<K> } = {
  'dma.unmap': { pre: checkUnmap },
  'dma.sync': { pre: checkSync },
  'dma.map': { pre: (w, ev) => [...checkOverlap(w, ev), ...checkMap(w, ev)] },
  'dev.access': { post: checkDeviceAccess },
  'swiotlb.bounce': { post: checkBounce },
  'cpu.read': { post: checkCpuRead },
  'dev.teardown': { post: checkTeardown },
  'vq.error': { post: checkVqError },
  'vq.log': { post: checkLog },
  'vring.post': { post: checkPost },
  'iommu.fault': { post: checkFault, keepsState: true },
  'iommu.map': { post: checkRealMap, keepsState: true },
  'iommu.unmap': { post: checkRealUnmap, keepsState: true },
  'iommu.translate': { post: checkRealTranslate, keepsState: true },
  marker: { post: checkRealMarker, keepsState: true },
  opaque: { post: checkRealOpaque, keepsState: true },
  'iotlb.invalidate': { post: checkRealIotlbInvalidate, keepsState: true }, // nothing for a simulated trace
  'dev.probe_fail': { post: (w, ev) => [finding(ev.seq, 'probe-refused', `device ${bdf(ev.dev)} refused: ${ev.reason}`, [ev.seq])] },
  'iommu.inv': {
    keepsState: true,
    post(w, ev) {
      // QEMU before 1804857f19f6 asserted that a notification lies within the notifier's range
      if (ev.gran === 'device' && !w.variants.devIotlbClamp && ev.iova + ev.size > 1n << 48n)
        return [finding(ev.seq, 'qemu-assert', `device-IOTLB invalidation of [${hex(ev.iova)}, ${hex(ev.iova + ev.size - 1n)}] is outside the IOMMU notifier's range: QEMU aborts (memory_region_notify_one assertion)`, [ev.seq], ev.iova)];
      return checkRealInv(w, ev); // nothing for a simulated trace
    },
  },
};

type AnyCheck = (w: World, ev: DmaEvent) => NewEvent[] | null;
const checksOf = (k: Kind) => CHECKS[k] as { pre?: AnyCheck; post?: AnyCheck } | undefined;

/** The pre-checks of one event (outside the pipeline: tests, tools). */
export function runPreCheckers(w: World, ev: DmaEvent): NewEvent[] | null {
  const pre = checksOf(ev.kind)?.pre;
  return pre ? pre(w, ev) : null;
}

/** The post-checks of one event (outside the pipeline: tests, tools). */
export function runPostCheckers(w: World, ev: DmaEvent): NewEvent[] {
  const post = checksOf(ev.kind)?.post;
  return (post && post(w, ev)) || [];
}

/** Every checker, as the engine's pipeline calls them (record, replay, fold, import, seek). */
export const JUDGE: Judge = { checks: CHECKS, liveness };
