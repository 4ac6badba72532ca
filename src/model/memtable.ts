// The vhost memory table (VHOST_SET_MEM_TABLE): GPA ranges and the HVA where the VMM mapped them.
// On the direct path vhost translates desc.addr through this table; in IOTLB mode the VMM uses it
// to turn the vIOMMU's GPA into the HVA it puts in an UPDATE (vhost_memory_region_lookup).
export interface Region {
  gpa: bigint;
  size: bigint;
  hva: bigint;
}

export function gpaToHva(regions: readonly Region[], gpa: bigint): { hva: bigint; left: bigint } | null {
  for (const r of regions) if (gpa >= r.gpa && gpa - r.gpa < r.size) return { hva: r.hva + (gpa - r.gpa), left: r.size - (gpa - r.gpa) };
  return null;
}

export function hvaToGpa(regions: readonly Region[], hva: bigint): bigint | null {
  for (const r of regions) if (hva >= r.hva && hva - r.hva < r.size) return r.gpa + (hva - r.hva);
  return null;
}
