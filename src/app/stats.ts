// stats: what a trace holds, counted in one streaming pass. Counts by kind for every trace; for the
// IOMMU and swiotlb events (which imported real traces are made of) also: maps/unmaps/translations
// (by cache result), invalidations by granularity, faults by device/reason/direction, swiotlb bounces
// per device and size, phase markers, the opaque lines by event name, findings by class.
import { decodeAt, sizeAt } from '../events/binary.js';
import { bdf } from '../events/format.js';
import { hex } from '../events/json.js';
import { readChunks } from '../store/db.js';
import { LiveMappings } from '../import/merge.js';
import { withTrace } from './load.js';

export interface TraceStats {
  trace: number;
  name: string;
  source: 'sim' | 'import';
  events: number;
  complete: boolean;
  byKind: Record<string, number>;
  iommu: {
    maps: number;
    unmaps: number;
    mappedBytes: string;
    translations: number;
    translationsByCache: Record<string, number>;
    translationsByDevice: Record<string, number>;
    invalidations: Record<string, number>;
  };
  faults: { device: string; reason: number; write: boolean; count: number; firstSeq: number; firstIova: string }[];
  swiotlb: {
    bounces: number;
    bytes: string;
    byDevice: { device: string; bounces: number; bytes: string; bySize: Record<string, number> }[];
  };
  /** the vhost device IOTLB: misses, UPDATEs by result, INVALIDATEs, by device */
  deviceIotlb: { misses: number; updates: Record<string, number>; invalidations: number; byDevice: Record<string, number> };
  markers: { seq: number; side: string; n: number; name: string }[];
  /**
   * Imported guest + host traces: how many host translations (of IOVA pages the guest log maps) sit,
   * in the stored order, where the guest had a mapping of that page to that GPA live; null when
   * there is nothing to judge. `blocked`: translations that found no mapping and raised no fault
   * (QEMU amd-iommu returns address 0), by device. `notes`: what was not judged and why.
   */
  order: { translations: number; insideLiveMapping: number; share: number } | null;
  blocked: Record<string, number>;
  notes: string[];
  opaqueByEvent: Record<string, number>;
  findingsByClass: Record<string, number>;
}

const inc = (m: Map<string, number>, k: string, by = 1): void => {
  m.set(k, (m.get(k) ?? 0) + by);
};
const sorted = (m: Map<string, number>): Record<string, number> => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const MAX_MARKERS = 1000;

export function traceStats(dbPath: string, id: string): TraceStats {
  return withTrace(dbPath, id, ({ db, trace }) => {
    const byKind = new Map<string, number>();
    const byCache = new Map<string, number>();
    const byDev = new Map<string, number>();
    const invs = new Map<string, number>();
    const opaque = new Map<string, number>();
    const findings = new Map<string, number>();
    const faults = new Map<string, TraceStats['faults'][number]>();
    const bounces = new Map<number, { n: number; bytes: bigint; sizes: Map<string, number> }>();
    const markers: TraceStats['markers'] = [];
    const tlbUpdates = new Map<string, number>();
    const tlbDev = new Map<string, number>();
    let tlbMisses = 0;
    let tlbInvs = 0;
    let maps = 0;
    let unmaps = 0;
    let mapped = 0n;
    let translations = 0;
    let nb = 0;
    let bbytes = 0n;
    let events = 0;
    const live = new LiveMappings();
    let judged = 0;
    let inside = 0;
    let guest = false;
    const blocked = new Map<string, number>();
    const notes: string[] = [];
    for (const c of readChunks(db, trace)) {
      let off = 0;
      for (let i = 0; i < c.n; i++) {
        const ev = decodeAt(c.data, off, c.seq0 + i);
        off += sizeAt(c.data, off);
        events++;
        inc(byKind, ev.kind);
        switch (ev.kind) {
          case 'iommu.map':
            maps++;
            mapped += ev.size;
            if (ev.actor === 'cpu0') guest = true;
            live.apply(ev);
            break;
          case 'iommu.unmap':
            unmaps++;
            live.apply(ev);
            break;
          case 'iommu.translate': {
            translations++;
            inc(byCache, ev.cache);
            inc(byDev, bdf(ev.dev));
            if (ev.cache === 'fault') inc(blocked, bdf(ev.dev));
            const r = guest ? live.judge(ev) : null;
            if (r !== null) {
              judged++;
              if (r) inside++;
            }
            break;
          }
          case 'iommu.inv':
            inc(invs, ev.gran);
            break;
          case 'iotlb.miss':
            tlbMisses++;
            inc(tlbDev, bdf(ev.dev));
            break;
          case 'iotlb.update':
            inc(tlbUpdates, ev.result);
            break;
          case 'iotlb.invalidate':
            tlbInvs++;
            break;
          case 'iommu.fault': {
            const key = `${ev.dev}:${ev.reason}:${ev.write}`;
            const f = faults.get(key);
            if (f) f.count++;
            else faults.set(key, { device: bdf(ev.dev), reason: ev.reason, write: !!ev.write, count: 1, firstSeq: ev.seq, firstIova: hex(ev.iova) });
            break;
          }
          case 'swiotlb.bounce': {
            nb++;
            bbytes += BigInt(ev.size);
            let d = bounces.get(ev.dev);
            if (!d) bounces.set(ev.dev, (d = { n: 0, bytes: 0n, sizes: new Map() }));
            d.n++;
            d.bytes += BigInt(ev.size);
            inc(d.sizes, String(ev.size));
            break;
          }
          case 'marker':
            if (markers.length < MAX_MARKERS) markers.push({ seq: ev.seq, side: ev.side, n: ev.n, name: ev.name });
            if (ev.name === 'guest-log-cut-off') notes.push(`the guest log was cut off: from #${ev.seq} on, host events are not judged against the guest's mappings`);
            if (ev.name === 'end-of-host-log') notes.push(`the host log ends at #${ev.seq}: guest unmaps after it are not judged`);
            break;
          case 'opaque':
            inc(opaque, `${ev.side}:${ev.event}`);
            break;
          case 'finding':
            inc(findings, ev.cls);
            break;
          default:
            break;
        }
      }
    }
    return {
      trace: trace.id,
      name: trace.name,
      source: trace.source,
      events,
      complete: !!trace.complete,
      byKind: sorted(byKind),
      iommu: {
        maps,
        unmaps,
        mappedBytes: hex(mapped),
        translations,
        translationsByCache: sorted(byCache),
        translationsByDevice: sorted(byDev),
        invalidations: sorted(invs),
      },
      faults: [...faults.values()],
      swiotlb: {
        bounces: nb,
        bytes: hex(bbytes),
        byDevice: [...bounces]
          .sort(([a], [b]) => a - b)
          .map(([dev, d]) => ({
            device: bdf(dev),
            bounces: d.n,
            bytes: hex(d.bytes),
            bySize: Object.fromEntries([...d.sizes].sort(([a], [b]) => Number(a) - Number(b))),
          })),
      },
      deviceIotlb: { misses: tlbMisses, updates: sorted(tlbUpdates), invalidations: tlbInvs, byDevice: sorted(tlbDev) },
      markers,
      order: judged ? { translations: judged, insideLiveMapping: inside, share: Math.round((inside / judged) * 10000) / 10000 } : null,
      blocked: sorted(blocked),
      notes,
      opaqueByEvent: sorted(opaque),
      findingsByClass: sorted(findings),
    };
  });
}
