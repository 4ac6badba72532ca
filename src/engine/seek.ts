// State at any event: start from the nearest checkpoint at or before it and fold forward. With a
// checkpoint every K events this touches at most K events, whatever the trace length.
import { decodeAt, sizeAt } from '../events/binary.js';
import type { DmaEvent } from '../events/schema.js';
import { cloneWorld, emptyWorld, type World } from '../model/world.js';
import { freezeWorld, mutate } from './apply.js';
import type { RecordedChunk } from './replay.js';
import type { Checkpoint } from './snapshot.js';

export interface SeekResult {
  world: World;
  /** the event at `at` itself */
  event: DmaEvent | null;
  fromCheckpoint: number;
  folded: number;
}

/** `chunks` must start at or before checkpoint.seq + 1 and reach `at`. */
export function seek(checkpoint: Checkpoint | null, chunks: Iterable<RecordedChunk>, at: number): SeekResult {
  const start = checkpoint?.seq ?? 0;
  const world = checkpoint ? cloneWorld(checkpoint.world) : emptyWorld();
  const owned = new Set<Uint8Array>();
  let event: DmaEvent | null = null;
  let folded = 0;
  outer: for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      const len = sizeAt(c.data, off);
      if (seq > at) break outer;
      if (seq > start) {
        const ev = decodeAt(c.data, off, seq);
        mutate(world, ev, owned);
        folded++;
        if (seq === at) event = ev;
      }
      off += len;
    }
  }
  return { world: freezeWorld(world), event, fromCheckpoint: start, folded };
}
