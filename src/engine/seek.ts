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
import { type Judge, type KindChecks, Pipeline } from './pipeline.js';
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
/**
 * per kind code: the byte offset of the enum field whose value makes the event inert (0: none) and
 * that value. Typed arrays, not an array with holes: reading a hole makes optimized code depend on
 * the prototype chain, and a change there deoptimizes the seek's hot loop.
 */
const INERT_WHEN_AT = new Uint16Array(256);
const INERT_WHEN_IS = new Uint8Array(256);
for (const k of KIND_NAMES) {
  const when = RULES[k].inertWhen;
  if (!when) continue;
  const spec = (KINDS[k].fields as Record<string, unknown>)[when.field] as { enum: readonly string[] };
  INERT_WHEN_AT[KINDS[k].code] = fieldOffset(k, when.field)!;
  INERT_WHEN_IS[KINDS[k].code] = spec.enum.indexOf(when.value);
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
  const at = INERT_WHEN_AT[code]!;
  return at !== 0 && at < size && buf[off + at] === INERT_WHEN_IS[code];
}

/**
 * `chunks` must start at or before checkpoint.seq + 1 and reach `at`. `owned`: the checkpoint was
 * decoded for this seek alone (store/db.ts checkpointAt), so its world is folded in place instead of
 * being copied first (its pages stay copy-on-write either way: memory.ts copies a page before writing it).
 */
export function seek(checkpoint: Checkpoint | null, chunks: Iterable<RecordedChunk>, at: number, judge: Judge | null, owned = false): SeekResult {
  const start = checkpoint?.seq ?? 0;
  const pipe = new Pipeline({ judge: judge && stateKeeping(judge), mode: 'fold', world: checkpoint ? (owned ? checkpoint.world : cloneWorld(checkpoint.world)) : undefined, seq: start });
  const watched = watchedKinds(judge);
  const to = { off: 0, folded: 0 };
  const c = stepUpTo(pipe, chunks, start, at, watched, to);
  let event: DmaEvent | null = null;
  if (c && at > start) {
    // the event at `at` goes to the caller: a copy of its bytes
    event = decodeAt(c.data, to.off, at);
    pipe.put(event);
    to.folded++;
  } else if (c && at === start && at > 0) {
    // a checkpoint right after `at` already holds its effect: the event is shown, not applied
    event = decodeAt(c.data, to.off, at);
  }
  const folded = to.folded;
  return { world: freezeWorld(pipe.world), event, fromCheckpoint: start, folded };
}

/** By kind code: 1 for the kinds a checker keeps state about, stepped even when their rule changes nothing. */
function watchedKinds(judge: Judge | null): Uint8Array {
  const watched = new Uint8Array(256);
  if (judge) for (const k of KIND_NAMES) if (judge.checks[k]?.keepsState) watched[KINDS[k].code] = 1;
  return watched;
}

/**
 * The part of a judge a seek needs: the checks of the kinds whose checkers keep state in the world
 * (`keepsState`: the real-trace judgement, src/check/real.ts). Every other check only reads the world
 * and returns findings, and a seek reports none, so running them would change nothing it returns;
 * skipping them saves about a fifth of a seek's fold, and their code never has to be compiled in a
 * process that only seeks. Liveness is kept as it is (it runs once, at the QUIESCENT marker).
 */
export function stateKeeping(judge: Judge): Judge {
  const checks: Partial<Record<Kind, KindChecks>> = {};
  for (const k of KIND_NAMES) {
    const c = judge.checks[k] as KindChecks | undefined;
    if (c?.keepsState) checks[k] = c;
  }
  return { checks: checks as Judge['checks'], liveness: (w) => judge.liveness(w) };
}

/**
 * Steps the events after `start` and before `at` through the pipeline, stepping over those that
 * cannot change the world; returns the chunk that holds `at` (null if none does), with the offset of
 * `at` in it and the count of events stepped or stepped over in `to`. The hot loop of a seek, with
 * no branch taken once per seek but its exit: V8 optimizes it during the first seek of a process
 * (it loops over thousands of events) and does not deoptimize it at a seek's end. seek() itself runs
 * no loop, so V8 never compiles it (a large compile, with this loop inlined, that used to land on
 * about the 50th seek of a process).
 */
function stepUpTo(pipe: Pipeline, chunks: Iterable<RecordedChunk>, start: number, at: number, watched: Uint8Array, to: { off: number; folded: number }): RecordedChunk | null {
  for (const c of chunks) {
    const last = c.seq0 + c.n - 1;
    // chunks up to the checkpoint, but the one holding `at` when the checkpoint is right after it
    if (last <= start && last < at) continue;
    const data = c.data;
    const end = Math.min(last, at - 1);
    let off = 0;
    for (let seq = c.seq0; seq <= end; seq++) {
      const len = sizeAt(data, off);
      // as in fold (engine/replay.ts): the rules copy what they keep and the checkers keep no bytes,
      // so bytes fields can be views of the chunk
      if (seq > start && (!inertAt(data, off, len) || watched[data[off + 4]!])) pipe.putAt(decodeAt(data, off, seq, true), seq, data[off + 4]!);
      off += len;
    }
    to.folded += Math.max(0, end - Math.max(start, c.seq0 - 1));
    if (at <= last) {
      to.off = off;
      return c;
    }
  }
  return null;
}
