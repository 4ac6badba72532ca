// The live DMA-API mappings of a device, as kernel/dma/debug.c keeps them: by (device, dma address),
// several entries per address allowed (mapping the same page twice is legal), found like
// bucket_find_exact: the entry at that address that best matches size and direction.
import type { MAP_KINDS } from '../events/schema.js';
import { big, bool, exactNum, type Infer, multimapList, num, obj, str } from './codec.js';
import { insertAt, removeAt } from './list.js';
import type { DirName } from './types.js';
import { fromNum } from './memory.js';

export const DMA_MAPPING = obj({ __proto__: null,
  phys: big,
  size: num,
  dir: str<DirName>(),
  type: str<(typeof MAP_KINDS)[number]>(),
  seq: num,
  /** dma_mapping_error() was called on it */
  checked: bool,
});
export type DmaMapping = Infer<typeof DMA_MAPPING>;

/**
 * A live entry as the checkers scan it: its dma address, the mapping, and where its dma and phys
 * ranges end (exclusive; a size of 0 counts as one byte, as debug.c's range checks do), so a scan
 * compares bigints without computing (allocating) them per entry; and dma and end as doubles
 * (exactNum: exact in [0, 2^53), else ±Infinity), which a scan for an address below 2^53 compares instead.
 */
export type LiveEntry = readonly [dma: bigint, m: DmaMapping, end: bigint, physEnd: bigint, dmaNum: number, endNum: number];

/**
 * dma address → the entries mapped there. Change it only through liveAdd and liveRemove: once
 * liveEntries has built the flat list, they keep it up to date in place (a cache, not state: never
 * cloned, serialized or hashed).
 */
export class DmaLive extends Map<bigint, DmaMapping[]> {
  flat: LiveEntry[] | null = null;
}

function liveEntry(dma: bigint, m: DmaMapping): LiveEntry {
  const n = fromNum(Math.max(m.size, 1));
  const end = dma + n;
  return [dma, m, end, m.phys + n, exactNum(dma), exactNum(end)];
}

export const DMA_LIVE = multimapList('dma', big, DMA_MAPPING, () => new DmaLive());

export function liveAdd(l: DmaLive, dma: bigint, m: DmaMapping): void {
  const a = l.get(dma);
  // the flat list in the map's order: after the address's last entry, or a new address at the end
  const flat = l.flat;
  if (flat) {
    if (a) insertAt(flat, flat.findIndex((e) => e[1] === a[a.length - 1]) + 1, liveEntry(dma, m));
    else flat.push(liveEntry(dma, m));
  }
  if (a) a.push(m);
  else l.set(dma, [m]);
}

export function liveFind(l: DmaLive, dma: bigint, size?: number, dir?: DirName): DmaMapping | undefined {
  const a = l.get(dma);
  if (!a) return undefined;
  return a.find((m) => m.size === size && m.dir === dir) ?? a.find((m) => m.size === size) ?? a[0];
}

export function liveRemove(l: DmaLive, dma: bigint, m: DmaMapping): void {
  const a = l.get(dma);
  if (!a) return;
  const i = a.indexOf(m);
  if (i < 0) return;
  removeAt(a, i);
  if (!a.length) l.delete(dma);
  const flat = l.flat;
  if (flat) {
    const j = flat.findIndex((e) => e[1] === m);
    removeAt(flat, j < 0 ? flat.length - 1 : j); // as splice(-1, 1) did
  }
}

/**
 * Every live entry with its address, in insertion order. The coherence checker scans this for every
 * device access, and it changes only with a map or an unmap: the list is built once, then kept up to
 * date by liveAdd/liveRemove (one entry each, instead of a new list per change), and shared (never
 * modify it, nor hold it across an event). Plain arrays, not a generator: iterating one costs half as much.
 */
export function liveEntries(l: DmaLive): readonly LiveEntry[] {
  if (l.flat) return l.flat;
  const list: LiveEntry[] = [];
  for (const [dma, a] of l) for (const m of a) list.push(liveEntry(dma, m));
  if (l instanceof DmaLive && !Object.isFrozen(l)) l.flat = list;
  return list;
}

export function liveCount(l: DmaLive): number {
  let n = 0;
  for (const a of l.values()) n += a.length;
  return n;
}
