// The vhost memory table (VHOST_SET_MEM_TABLE): GPA ranges and the HVA where the VMM mapped them.
// On the direct path vhost translates desc.addr through this table; in IOTLB mode the VMM uses it
// to turn the vIOMMU's GPA into the HVA it puts in an UPDATE (vhost_memory_region_lookup).
import { big, derived, exactNum, type Infer, obj } from './codec.js';

export const REGION = obj({ __proto__: null,
  gpa: big,
  size: big,
  hva: big,
  // gpa, size and hva as doubles (exactNum: exact in [0, 2^53), else ±Infinity), derived, never in the
  // plain form: the check of every device access through the IOTLB maps its HVA back to a GPA here
  gpaNum: derived('gpa', exactNum),
  sizeNum: derived('size', exactNum),
  hvaNum: derived('hva', exactNum),
});
export type Region = Infer<typeof REGION>;

/** A memory-table region (VHOST_SET_MEM_TABLE's vhost_memory_region), with its derived fields. */
export function region(gpa: bigint, size: bigint, hva: bigint): Region {
  return { gpa, size, hva, gpaNum: exactNum(gpa), sizeNum: exactNum(size), hvaNum: exactNum(hva) };
}

// Every device access goes through one of these: the offset into a region is computed once, and
// only for a region that starts at or below the address (a bigint difference allocates).
export function gpaToHva(regions: readonly Region[], gpa: bigint): { hva: bigint; left: bigint } | null {
  for (const r of regions) {
    if (gpa < r.gpa) continue;
    const off = gpa - r.gpa;
    if (off < r.size) return { hva: r.hva + off, left: r.size - off };
  }
  return null;
}

/** gpaToHva's HVA alone (no result object: the device's translation asks this on every access). */
export function hvaOf(regions: readonly Region[], gpa: bigint): bigint | null {
  for (let i = 0; i < regions.length; i++) {
    const r = regions[i]!;
    if (gpa < r.gpa) continue;
    const off = gpa - r.gpa;
    if (off < r.size) return r.hva + off;
  }
  return null;
}

export function hvaToGpa(regions: readonly Region[], hva: bigint): bigint | null {
  for (const r of regions) {
    if (hva < r.hva) continue;
    const off = hva - r.hva;
    if (off < r.size) return r.gpa + off;
  }
  return null;
}
