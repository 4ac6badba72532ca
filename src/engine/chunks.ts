// Events held in memory (an export being imported, a catalog trace, a minimized candidate) as the
// chunks replay and fold consume, so one code path serves the store and memory alike.
import { EventWriter } from '../events/binary.js';
import type { DmaEvent } from '../events/schema.js';
import type { RecordedChunk } from './replay.js';

export function chunksOf(events: readonly DmaEvent[], size = 256): RecordedChunk[] {
  const out: RecordedChunk[] = [];
  const w = new EventWriter();
  for (let i = 0; i < events.length; i += size) {
    w.reset();
    const part = events.slice(i, i + size);
    for (const e of part) w.write(e);
    out.push({ seq0: part[0]!.seq, n: part.length, data: Buffer.from(w.bytes()) });
  }
  return out;
}
