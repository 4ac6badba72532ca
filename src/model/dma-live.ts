// The live DMA-API mappings of a device, as kernel/dma/debug.c keeps them: by (device, dma address),
// several entries per address allowed (mapping the same page twice is legal), found like
// bucket_find_exact: the entry at that address that best matches size and direction.
import type { MAP_KINDS } from '../events/schema.js';
import { big, bool, type Infer, multimapList, num, obj, str } from './codec.js';
import type { DirName } from './types.js';

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
 * dma address → the entries mapped there. Change it only through liveAdd and liveRemove: it keeps
 * the flat list liveEntries returns until the next change (a cache, not state: never cloned,
 * serialized or hashed).
 */
export class DmaLive extends Map<bigint, DmaMapping[]> {
  flat: readonly [bigint, DmaMapping][] | null = null;
}

export const DMA_LIVE = multimapList('dma', big, DMA_MAPPING, () => new DmaLive());

export function liveAdd(l: DmaLive, dma: bigint, m: DmaMapping): void {
  l.flat = null;
  const a = l.get(dma);
  if (a) a.push(m);
  else l.set(dma, [m]);
}

export function liveFind(l: DmaLive, dma: bigint, size?: number, dir?: DirName): DmaMapping | undefined {
  const a = l.get(dma);
  if (!a) return undefined;
  return a.find((m) => m.size === size && m.dir === dir) ?? a.find((m) => m.size === size) ?? a[0];
}

export function liveRemove(l: DmaLive, dma: bigint, m: DmaMapping): void {
  l.flat = null;
  const a = l.get(dma);
  if (!a) return;
  const i = a.indexOf(m);
  if (i >= 0) a.splice(i, 1);
  if (!a.length) l.delete(dma);
}

/**
 * Every live entry with its address, in insertion order. The coherence checker scans this for every
 * device access, and it changes only with a map or an unmap: the list is built once per change and
 * shared (never modify it). Plain arrays, not a generator: iterating one costs half as much.
 */
export function liveEntries(l: DmaLive): readonly [bigint, DmaMapping][] {
  if (l.flat) return l.flat;
  const list: [bigint, DmaMapping][] = [];
  for (const [dma, a] of l) for (const m of a) list.push([dma, m]);
  if (l instanceof DmaLive && !Object.isFrozen(l)) l.flat = list;
  return list;
}

export function liveCount(l: DmaLive): number {
  let n = 0;
  for (const a of l.values()) n += a.length;
  return n;
}
