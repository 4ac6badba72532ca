// Liveness, judged when nothing can run any more: a MISS the VMM read but never answered (a vIOMMU
// fault sends no UPDATE), and a vq parked on a miss with work outstanding, forever (B2: an UPDATE that
// covers the miss but fails the wake check).
import type { NewEvent } from '../events/schema.js';
import { lookup } from '../model/device-iotlb.js';
import type { World } from '../model/world.js';
import { finding, hex } from './finding.js';

export { QUIESCENT } from '../engine/pipeline.js';

export function liveness(w: World): NewEvent[] {
  const out: NewEvent[] = [];
  for (const d of w.devices.values())
    for (const m of d.iotlb.pending) {
      const covered = lookup(d.iotlb, m.iova);
      if (!covered)
        out.push(finding(m.seq, 'miss-unanswered', `the IOTLB miss for IOVA ${hex(m.iova)} (vq ${m.q}) at #${m.seq} was never answered: no UPDATE covers it`, [m.seq], m.iova));
      const r = w.rings[m.q];
      if (r && r.parked)
        out.push(
          finding(
            m.seq,
            'vq-parked',
            `vq ${m.q} is parked forever on the miss for IOVA ${hex(m.iova)} at #${m.seq}${covered ? ` although UPDATE #${covered.seq} [${hex(covered.start)}, ${hex(covered.last)}] covers it: the wake check missed it` : ''}; ${((r.availIdx - r.lastAvail) & 0xffff) || r.extra.size} requests stuck`,
            [m.seq, covered?.seq ?? 0],
            m.iova,
          ),
        );
    }
  return out;
}
