// The live DMA-API mappings of a device, as kernel/dma/debug.c keeps them: by (device, dma address),
// several entries per address allowed (mapping the same page twice is legal), found like
// bucket_find_exact: the entry at that address that best matches size and direction.
import type { DirName } from './types.js';
import type { DmaMapping } from './world.js';

/** Change it only through liveAdd and liveRemove (liveEntries keeps a flat list per map until the next change). */
export type DmaLive = Map<bigint, DmaMapping[]>;

// Bumped by every change to any live list: a flat list kept for a map is current while it matches.
let changes = 0;
const flat = new WeakMap<DmaLive, { at: number; size: number; list: readonly [bigint, DmaMapping][] }>();

export function liveAdd(l: DmaLive, dma: bigint, m: DmaMapping): void {
  changes++;
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
  changes++;
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
  const kept = flat.get(l);
  if (kept && kept.at === changes && kept.size === l.size) return kept.list;
  const list: [bigint, DmaMapping][] = [];
  for (const [dma, a] of l) for (const m of a) list.push([dma, m]);
  flat.set(l, { at: changes, size: l.size, list });
  return list;
}

export function liveCount(l: DmaLive): number {
  let n = 0;
  for (const a of l.values()) n += a.length;
  return n;
}
