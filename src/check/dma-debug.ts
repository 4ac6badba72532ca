// The DMA-API debug checks of kernel/dma/debug.c (CONFIG_DMA_API_DEBUG), keyed like its hash by
// (device, dma address). Messages carry the kernel's wording. Not modelled: the memory-class checks
// (stack, kernel text/rodata, vmalloc) and the sg segment limits, since the simulated guest maps only
// page-backed buffers, and the sg entry-count checks (virtio maps each sg entry with dma_map_page).
import type { EventOf, NewEvent } from '../events/schema.js';
import { DMA_MAPPING_ERROR } from '../model/types.js';
import type { DeviceState, DmaMapping, World } from '../model/world.js';
import { finding, hex, NONE } from './finding.js';
import { liveEntries, liveFind } from '../model/dma-live.js';

const CACHELINE = 64n;

/** Before a dma.unmap is applied: compare it with the entry it frees (check_unmap). */
export function checkUnmap(w: World, ev: EventOf<'dma.unmap'>): NewEvent[] {
  const d = w.devices.get(ev.dev);
  if (!d) return [];
  const m = liveFind(d.dmaLive, ev.dma, ev.size, ev.dir);
  // the common case, every unmap of a simulated run: it frees what it mapped (no strings built)
  if (m && m.size === ev.size && typeOf(m) === typeOf(ev) && m.dir === ev.dir && (m.checked || m.type === 'coherent')) return NONE;
  const at = `[device address=${hex(ev.dma)}] [size=${ev.size} bytes]`;
  if (!m) {
    if (ev.dma === DMA_MAPPING_ERROR) return [finding(ev.seq, 'dma-unmap-invalid', `DMA-API: device driver tries to free an invalid DMA memory address`, [ev.seq], ev.dma)];
    return [finding(ev.seq, 'dma-unmap-unknown', `DMA-API: device driver tries to free DMA memory it has not allocated ${at}`, [ev.seq], ev.dma)];
  }
  const out: NewEvent[] = [];
  const chain = [m.seq, ev.seq];
  if (m.size !== ev.size)
    out.push(finding(ev.seq, 'dma-unmap-size', `DMA-API: device driver frees DMA memory with different size [device address=${hex(ev.dma)}] [map size=${m.size} bytes] [unmap size=${ev.size} bytes]`, chain, ev.dma));
  if (typeOf(m) !== typeOf(ev))
    out.push(finding(ev.seq, 'dma-unmap-type', `DMA-API: device driver frees DMA memory with wrong function [mapped as ${typeOf(m)}] [unmapped as ${typeOf(ev)}]`, chain, ev.dma));
  if (m.dir !== ev.dir)
    out.push(finding(ev.seq, 'dma-unmap-dir', `DMA-API: device driver frees DMA memory with different direction [mapped with ${m.dir}] [unmapped with ${ev.dir}]`, chain, ev.dma));
  if (!m.checked && m.type !== 'coherent')
    out.push(finding(ev.seq, 'dma-map-unchecked', `DMA-API: device driver failed to check map error${at} [mapped as ${typeOf(m)}]`, chain, ev.dma));
  return out;
}

// dma_map_single and dma_map_page are both "single" to debug.c's type check; coherent and sg differ.
const typeOf = (m: { type: DmaMapping['type'] }) => (m.type === 'page' || m.type === 'single' ? 'single' : m.type);

