// Rules for the swiotlb bounce pool (kernel/dma/swiotlb.c): slot allocation and release
// (swiotlb_tbl_map_single / swiotlb_release_slots) and the copies between a buffer and its slots
// (swiotlb_bounce).
import { readMem, writeMem } from '../memory.js';
import { mappingAt, slotAddr } from '../swiotlb.js';
import type { RulesFor } from './rule.js';

export const SWIOTLB_RULES: RulesFor<'swiotlb.slots' | 'swiotlb.bounce'> = {
  'swiotlb.slots': {
    models: 'swiotlb_tbl_map_single (slots taken, orig_addr and alloc_size kept per slot) / swiotlb_release_slots',
    evolve(w, ev) {
      if (ev.op === 'alloc') {
        w.swiotlb.slots.set(ev.index, { dev: ev.dev, orig: ev.orig, size: ev.size, nslots: ev.nslots, offset: ev.offset, dirty: false, init: new Uint8Array(ev.nslots * 2048) });
        w.swiotlb.next = ev.index + ev.nslots;
      } else w.swiotlb.slots.delete(ev.index);
    },
  },
  'swiotlb.bounce': {
    models: 'swiotlb_bounce: size bytes copied between the original buffer and its slot',
    evolve(w, ev, owned) {
      if (ev.tlb === 0n) return; // imported: the trace names the buffer, not the slot it bounced through
      const from = ev.toTlb ? ev.orig : ev.tlb;
      const to = ev.toTlb ? ev.tlb : ev.orig;
      writeMem(w.mem, to, readMem(w.mem, from, ev.size), owned);
      const hit = mappingAt(w.swiotlb, ev.tlb);
      if (hit) {
        const [index, m] = hit;
        const start = Number(ev.tlb - slotAddr(index));
        if (ev.toTlb) m.init.fill(1, start, Math.min(start + ev.size, m.init.length));
        else m.dirty = false;
      }
    },
  },
};
