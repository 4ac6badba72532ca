// State at any event: start from the nearest checkpoint at or before it and fold forward. With a
// checkpoint every K events this touches at most K events, whatever the trace length.
//
// Most events between two checkpoints do not change the world (device reads, scheduler decisions,
// CPU reads, ...): those are stepped over by their kind byte (and a dev.access by its direction
// byte) without being decoded. The event at `at` itself is always decoded.
import { decodeAt, fieldOffset, sizeAt } from '../events/binary.js';
import { ACCESS, type DmaEvent, KINDS, type Kind } from '../events/schema.js';
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

/** The kinds engine/apply.ts `mutate` leaves the world alone for (test/engine/seek-skip.test.ts holds it to that). */
export const INERT_KINDS: readonly Kind[] = ['sched', 'cpu.read', 'dev.teardown', 'vq.log', 'dma.map_error', 'dma.sync', 'vq.pop', 'vq.fill', 'marker', 'opaque'];
const INERT = new Uint8Array(256);
for (const k of INERT_KINDS) INERT[KINDS[k].code] = 1;
const ACCESS_CODE = KINDS['dev.access'].code;
const ACCESS_DIR_AT = fieldOffset('dev.access', 'dir')!;
const ACCESS_READ = ACCESS.indexOf('read');

/**
 * True if the encoded event at off (size bytes, within buf) cannot change the world: an inert kind,
 * or a device read. Anything that does not look well-formed is not inert (it gets decoded, and a
 * corrupt event is reported as such).
 */
export function inertAt(buf: Uint8Array, off: number, size: number): boolean {
  if (!(size >= 10) || off + size > buf.length) return false;
  const code = buf[off + 4]!;
  if (INERT[code]) return true;
  return code === ACCESS_CODE && ACCESS_DIR_AT < size && buf[off + ACCESS_DIR_AT] === ACCESS_READ;
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
        if (seq === at || !inertAt(c.data, off, len)) {
          const ev = decodeAt(c.data, off, seq);
          mutate(world, ev, owned);
          if (seq === at) event = ev;
        }
        folded++;
      }
      off += len;
    }
  }
  return { world: freezeWorld(world), event, fromCheckpoint: start, folded };
}
