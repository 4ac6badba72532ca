// Rules for injected faults (src/sim/config.ts FAULT_KINDS): what each one changes in the VMM or the
// device IOTLB when it hits.
import { evictOldest } from '../device-iotlb.js';
import { removeAt } from '../list.js';
import { resetMeta } from './ring.js';
import type { RulesFor } from './rule.js';
import { markRead } from './vmm.js';

export const FAULT_RULES: RulesFor<'fault'> = {
  fault: {
    models: 'an injected fault: a late, lost or reordered VMM message, a vIOMMU fault, an IOTLB eviction',
    evolve(w, ev) {
      switch (ev.what) {
        case 'delay-invalidate': {
          const inv = w.vmm.invals.find((i) => i.req === ev.cause);
          if (inv) inv.due = w.passes + ev.arg;
          return;
        }
        case 'drop-invalidate': {
          const at = w.vmm.invals.findIndex((i) => i.req === ev.cause);
          if (at >= 0) removeAt(w.vmm.invals, at);
          return;
        }
        case 'viommu-fault':
          markRead(w, ev.cause); // the VMM read the miss and sent nothing
          return;
        case 'reorder-update-invalidate':
          markRead(w, ev.cause);
          if (w.vmm.lastTranslate) w.vmm.held.push({ ...w.vmm.lastTranslate });
          return;
        case 'evict-iotlb': {
          // vhost_iotlb_add_range at max_iotlb_entries with VHOST_IOTLB_FLAG_RETIRE: the oldest entry goes
          const d = w.devices.get(ev.dev);
          if (d?.iotlb.entries.length) {
            evictOldest(d.iotlb, ev.seq);
            resetMeta(w, ev.dev);
          }
          return;
        }
      }
    },
  },
};
