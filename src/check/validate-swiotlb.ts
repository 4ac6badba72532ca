// The model validates the bounce copies a trace records (swiotlb-copy-mismatch), against
// kernel/dma/swiotlb.c:
// - swiotlb_sync_single_for_device copies orig→tlb only for TO_DEVICE and BIDIRECTIONAL; for
//   FROM_DEVICE it is a no-op. (aa6f8dcbab47 "swiotlb: rework "fix info leak with DMA_FROM_DEVICE""
//   made it copy unconditionally; that broke ath9k, which syncs a FROM_DEVICE buffer back to the
//   device while the device may still write it, and Linus reverted it in bddac7c1e02b.)
// - swiotlb_sync_single_for_cpu copies tlb→orig only for FROM_DEVICE and BIDIRECTIONAL;
// - swiotlb_tbl_unmap_single copies tlb→orig for FROM_DEVICE and BIDIRECTIONAL (without
//   DMA_ATTR_SKIP_CPU_SYNC, which the traces do not carry);
// - swiotlb_tbl_map_single copies orig→tlb for every direction since ddbd89deb7d3 (CVE-2022-0854;
//   the revert kept it, and the current code copies unconditionally "to preserve the original's data
//   if the device does a partial write"), only for TO_DEVICE/BIDIRECTIONAL before it (variant
//   swiotlbMapCopy = dir).
// Only mappings whose slots the trace allocated (swiotlb.slots) are judged: an imported guest log
// names the buffer of a bounce, not its slot.
import type { EventOf, NewEvent } from '../events/schema.js';
import { mappingAt, slotAddr, type SwiotlbCall } from '../model/swiotlb.js';
import type { World } from '../model/world.js';
import { finding, hex, NONE } from './finding.js';

const toDevice = (dir: string) => dir === 'TO_DEVICE' || dir === 'BIDIRECTIONAL';
const fromDevice = (dir: string) => dir === 'FROM_DEVICE' || dir === 'BIDIRECTIONAL';

function callName(c: SwiotlbCall): string {
  if (c.op === 'unmap') return `unmap (${c.dir}) #${c.seq} of bounce address ${hex(c.dma)}`;
  return `dma_sync_single_for_${c.forCpu ? 'cpu' : 'device'}(${c.dir}) #${c.seq} of bounce address ${hex(c.dma)}`;
}

function rule(c: SwiotlbCall): string {
  if (c.op === 'unmap') return 'swiotlb_tbl_unmap_single copies tlb→orig for FROM_DEVICE and BIDIRECTIONAL only';
  if (c.forCpu) return 'swiotlb_sync_single_for_cpu copies tlb→orig for FROM_DEVICE and BIDIRECTIONAL only';
  return 'swiotlb_sync_single_for_device copies orig→tlb for TO_DEVICE and BIDIRECTIONAL only; for FROM_DEVICE it is a no-op (bddac7c1e02b reverted the unconditional copy of aa6f8dcbab47)';
}

/**
 * Judged at the next DMA-API call or slot change after it (dma.sync, dma.unmap, dma.map,
 * swiotlb.slots: a pre-check, the world still holds the call and what it copied; their rules end or
 * replace it). A trace that ends on the call leaves it unjudged.
 */
export function validateSwiotlbCall(w: World): NewEvent[] {
  const c = w.swiotlb.call;
  if (!c) return NONE;
  const wantTo = c.op === 'sync' && !c.forCpu && toDevice(c.dir);
  const wantFrom = c.forCpu && fromDevice(c.dir);
  const out: NewEvent[] = [];
  const say = (what: string, chain: number[]) => out.push(finding(c.seq, 'swiotlb-copy-mismatch', `${callName(c)} ${what}: ${rule(c)}`, chain, c.dma));
  if (wantTo && !c.toTlb) say('copied nothing into the bounce slot, expected orig→tlb', [c.seq]);
  if (!wantTo && c.toTlb) say(`copied orig→tlb at #${c.toTlb}, expected no copy into the slot`, [c.seq, c.toTlb]);
  if (wantFrom && !c.fromTlb) say('copied nothing back from the bounce slot, expected tlb→orig', [c.seq]);
  if (!wantFrom && c.fromTlb) say(`copied tlb→orig at #${c.fromTlb}, expected no copy back`, [c.seq, c.fromTlb]);
  return out;
}

/** Post-check of a dma.map through swiotlb: did the map fill the slot as swiotlb_tbl_map_single does? */
export function validateBounceMap(w: World, ev: EventOf<'dma.map'>): NewEvent[] {
  if (ev.path !== 'swiotlb' || ev.type === 'coherent') return NONE;
  const hit = mappingAt(w.swiotlb, ev.dma);
  if (!hit) return NONE;
  const [index, m] = hit;
  const start = Number(ev.dma - slotAddr(index));
  const end = Math.min(start + ev.size, m.init.length);
  const want = w.variants.swiotlbMapCopy === 'always' || toDevice(ev.dir);
  // the common case, natively: every byte filled (or none, when no copy is due)
  const hole = m.init.indexOf(0, start);
  if (want && (hole < 0 || hole >= end)) return NONE;
  const some = m.init.indexOf(1, start);
  if (!want && (some < 0 || some >= end)) return NONE;
  let filled = 0;
  for (let i = start; i < end; i++) if (m.init[i]) filled++;
  const why = w.variants.swiotlbMapCopy === 'always' ? 'since ddbd89deb7d3 (CVE-2022-0854) swiotlb_tbl_map_single copies orig→tlb for every direction' : 'before ddbd89deb7d3 swiotlb_tbl_map_single copied orig→tlb for TO_DEVICE and BIDIRECTIONAL only';
  if (want && filled < end - start)
    return [finding(ev.seq, 'swiotlb-copy-mismatch', `map (${ev.dir}) #${ev.seq} of ${hex(ev.phys)} to bounce address ${hex(ev.dma)} left ${end - start - filled} of ${ev.size} B of the slot unfilled, expected the orig→tlb copy: ${why}`, [ev.seq], ev.dma, ev.phys)];
  if (!want && filled > 0)
    return [finding(ev.seq, 'swiotlb-copy-mismatch', `map (${ev.dir}) #${ev.seq} of ${hex(ev.phys)} to bounce address ${hex(ev.dma)} copied orig→tlb, expected no copy: ${why}`, [ev.seq], ev.dma, ev.phys)];
  return NONE;
}
