// Turns a finding's causal chain into the events behind it, plus what happened after: the
// invalidation that was owed at the time of the access and when (if ever) it was delivered.
//
// Both are read without walking the trace: the chain's events by point reads, the delivery by a walk
// that reads only each event's kind and cause bytes, from the chain's last event until the delivery
// or until the world no longer owes the invalidation (dropped: nothing will deliver it), as seen from
// the checkpoint before the chain's end.
import { decodeAt, sizeAt } from '../events/binary.js';
import { type DmaEvent, KINDS } from '../events/schema.js';
import { seek } from '../engine/seek.js';
import { checkpointAt, readChunks, type TraceRow } from '../store/db.js';
import type Database from 'better-sqlite3';
import { withTrace } from './load.js';

export interface Explanation {
  chain: DmaEvent[];
  lateInvalidation: DmaEvent | null;
}

const INVALIDATE = KINDS['iotlb.invalidate'].code;
const FAULT = KINDS.fault.code;

export function explainFinding(dbPath: string, id: string, chain: number[]): Explanation {
  return withTrace(dbPath, id, ({ db, trace }) => {
    const events = [...new Set(chain)]
      .filter((s) => s >= 1 && s <= trace.events)
      .sort((x, y) => x - y)
      .map((s) => eventAt(db, trace, s))
      .filter((e): e is DmaEvent => e !== null);
    const requests = new Set(events.filter((e) => e.kind === 'iommu.inv').map((e) => e.seq));
    const late = requests.size ? delivery(db, trace, Math.max(...chain), requests) : null;
    return { chain: events, lateInvalidation: late };
  });
}

function eventAt(db: Database.Database, trace: TraceRow, seq: number): DmaEvent | null {
  for (const c of readChunks(db, trace, seq, seq)) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      if (c.seq0 + i === seq) return decodeAt(c.data, off, seq);
      off += sizeAt(c.data, off);
    }
  }
  return null;
}

/** The first iotlb.invalidate at or after `from` answering one of `requests`, or null. */
function delivery(db: Database.Database, trace: TraceRow, from: number, requests: Set<number>): DmaEvent | null {
  // what the world still owes after `from`: once none of it is, nothing later can deliver it
  const ck = checkpointAt(db, trace.id, from, trace.events);
  const world = seek(ck, readChunks(db, trace, (ck?.seq ?? 0) + 1, from), from, null).world;
  const owed = new Map<number, number>();
  for (const i of world.vmm.invals) if (requests.has(i.req)) owed.set(i.req, (owed.get(i.req) ?? 0) + 1);
  let left = [...owed.values()].reduce((x, y) => x + y, 0);
  for (const c of readChunks(db, trace, from)) {
    let off = 0;
    const d = c.data;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      if (seq > from && left === 0) return null;
      if (seq >= from) {
        const code = d[off + 4];
        if (code === INVALIDATE || code === FAULT) {
          const cause = (d[off + 6]! | (d[off + 7]! << 8) | (d[off + 8]! << 16) | (d[off + 9]! << 24)) >>> 0;
          if (requests.has(cause)) {
            const ev = decodeAt(d, off, seq);
            if (ev.kind === 'iotlb.invalidate') return ev;
            if (ev.kind === 'fault' && ev.what === 'drop-invalidate' && seq > from && (owed.get(cause) ?? 0) > 0) {
              owed.set(cause, owed.get(cause)! - 1);
              left--;
            }
          }
        }
      }
      off += sizeAt(d, off);
    }
  }
  return null;
}
