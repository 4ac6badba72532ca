// Checkers turn events into findings (events too, appended right after the event they judge), in
// record, replay, fold, import and seek alike: the engine's pipeline (src/engine/pipeline.ts) calls
// them through JUDGE. Pre-checkers see the world before the event (an unmap is judged against the
// entry it frees); post-checkers see it after. CHECKS says which checks each kind triggers.
import type { Judge, KindChecks } from '../engine/pipeline.js';
import { bdf } from '../events/format.js';
import type { DmaEvent, EventOf, Kind, NewEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import { toNum } from '../model/memory.js';
import { deviceAccessChecks } from './coherence.js';
import { checkOverlap, checkSync, checkTeardown, checkUnmap } from './dma-debug.js';
import { finding, hex, NONE } from './finding.js';
import { liveness } from './liveness.js';
import { checkFault, checkRealInv, checkRealIotlbInvalidate, checkRealMap, checkRealMarker, checkRealOpaque, checkRealTranslate, checkRealUnmap } from './real.js';
import { checkLog, checkPost, checkVqError } from './ring.js';
import { checkBounce, checkCpuRead, checkMap } from './swiotlb.js';
import { validateIommuUnmap, validateLazyDmaMap, validateLazyMap } from './validate-iommu.js';
import { iotlbAccessChecks, isIotlbDevice, validateInvalidate, validateMiss, validateUpdate } from './validate-iotlb.js';
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
  'iotlb-hit-after-invalidation',
  'stale-translation',
  'translate-before-map',
  'double-unmap',
  'device-iotlb-not-invalidated',
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

const both = (a: NewEvent[] | null, b: NewEvent[]): NewEvent[] | null => (!b.length ? a : a && a.length ? [...b, ...a] : b);

/** Every DMA-API map: the swiotlb call before it, cacheline overlap, the bounce offset, the map's copy, lazy IOVA reuse, in that order. */
function dmaMap(w: World, ev: EventOf<'dma.map'>): NewEvent[] {
  const a = validateSwiotlbCall(w);
  const b = checkOverlap(w, ev);
  const c = checkMap(w, ev);
  const d = validateBounceMap(w, ev);
  const e = validateLazyDmaMap(w, ev);
  return a.length + b.length + c.length + d.length + e.length ? [...a, ...b, ...c, ...d, ...e] : NONE;
}

/** A resolution the device IOTLB could not have produced is reported as such, not also as a stale translation. */
const IMPOSSIBLE = new Set(['iotlb-entry-gone', 'iotlb-resolution-mismatch']);

function deviceAccess(w: World, ev: EventOf<'dev.access'>): NewEvent[] {
  // checkDeviceAccess then validateIotlbAccess, with the ring's device found once (both judge
  // nothing without one): this runs for a quarter of all simulated events
  const r = w.rings[ev.q];
  const d = r && w.devices.get(r.dev);
  if (!d) return NONE;
  // the access's dma and gpa converted once for both (see deviceAccessChecks)
  const dmaN = toNum(ev.dma);
  const gpaN = toNum(ev.gpa);
  const c = deviceAccessChecks(w, d, ev, dmaN, gpaN);
  if ((ev.via !== 'iotlb' && ev.via !== 'meta') || !isIotlbDevice(d)) return c;
  const v = iotlbAccessChecks(w, d, ev, dmaN, gpaN);
  if (!v.length) return c;
  if (!v.some((f) => f.kind === 'finding' && IMPOSSIBLE.has(f.cls))) return [...v, ...c];
  return [...v, ...c.filter((f) => f.kind !== 'finding' || (f.cls !== 'stale-iotlb' && f.cls !== 'use-after-unmap'))];
}

/** Which checks each event kind triggers. A kind that is not here is never judged. */
export const CHECKS: { readonly [K in Kind]?: KindChecks<K> } = {
  // a swiotlb sync/unmap call (w.swiotlb.call) is judged at the next DMA-API call or slot change
  'dma.unmap': { pre: (w, ev) => both(checkUnmap(w, ev), validateSwiotlbCall(w)) },
  'dma.sync': { pre: (w, ev) => both(checkSync(w, ev), validateSwiotlbCall(w)) },
  'dma.map': { pre: dmaMap },
  'swiotlb.slots': { pre: validateSwiotlbCall },
  'dev.access': { post: deviceAccess },
  'swiotlb.bounce': { post: checkBounce },
  'cpu.read': { post: checkCpuRead },
  'dev.teardown': { post: checkTeardown },
  'vq.error': { post: checkVqError },
  'vq.log': { post: checkLog },
  'vring.post': { post: checkPost },
  'iommu.fault': { post: checkFault, keepsState: true },
  'iommu.map': { pre: validateLazyMap, post: checkRealMap, keepsState: true },
  'iommu.unmap': { pre: validateIommuUnmap, post: checkRealUnmap, keepsState: true },
  'vring.used': { pre: validateUsed },
  'vring.getbuf': { pre: validateGetbuf },
  'vring.setup': { post: validateSetup },
  'iotlb.miss': { post: validateMiss },
  'iotlb.update': { post: validateUpdate },
  'iommu.translate': { post: checkRealTranslate, keepsState: true },
  marker: { post: checkRealMarker, keepsState: true },
  opaque: { post: checkRealOpaque, keepsState: true },
  // checkRealIotlbInvalidate: nothing for a simulated trace
  'iotlb.invalidate': { post: (w, ev) => both(checkRealIotlbInvalidate(w, ev), validateInvalidate(w, ev)), keepsState: true },
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