/** check_sync: the range must lie inside one live mapping, in a compatible direction. */
export function checkSync(w: World, ev: EventOf<'dma.sync'>): NewEvent[] {
  const d = w.devices.get(ev.dev);
  if (!d) return [];
  const hit = containing(d, ev.dma);
  if (!hit) return [finding(ev.seq, 'dma-sync-unknown', `DMA-API: device driver tries to sync DMA memory it has not allocated [device address=${hex(ev.dma)}] [size=${ev.size} bytes]`, [ev.seq], ev.dma)];
  const [start, m] = hit;
  const chain = [m.seq, ev.seq];
  const out: NewEvent[] = [];
  if (ev.dma - start + BigInt(ev.size) > BigInt(m.size))
    out.push(finding(ev.seq, 'dma-sync-range', `DMA-API: device driver syncs DMA memory outside allocated range [device address=${hex(ev.dma)}] [allocation size=${m.size} bytes] [sync offset+size=${Number(ev.dma - start) + ev.size}]`, chain, ev.dma));
  if (m.dir === 'BIDIRECTIONAL') return out;
  if (m.dir !== ev.dir)
    out.push(finding(ev.seq, 'dma-sync-dir', `DMA-API: device driver syncs DMA memory with different direction [mapped with ${m.dir}] [synced with ${ev.dir}]`, chain, ev.dma));
  if (ev.forCpu && m.dir !== 'FROM_DEVICE' && ev.dir !== 'TO_DEVICE')
    out.push(finding(ev.seq, 'dma-sync-cpu-readonly', `DMA-API: device driver syncs device read-only DMA memory for cpu [device address=${hex(ev.dma)}]`, chain, ev.dma));
  if (!ev.forCpu && m.dir !== 'TO_DEVICE' && ev.dir !== 'FROM_DEVICE')
    out.push(finding(ev.seq, 'dma-sync-device-writeonly', `DMA-API: device driver syncs device write-only DMA memory to device [device address=${hex(ev.dma)}]`, chain, ev.dma));
  return out;
}

function containing(d: DeviceState, dma: bigint): [bigint, DmaMapping] | null {
  for (const [start, m, end] of liveEntries(d.dmaLive)) if (dma >= start && dma < end) return [start, m];
  return null;
}

/**
 * Cacheline tracking (active_cacheline_insert → -EEXIST): two live mappings of the same cacheline
 * the CPU may write back over. Not for DMA_TO_DEVICE (and, in the kernel, not with SKIP_CPU_SYNC).
 */
export function checkOverlap(w: World, ev: EventOf<'dma.map'>): NewEvent[] {
  if (ev.dir === 'TO_DEVICE' || ev.type === 'coherent') return NONE;
  // cachelines [lo, hi] and [mlo, mhi] overlap iff the other mapping starts before the end of line hi
  // and ends after the start of line lo: compared in bytes, with no arithmetic per live entry
  const loStart = (ev.phys / CACHELINE) * CACHELINE;
  const hiEnd = ((ev.phys + BigInt(Math.max(ev.size, 1)) - 1n) / CACHELINE + 1n) * CACHELINE;
  for (const d of w.devices.values()) {
    const live = liveEntries(d.dmaLive);
    for (let i = 0; i < live.length; i++) {
      const e = live[i]!;
      const m = e[1];
      if (m.dir === 'TO_DEVICE' || m.type === 'coherent') continue;
      if (m.phys < hiEnd && loStart < e[3])
        return [finding(ev.seq, 'dma-overlap', `DMA-API: cacheline tracking EEXIST, overlapping mappings aren't supported [phys ${hex(ev.phys)}+${ev.size} overlaps ${hex(m.phys)}+${m.size} mapped at #${m.seq}]`, [m.seq, ev.seq], ev.dma, ev.phys)];
    }
  }
  return NONE;
}

/** BUS_NOTIFY_UNBOUND_DRIVER with live entries. */
export function checkTeardown(w: World, ev: EventOf<'dev.teardown'>): NewEvent[] {
  const d = w.devices.get(ev.dev);
  if (!d || d.dmaLive.size === 0) return [];
  const all = [...liveEntries(d.dmaLive)];
  const [dma, m] = all[0]!;
  return [
    finding(
      ev.seq,
      'dma-leak',
      `DMA-API: device driver has pending DMA allocations while released from device [count=${all.length}] One of leaked entries details: [device address=${hex(dma)}] [size=${m.size} bytes] [mapped with ${m.dir}] [mapped as ${typeOf(m)}]`,
      [...all.map(([, x]) => x.seq).slice(0, 8), ev.seq],
      dma,
      m.phys,
    ),
  ];
}
