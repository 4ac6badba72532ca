// virtio-iommu (virtio 1.2 §5.13; QEMU hw/virtio/virtio-iommu.c): endpoints attached to domains, and
// per domain byte-granular mappings [start, end] (inclusive) → phys with READ/WRITE/MMIO flags. The
// page-table vIOMMUs (viommu.ts) stay page-granular; these mappings are exactly what the requests
// said: the spec's own example maps [0, 4] and [5, 9].
//
// Requests and their status (VIRTIO_IOMMU_S_*), as QEMU's handlers decide them:
// - ATTACH (virtio_iommu_attach): an endpoint that is no device behind this IOMMU → S_NOENT
//   (virtio_iommu_get_endpoint); one already in another domain leaves it first, and a domain left
//   without endpoints is destroyed with its mappings; a new domain is created; a domain whose bypass
//   flag differs → S_INVAL.
// - DETACH (virtio_iommu_detach): an endpoint never attached → S_NOENT (QEMU keeps endpoints it has
//   seen); not in that domain (or in none) → S_INVAL; the last endpoint out destroys the domain.
// - MAP (virtio_iommu_map): unknown flags → S_INVAL; unknown domain → S_NOENT; bypass domain → S_INVAL;
//   any overlap with an existing mapping → S_INVAL (the interval tree treats overlap as equal).
// - UNMAP (virtio_iommu_unmap): unknown domain → S_NOENT; bypass → S_INVAL; every mapping overlapping
//   the range must lie inside it, else S_RANGE ("the UNMAP request would split the mapping": the spec
//   says the device SHOULD NOT remove any mapping then; QEMU removes the covered mappings its tree
//   lookup happens to find first, and traces each removal as virtio_iommu_unmap_done — an import
//   takes the removals from those lines, one unmap event per mapping really removed). Unmapping a
//   range with no mapping in it is S_OK.
import { type EventOf, VIOMMU_STATUS } from '../events/schema.js';
import { arr, big, bool, type Infer, mapPairs, mapValues, num, obj } from './codec.js';
import { iommuTranslate, type Translation } from './viommu.js';
import type { DeviceState, World } from './world.js';
export { VIOMMU_STATUS };
export type ViommuStatus = (typeof VIOMMU_STATUS)[number];

export const VIRTIO_IOMMU_MAP_F_READ = 1;
export const VIRTIO_IOMMU_MAP_F_WRITE = 2;
export const VIRTIO_IOMMU_MAP_F_MMIO = 4;
const MAP_F_MASK = 7;

const VMAPPING = obj({ __proto__: null,
  start: big,
  /** inclusive */
  end: big,
  phys: big,
  flags: num,
  /** seq of the viommu.map that made it */
  seq: num,
});
export type VMapping = Infer<typeof VMAPPING>;

const VDOMAIN = obj({ __proto__: null,
  id: num,
  bypass: bool,
  /** sorted by start; never overlapping */
  mappings: arr(VMAPPING),
});
export type VDomain = Infer<typeof VDOMAIN>;

export const VIRTIO_IOMMU = obj({ __proto__: null,
  /** by domain id, in creation order */
  domains: mapValues((d: VDomain) => d.id, VDOMAIN),
  /** endpoint id (the PCI requester id) → domain id, or DETACHED for an endpoint seen but in no domain */
  endpoints: mapPairs('ep', num, 'domain', num),
});
export type VirtioIommuState = Infer<typeof VIRTIO_IOMMU>;

/** an endpoint QEMU knows (it was attached once) that is in no domain now */
export const DETACHED = -1;

export const emptyVirtioIommu = (): VirtioIommuState => ({ domains: new Map(), endpoints: new Map() });

const overlaps = (m: VMapping, start: bigint, end: bigint) => m.start <= end && start <= m.end;

/** `exists`: ep is a device behind this IOMMU (virtio_iommu_get_endpoint finds its memory region). */
export function attachStatus(s: VirtioIommuState, exists: boolean, domain: number, bypass: boolean): ViommuStatus {
  if (!exists) return 'S_NOENT';
  const d = s.domains.get(domain);
  if (d && d.bypass !== bypass) return 'S_INVAL';
  return 'S_OK';
}

