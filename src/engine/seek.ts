// State at any event: start from the nearest checkpoint at or before it and step forward through the
// pipeline, judged like a fold (checker state lives in the world, so the checks mid-trace are
// reproduced too). With a checkpoint every K events this touches at most K events, whatever the
// trace length.
//
// Most events between two checkpoints do not change the world (device reads, scheduler decisions,
// CPU reads, ...): their rule says so (src/model/rules: no `evolve`, or `inertWhen`), and unless a
// checker keeps state about their kind they are stepped over by their kind byte (and a dev.access by
// its direction byte) without being decoded. The event at `at` itself is always decoded.
import { decodeAt, fieldOffset, sizeAt } from '../events/binary.js';
import { type DmaEvent, KINDS, type Kind, KIND_NAMES } from '../events/schema.js';
import { RULES } from '../model/rules/index.js';
import { cloneWorld, type World } from '../model/world.js';
import { freezeWorld } from './apply.js';
import { type Judge, Pipeline } from './pipeline.js';
import type { RecordedChunk } from './replay.js';
import type { Checkpoint } from './snapshot.js';

export interface SeekResult {
  world: World;
  /** the event at `at` itself */
  event: DmaEvent | null;
  fromCheckpoint: number;
  folded: number;
}

/** The kinds whose rule never changes the world. */
export const INERT_KINDS: readonly Kind[] = KIND_NAMES.filter((k) => !RULES[k].evolve);

const INERT = new Uint8Array(256);
for (const k of INERT_KINDS) INERT[KINDS[k].code] = 1;
/** per kind code: [byte offset, value] of the enum field whose value makes the event inert, if any */
const INERT_WHEN: ([number, number] | undefined)[] = [];
for (const k of KIND_NAMES) {
  const when = RULES[k].inertWhen;
  if (!when) continue;
  const spec = (KINDS[k].fields as Record<string, unknown>)[when.field] as { enum: readonly string[] };
  INERT_WHEN[KINDS[k].code] = [fieldOffset(k, when.field)!, spec.enum.indexOf(when.value)];
}

/**
 * True if the encoded event at off (size bytes, within buf) cannot change the world by its rule: an
 * inert kind, or one whose rule says it is inert for this value of a field (a device read). Anything
 * that does not look well-formed is not inert (it gets decoded, and a corrupt event is reported as such).
 */
export function inertAt(buf: Uint8Array, off: number, size: number): boolean {
  if (!(size >= 10) || off + size > buf.length) return false;
  const code = buf[off + 4]!;
  if (INERT[code]) return true;
  const when = INERT_WHEN[code];
  return !!when && when[0] < size && buf[off + when[0]] === when[1];
}

/**
 * `chunks` must start at or before checkpoint.seq + 1 and reach `at`. `owned`: the checkpoint was
 * decoded for this seek alone (store/db.ts checkpointAt), so its world is folded in place instead of
 * being copied first (its pages stay copy-on-write either way: memory.ts copies a page before writing it).
 */
export function seek(checkpoint: Checkpoint | null, chunks: Iterable<RecordedChunk>, at: number, judge: Judge | null, owned = false): SeekResult {
  const start = checkpoint?.seq ?? 0;
  const pipe = new Pipeline({ judge, mode: 'fold', world: checkpoint ? (owned ? checkpoint.world : cloneWorld(checkpoint.world)) : undefined, seq: start });
  // kinds a checker keeps state about are stepped even when their rule changes nothing
  const watched = new Uint8Array(256);
  if (judge) for (const k of KIND_NAMES) if (judge.checks[k]?.keepsState) watched[KINDS[k].code] = 1;
  let event: DmaEvent | null = null;
  let folded = 0;
  outer: for (const c of chunks) {
    let off = 0;
    for (let i = 0; i < c.n; i++) {
      const seq = c.seq0 + i;
      const len = sizeAt(c.data, off);
      if (seq > at) break outer;
      if (seq > start) {
        if (seq === at || !inertAt(c.data, off, len) || watched[c.data[off + 4]!]) {
          // as in fold (engine/replay.ts): the rules copy what they keep and the checkers keep no
          // bytes, so bytes fields can be views of the chunk; the event at `at` goes to the caller: a copy
          const ev = decodeAt(c.data, off, seq, seq !== at);
          pipe.put(ev);
          if (seq === at) event = ev;
        }
        folded++;
      }
      off += len;
    }
  }
  return { world: freezeWorld(pipe.world), event, fromCheckpoint: start, folded };
}
