// swiotlb (kernel/dma/swiotlb.c, ~v6.0): a pool of 2 KiB slots below 4 GiB that streaming DMA is
// bounced through when the device cannot reach the buffer (dma_mask) or every mapping must go
// through shared memory (protected guests: SWIOTLB_FORCE). A mapping takes contiguous slots within
// one IO_TLB_SEGSIZE segment; tlb_addr keeps the buffer's low bits under min_align_mask (1f221a0d0dbf).
// `init` marks which bytes of the slots hold this mapping's data (copied in at map, or written by
// the device): copying back a byte that is not is the CVE-2022-0854 leak of a previous user's data.
import { big, bool, bytes, type Infer, mapList, num, obj } from './codec.js';

export const IO_TLB_SHIFT = 11;
export const IO_TLB_SIZE = 2048;
export const IO_TLB_SEGSIZE = 128;
export const POOL_GPA = 0x3c00_0000n;
export const POOL_SLOTS = 1024; // 2 MiB: smaller than the 64 MiB default, so exhaustion is reachable

export const SWIOTLB_MAPPING = obj({ __proto__: null,
  dev: num,
  orig: big,
  /** alloc_size: what was mapped (swiotlb validates later unmap/sync sizes against it, daf9514fd5eb) */
  size: num,
  nslots: num,
  /** tlb_addr - slot_addr(index): the preserved low bits of orig */
  offset: num,
  /** the device wrote into the slots since the last copy back to orig */
  dirty: bool,
  init: bytes,
});
export type SwiotlbMapping = Infer<typeof SWIOTLB_MAPPING>;

export const SWIOTLB_STATE = obj({ __proto__: null,
  /** where the next search starts (the area's index hint) */
  next: num,
  /** by first slot index */
  slots: mapList('index', num, SWIOTLB_MAPPING),
});
export type SwiotlbState = Infer<typeof SWIOTLB_STATE>;

export const slotAddr = (i: number) => POOL_GPA + BigInt(i * IO_TLB_SIZE);
export const inPool = (gpa: bigint) => gpa >= POOL_GPA && gpa < POOL_GPA + BigInt(POOL_SLOTS * IO_TLB_SIZE);

/**
 * First fit from the hint, wrapping; never crossing a segment boundary; and with min_align_mask,
 * only slots whose address agrees with orig on the mask bits above the slot size. -1 when full.
 */
export function findSlots(s: SwiotlbState, nslots: number, orig = 0n, minAlignMask = 0, poolSlots = POOL_SLOTS): number {
  const hi = BigInt(minAlignMask & ~(IO_TLB_SIZE - 1));
  if (nslots > IO_TLB_SEGSIZE) return -1;
  const used = new Uint8Array(poolSlots);
  for (const [i, m] of s.slots) used.fill(1, i, Math.min(i + m.nslots, poolSlots));
  for (let k = 0; k < poolSlots; k++) {
    const i = (s.next + k) % poolSlots;
    if (Math.floor(i / IO_TLB_SEGSIZE) !== Math.floor((i + nslots - 1) / IO_TLB_SEGSIZE) || i + nslots > poolSlots) continue;
    if (hi && (slotAddr(i) & hi) !== (orig & hi)) continue;
    let free = true;
    for (let j = i; j < i + nslots && free; j++) if (used[j]) free = false;
    if (free) return i;
  }
  return -1;
}

/** The mapping whose slots contain gpa, with its first slot index. */
export function mappingAt(s: SwiotlbState, gpa: bigint): [number, SwiotlbMapping] | null {
  if (!inPool(gpa)) return null;
  const slot = Number((gpa - POOL_GPA) >> BigInt(IO_TLB_SHIFT));
  for (const [i, m] of s.slots) if (slot >= i && slot < i + m.nslots) return [i, m];
  return null;
}

/** The live mapping bouncing the original buffer that contains gpa. */
export function mappingOfOrig(s: SwiotlbState, dev: number, gpa: bigint, len: number): [number, SwiotlbMapping] | null {
  for (const [i, m] of s.slots) if (m.dev === dev && gpa < m.orig + BigInt(m.size) && m.orig < gpa + BigInt(len)) return [i, m];
  return null;
}