export function detachStatus(s: VirtioIommuState, ep: number, domain: number): ViommuStatus {
  const at = s.endpoints.get(ep);
  if (at === undefined) return 'S_NOENT';
  if (at === DETACHED || at !== domain) return 'S_INVAL';
  return 'S_OK';
}

export function mapStatus(s: VirtioIommuState, domain: number, start: bigint, end: bigint, flags: number): ViommuStatus {
  if (flags & ~MAP_F_MASK) return 'S_INVAL';
  const d = s.domains.get(domain);
  if (!d) return 'S_NOENT';
  if (d.bypass || end < start) return 'S_INVAL';
  if (d.mappings.some((m) => overlaps(m, start, end))) return 'S_INVAL';
  return 'S_OK';
}

export function unmapStatus(s: VirtioIommuState, domain: number, start: bigint, end: bigint): ViommuStatus {
  const d = s.domains.get(domain);
  if (!d) return 'S_NOENT';
  if (d.bypass) return 'S_INVAL';
  for (const m of d.mappings) if (overlaps(m, start, end) && (m.start < start || m.end > end)) return 'S_RANGE';
  return 'S_OK';
}

/** The mappings an UNMAP of [start, end] removes when it succeeds, in address order. */
export function unmapTargets(s: VirtioIommuState, domain: number, start: bigint, end: bigint): VMapping[] {
  return s.domains.get(domain)?.mappings.filter((m) => overlaps(m, start, end)) ?? [];
}

// ---- world rules (the request succeeded: status S_OK; any other status changes nothing) ----------

export function applyAttach(s: VirtioIommuState, ep: number, domain: number, bypass: boolean): void {
  const old = s.endpoints.get(ep);
  if (old !== undefined && old !== DETACHED && old !== domain) leave(s, ep, old);
  if (!s.domains.has(domain)) s.domains.set(domain, { id: domain, bypass, mappings: [] });
  s.endpoints.set(ep, domain);
}

export function applyDetach(s: VirtioIommuState, ep: number, domain: number): void {
  leave(s, ep, domain);
}

/** virtio_iommu_detach_endpoint_from_domain; the last endpoint out destroys the domain. */
function leave(s: VirtioIommuState, ep: number, domain: number): void {
  s.endpoints.set(ep, DETACHED);
  for (const d of s.endpoints.values()) if (d === domain) return;
  s.domains.delete(domain);
}

export function applyMap(s: VirtioIommuState, domain: number, m: VMapping): void {
  const d = s.domains.get(domain);
  if (!d) return;
  let at = 0;
  while (at < d.mappings.length && d.mappings[at]!.start < m.start) at++;
  d.mappings.splice(at, 0, m);
}

/** Removes every mapping inside [start, end] (an import's unmap_done names exactly one). */
export function applyUnmap(s: VirtioIommuState, domain: number, start: bigint, end: bigint): void {
  const d = s.domains.get(domain);
  if (d) d.mappings = d.mappings.filter((m) => !(m.start >= start && m.end <= end));
}

/**
 * virtio_iommu_translate: the mapping of endpoint ep's domain holding addr, and the address it
 * gives, or why not ('unmapped': VIRTIO_IOMMU_FAULT_R_MAPPING; 'perm': _R_PERMISSION; 'bypass').
 */
export function viommuTranslate(s: VirtioIommuState, ep: number, addr: bigint, write: boolean): { phys: bigint; m: VMapping } | 'unmapped' | 'perm' | 'bypass' | 'detached' {
  const id = s.endpoints.get(ep);
  if (id === undefined || id === DETACHED) return 'detached';
  const d = s.domains.get(id)!;
  if (d.bypass) return 'bypass';
  const m = d.mappings.find((x) => x.start <= addr && addr <= x.end);
  if (!m) return 'unmapped';
  if (!(m.flags & (write ? VIRTIO_IOMMU_MAP_F_WRITE : VIRTIO_IOMMU_MAP_F_READ))) return 'perm';
  return { phys: m.phys + (addr - m.start), m };
}

// ---- what the VMM and devices see -----------------------------------------------------------------

const PERM_OF_FLAGS = ['NONE', 'RO', 'WO', 'RW'] as const;

