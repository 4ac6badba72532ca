// log: the events of a trace, optionally a seq range and kinds.
import { decodeAt, sizeAt } from '../events/binary.js';
import { kindMatcher } from '../events/format.js';
import { type DmaEvent, KIND_NAMES } from '../events/schema.js';
import { UsageError } from '../errors.js';
import { readChunks } from '../store/db.js';
import { withTrace } from './load.js';

export interface LogQuery {
  from?: number;
  to?: number;
  kind?: string;
}

/** Every comma-separated glob of a --kind pattern must match some kind: a typo is an error, not an empty log. */
export function checkKindPattern(pattern: string | undefined): void {
  if (!pattern) return;
  for (const p of pattern.split(',')) {
    if (!KIND_NAMES.some(kindMatcher(p)))
      throw new UsageError(`--kind ${JSON.stringify(p.trim())} matches no event kind (kinds: ${KIND_NAMES.join(', ')})`);
  }
}

/** Calls `each` for every selected event, streaming; returns the trace's header row. */
export function logTrace(dbPath: string, id: string, q: LogQuery, each: (ev: DmaEvent) => void) {
  return withTrace(dbPath, id, ({ db, trace }) => {
    const from = q.from ?? 1;
    const to = q.to ?? trace.events;
    if (from > to) throw new UsageError(`--from ${from} is after --to ${to}`);
    const match = kindMatcher(q.kind);
    checkKindPattern(q.kind);
    for (const c of readChunks(db, trace, from, to)) {
      let off = 0;
      for (let i = 0; i < c.n; i++) {
        const seq = c.seq0 + i;
        if (seq >= from && seq <= to) {
          const ev = decodeAt(c.data, off, seq);
          if (match(ev.kind)) each(ev);
        }
        off += sizeAt(c.data, off);
      }
    }
    return trace;
  });
}

/** The events at the given seqs (e.g. a finding's causal chain), in seq order. */
export function eventsAt(dbPath: string, id: string, seqs: number[]): DmaEvent[] {
  const want = new Set(seqs);
  const found: DmaEvent[] = [];
  if (!want.size) return found;
  logTrace(dbPath, id, { from: Math.min(...want), to: Math.max(...want) }, (ev) => {
    if (want.has(ev.seq)) found.push(ev);
  });
  return found;
}
