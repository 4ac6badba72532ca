// Finding the previous or next event of some kinds without decoding or folding anything: chunks
// are walked by their length prefixes and only the kind byte is read; backwards, newest chunk first.
import type Database from 'better-sqlite3';
import { sizeAt } from '../events/binary.js';
import { CHUNK, CHUNK_ID_SHIFT, type TraceRow } from './db.js';

function kindsAt(data: Uint8Array, n: number): number[] {
  const out: number[] = [];
  let off = 0;
  for (let i = 0; i < n; i++) {
    out.push(data[off + 4]!);
    off += sizeAt(data, off);
  }
  return out;
}

/** The seq of the nearest event before `at` (prev) or after it (next) whose kind code is in `codes`, or null. */
export function findKind(db: Database.Database, trace: TraceRow, at: number, codes: Set<number>, dir: 'prev' | 'next'): number | null {
  const base = trace.id * CHUNK_ID_SHIFT;
  const here = Math.floor(Math.max(at - 1, 0) / CHUNK);
  const last = Math.floor(Math.max(trace.events - 1, 0) / CHUNK);
  const stmt =
    dir === 'prev'
      ? db.prepare(`SELECT seq0, n, data FROM events WHERE id BETWEEN ? AND ? ORDER BY id DESC`).raw()
      : db.prepare(`SELECT seq0, n, data FROM events WHERE id BETWEEN ? AND ? ORDER BY id`).raw();
  const rows = (dir === 'prev' ? stmt.iterate(base, base + here) : stmt.iterate(base + here, base + last)) as Iterable<[number, number, Buffer]>;
  for (const [seq0, n, data] of rows) {
    const kinds = kindsAt(data, n);
    if (dir === 'prev') {
      for (let i = n - 1; i >= 0; i--) if (seq0 + i < at && seq0 + i <= trace.events && codes.has(kinds[i]!)) return seq0 + i;
    } else for (let i = 0; i < n; i++) if (seq0 + i > at && seq0 + i <= trace.events && codes.has(kinds[i]!)) return seq0 + i;
  }
  return null;
}