/**
 * The IOTLB entry QEMU's virtio_iommu_translate gives for addr, as a page-table vIOMMU's
 * translation (viommu.ts Translation): the 4 KiB page around addr (addr_mask is the granule: the
 * page_size_mask's smallest page) translated through the mapping holding addr. undefined: ep is not
 * a virtio-iommu endpoint (the page tables decide); null: no translation (a fault).
 */
export function endpointTranslate(s: VirtioIommuState | null, ep: number, iova: bigint): EndpointTranslation | null | undefined {
  if (!s?.endpoints.size) return undefined;
  const id = s.endpoints.get(ep);
  if (id === undefined) return undefined;
  if (id === DETACHED) return null; // in no domain: QEMU reports VIRTIO_IOMMU_FAULT_R_DOMAIN (boot-bypass off)
  const d = s.domains.get(id)!;
  if (d.bypass) {
    const page = iova & ~0xfffn;
    return { gpa: iova, pageIova: page, pageGpa: page, perm: 'RW', seq: 0 }; // bypass: identity
  }
  const m = d.mappings.find((x) => x.start <= iova && iova <= x.end);
  if (!m || !(m.flags & 3)) return null;
  const gpa = m.phys + (iova - m.start);
  return { gpa, pageIova: iova & ~0xfffn, pageGpa: gpa & ~0xfffn, perm: PERM_OF_FLAGS[m.flags & 3]!, seq: m.seq, left: m.end - iova + 1n };
}

/** A translation, and for a virtio-iommu mapping the bytes left in it from the address (mappings are byte-granular). */
export interface EndpointTranslation {
  gpa: bigint;
  pageIova: bigint;
  pageGpa: bigint;
  perm: 'NONE' | 'RO' | 'WO' | 'RW';
  seq: number;
  left?: bigint;
}

// ---- world rules --------------------------------------------------------------------------------

/** The world's virtio-iommu state, created by its first request. */
const stateOf = (w: World): VirtioIommuState => (w.virtioIommu ??= emptyVirtioIommu());

export function ruleViommuAttach(w: World, ev: EventOf<'viommu.attach'>): void {
  if (ev.status === 'S_OK') applyAttach(stateOf(w), ev.ep, ev.domain, !!ev.bypass);
}

export function ruleViommuDetach(w: World, ev: EventOf<'viommu.detach'>): void {
  if (ev.status === 'S_OK') applyDetach(stateOf(w), ev.ep, ev.domain);
}

export function ruleViommuMap(w: World, ev: EventOf<'viommu.map'>): void {
  if (ev.status === 'S_OK') applyMap(stateOf(w), ev.domain, { start: ev.start, end: ev.end, phys: ev.phys, flags: ev.flags, seq: ev.seq });
}

/**
 * A successful UNMAP removes the mappings inside the range; for each one QEMU notifies every endpoint
 * of the domain (virtio_iommu_notify_unmap), and for a vhost device in IOTLB mode the VMM then owes
 * an INVALIDATE of that mapping's range (vhost_iommu_unmap_notify), as for a page-table vIOMMU.
 */
export function ruleViommuUnmap(w: World, ev: EventOf<'viommu.unmap'>): void {
  if (ev.status !== 'S_OK') return;
  const s = stateOf(w);
  for (const m of unmapTargets(s, ev.domain, ev.start, ev.end)) {
    if (m.start < ev.start || m.end > ev.end) continue;
    for (const [ep, dom] of s.endpoints) {
      const d = w.devices.get(ep);
      if (dom === ev.domain && d && d.translate === 'iova' && d.backend.startsWith('vhost'))
        w.vmm.invals.push({ dev: ep, iova: m.start, size: m.end - m.start + 1n, req: ev.seq, due: w.passes });
    }
  }
  applyUnmap(s, ev.domain, ev.start, ev.end);
}

/** The guest IOMMU's translation of iova for device d: its virtio-iommu domain if it is an endpoint, else the page tables. */
export function guestTranslate(w: World, d: DeviceState, iova: bigint): (Translation & { left?: bigint }) | null {
  const t = endpointTranslate(w.virtioIommu, d.dev, iova);
  return t === undefined ? iommuTranslate(d.iommu, iova) : t;
}
