// Turns a finding's causal chain into the events behind it, plus what happened after: the
// invalidation that was owed at the time of the access and when (if ever) it was delivered.
import type { DmaEvent } from '../events/schema.js';
import { eventsAt, logTrace } from './log.js';

export interface Explanation {
  chain: DmaEvent[];
  lateInvalidation: DmaEvent | null;
}

export function explainFinding(dbPath: string, id: string, chain: number[]): Explanation {
  const events = eventsAt(dbPath, id, chain);
  const requests = new Set(events.filter((e) => e.kind === 'iommu.inv').map((e) => e.seq));
  let late: DmaEvent | null = null;
  if (requests.size) {
    logTrace(dbPath, id, { from: Math.max(...chain), kind: 'iotlb.invalidate' }, (ev) => {
      if (!late && requests.has(ev.cause)) late = ev;
    });
  }
  return { chain: events, lateInvalidation: late };
}
