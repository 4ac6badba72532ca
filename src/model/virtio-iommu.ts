// virtio-iommu (virtio 1.2 §5.13; QEMU hw/virtio/virtio-iommu.c): endpoints attached to domains, and
// per domain byte-granular mappings [start, end] (inclusive) → phys with READ/WRITE/MMIO flags. The
// page-table vIOMMUs (viommu.ts) stay page-granular; these mappings are exactly what the requests
// said: the spec's own example maps [0, 4] and [5, 9].
//
// Requests and their status (VIRTIO_IOMMU_S_*), as QEMU's handlers decide them:
// - ATTACH (virtio_iommu_attach): an endpoint already in another domain leaves it first; a new domain
//   is created; a domain whose bypass flag differs → S_INVAL.
// - DETACH (virtio_iommu_detach): unknown endpoint → S_NOENT; not in that domain → S_INVAL; a domain
//   left without endpoints is destroyed (with its mappings).
// - MAP (virtio_iommu_map): unknown flags → S_INVAL; unknown domain → S_NOENT; bypass domain → S_INVAL;
//   any overlap with an existing mapping → S_INVAL (the interval tree treats overlap as equal).
// - UNMAP (virtio_iommu_unmap): unknown domain → S_NOENT; bypass → S_INVAL; every mapping overlapping
//   the range must lie inside it, else S_RANGE ("the UNMAP request would split the mapping": the spec
//   says the device SHOULD NOT remove any mapping then; QEMU removes the covered mappings its tree
//   lookup happens to find first, and traces each removal as virtio_iommu_unmap_done — an import
//   takes the removals from those lines, one unmap event per mapping really removed). Unmapping a
//   range with no mapping in it is S_OK.
export const VIOMMU_STATUS = ['S_OK', 'S_IOERR', 'S_UNSUPP', 'S_DEVERR', 'S_INVAL', 'S_RANGE', 'S_NOENT', 'S_FAULT', 'S_NOMEM'] as const;
export type ViommuStatus = (typeof VIOMMU_STATUS)[number];

export const VIRTIO_IOMMU_MAP_F_READ = 1;
export const VIRTIO_IOMMU_MAP_F_WRITE = 2;
export const VIRTIO_IOMMU_MAP_F_MMIO = 4;
const MAP_F_MASK = 7;

export interface VMapping {
  start: bigint;
  /** inclusive */
  end: bigint;
  phys: bigint;
  flags: number;
  /** seq of the viommu.map that made it */
  seq: number;
}

export interface VDomain {
  id: number;
  bypass: boolean;
  /** sorted by start; never overlapping */
  mappings: VMapping[];
}

export interface VirtioIommuState {
  /** by domain id, in creation order */
  domains: Map<number, VDomain>;
  /** endpoint id (the PCI requester id) → domain id */
  endpoints: Map<number, number>;
}

export const emptyVirtioIommu = (): VirtioIommuState => ({ domains: new Map(), endpoints: new Map() });

const overlaps = (m: VMapping, start: bigint, end: bigint) => m.start <= end && start <= m.end;

export function attachStatus(s: VirtioIommuState, _ep: number, domain: number, bypass: boolean): ViommuStatus {
  const d = s.domains.get(domain);
  if (d && d.bypass !== bypass) return 'S_INVAL';
  return 'S_OK';
}

export function detachStatus(s: VirtioIommuState, ep: number, domain: number): ViommuStatus {
  const at = s.endpoints.get(ep);
  if (at === undefined) return 'S_NOENT';
  if (at !== domain) return 'S_INVAL';
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
  if (old !== undefined && old !== domain) leave(s, ep, old);
  if (!s.domains.has(domain)) s.domains.set(domain, { id: domain, bypass, mappings: [] });
  s.endpoints.set(ep, domain);
}

export function applyDetach(s: VirtioIommuState, ep: number, domain: number): void {
  leave(s, ep, domain);
}

/** virtio_iommu_detach_endpoint_from_domain; the last endpoint out destroys the domain. */
function leave(s: VirtioIommuState, ep: number, domain: number): void {
  s.endpoints.delete(ep);
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
  if (id === undefined) return 'detached';
  const d = s.domains.get(id)!;
  if (d.bypass) return 'bypass';
  const m = d.mappings.find((x) => x.start <= addr && addr <= x.end);
  if (!m) return 'unmapped';
  if (!(m.flags & (write ? VIRTIO_IOMMU_MAP_F_WRITE : VIRTIO_IOMMU_MAP_F_READ))) return 'perm';
  return { phys: m.phys + (addr - m.start), m };
}

// ---- checkpoints -----------------------------------------------------------------------------------

const h = (v: bigint) => '0x' + v.toString(16);

export function virtioIommuToPlain(s: VirtioIommuState) {
  return {
    domains: [...s.domains.values()].map((d) => ({
      id: d.id,
      bypass: d.bypass,
      mappings: d.mappings.map((m) => ({ start: h(m.start), end: h(m.end), phys: h(m.phys), flags: m.flags, seq: m.seq })),
    })),
    endpoints: [...s.endpoints].map(([ep, domain]) => ({ ep, domain })),
  };
}

export function virtioIommuFromPlain(p: ReturnType<typeof virtioIommuToPlain> | undefined): VirtioIommuState {
  if (!p) return emptyVirtioIommu();
  return {
    domains: new Map(
      p.domains.map((d) => [
        d.id,
        { id: d.id, bypass: d.bypass, mappings: d.mappings.map((m) => ({ start: BigInt(m.start), end: BigInt(m.end), phys: BigInt(m.phys), flags: m.flags, seq: m.seq })) },
      ]),
    ),
    endpoints: new Map(p.endpoints.map((e) => [e.ep, e.domain])),
  };
}

export function cloneVirtioIommu(s: VirtioIommuState): VirtioIommuState {
  return {
    domains: new Map([...s.domains].map(([k, d]) => [k, { ...d, mappings: d.mappings.map((m) => ({ ...m })) }])),
    endpoints: new Map(s.endpoints),
  };
}
