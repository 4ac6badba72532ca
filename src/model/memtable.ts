// The vhost memory table (VHOST_SET_MEM_TABLE): GPA ranges and the HVA where the VMM mapped them.
// On the direct path vhost translates desc.addr through this table; in IOTLB mode the VMM uses it
// to turn the vIOMMU's GPA into the HVA it puts in an UPDATE (vhost_memory_region_lookup).
import { big, type Infer, obj } from './codec.js';

export const REGION = obj({ __proto__: null, gpa: big, size: big, hva: big });
export type Region = Infer<typeof REGION>;

// Every device access goes through one of these: the offset into a region is computed once.
export function gpaToHva(regions: readonly Region[], gpa: bigint): { hva: bigint; left: bigint } | null {
  for (const r of regions) {
    const off = gpa - r.gpa;
    if (off >= 0n && off < r.size) return { hva: r.hva + off, left: r.size - off };
  }
  return null;
}

export function hvaToGpa(regions: readonly Region[], hva: bigint): bigint | null {
  for (const r of regions) {
    const off = hva - r.hva;
    if (off >= 0n && off < r.size) return r.gpa + off;
  }
  return null;
}
