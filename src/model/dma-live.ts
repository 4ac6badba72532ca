// The live DMA-API mappings of a device, as kernel/dma/debug.c keeps them: by (device, dma address),
// several entries per address allowed (mapping the same page twice is legal), found like
// bucket_find_exact: the entry at that address that best matches size and direction.
import type { DirName } from './types.js';
import type { DmaMapping } from './world.js';

export type DmaLive = Map<bigint, DmaMapping[]>;

export function liveAdd(l: DmaLive, dma: bigint, m: DmaMapping): void {
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
  const a = l.get(dma);
  if (!a) return;
  const i = a.indexOf(m);
  if (i >= 0) a.splice(i, 1);
  if (!a.length) l.delete(dma);
}

export function* liveEntries(l: DmaLive): Generator<[bigint, DmaMapping]> {
  for (const [dma, a] of l) for (const m of a) yield [dma, m];
}

export function liveCount(l: DmaLive): number {
  let n = 0;
  for (const a of l.values()) n += a.length;
  return n;
}
