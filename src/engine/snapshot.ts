// Checkpoints and the state hash. Layout of a checkpoint blob: u32 length of a JSON header, the
// header ({world, sim}: the world's plain form, see src/model/world.ts, and the simulation's RNG
// state and fault counters), then each guest page as u64 pfn + 4096 bytes, in the map's order. The
// state hash is SHA-256 of the blob without the simulation state, so two worlds hash equal only if
// every field and every byte is equal.
import { createHash } from 'node:crypto';
import { PAGE } from '../model/memory.js';
import { type PlainWorld, type World, worldFromPlain, worldToPlain } from '../model/world.js';

export { worldToPlain, worldFromPlain, type PlainWorld } from '../model/world.js';

/** What besides the world a simulated run needs to resume: the scheduler's RNG state (seedrandom xor128) and the fault counters. */
export interface SimState {
  rng: { x: number; y: number; z: number; w: number };
  counters: Record<string, number>;
}

export interface Checkpoint {
  seq: number;
  world: World;
  sim: SimState | null;
}

export function encodeCheckpoint(world: World, sim: SimState | null): Buffer {
  const head = Buffer.from(JSON.stringify({ world: worldToPlain(world), sim }));
  const out = Buffer.allocUnsafe(4 + head.length + world.mem.size * (8 + PAGE));
  out.writeUInt32LE(head.length, 0);
  head.copy(out, 4);
  let p = 4 + head.length;
  for (const [pfn, page] of world.mem) {
    out.writeBigUInt64LE(BigInt(pfn), p);
    out.set(page, p + 8);
    p += 8 + PAGE;
  }
  return out;
}

export function decodeCheckpoint(seq: number, blob: Uint8Array): Checkpoint {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const n = buf.readUInt32LE(0);
  const head = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as { world: PlainWorld; sim: SimState | null };
  const mem = new Map<number, Uint8Array>(); // pfns < 2^52: exact numbers
  for (let p = 4 + n; p < buf.length; p += 8 + PAGE) mem.set(Number(buf.readBigUInt64LE(p)), new Uint8Array(buf.subarray(p + 8, p + 8 + PAGE)));
  return { seq, world: worldFromPlain(head.world, mem), sim: head.sim };
}

export function hashBytes(blob: Uint8Array): string {
  return createHash('sha256').update(blob).digest('hex');
}

/** Pages hashed per update: copied into one reused scratch, not into a blob of the whole memory. */
const HASH_BATCH = 64;

/**
 * The state hash of a world (the same hash checkpoints store): SHA-256 of encodeCheckpoint(world,
 * null), fed to the hash in pieces instead of building the blob (a copy of every guest page), since
 * replay checks it at every checkpoint. `plain`: worldToPlain(world), if the caller has it already.
 *
 * A page read from a checkpoint is a view of the checkpoint's pages part (store/checkpoints.ts: u64
 * pfn + 4096 bytes per page, in the map's order), so its pfn lies in the 8 bytes before it: a run of
 * such pages, each right after the last, is already the blob's bytes and is hashed where it lies (a
 * seek writes only a few pages). Every other page is copied with its pfn into a scratch, as it was.
 * Either way the hash sees the same bytes: a page joins a run only if the 8 bytes before it are its pfn.
 */
export function stateHash(world: World, plain: PlainWorld = worldToPlain(world)): string {
  const head = Buffer.from(JSON.stringify({ world: plain, sim: null }));
  const h = createHash('sha256');
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(head.length, 0);
  h.update(len).update(head);
  let scratch: Uint8Array | null = null;
  let p = 0;
  // the run being hashed in place: bytes [runAt, runEnd) of runBuf, whose bytes are runBytes
  let runBuf: ArrayBufferLike | null = null;
  let runBytes: Uint8Array | null = null;
  let runAt = 0;
  let runEnd = 0;
  for (const [pfn, page] of world.mem) {
    const buf = page.buffer;
    const off = page.byteOffset;
    if (page.length === PAGE && off >= 8) {
      if (buf === runBuf && off === runEnd + 8 && pfnAt(runBytes!, off - 8, pfn)) {
        runEnd = off + PAGE;
        continue;
      }
      const bytes: Uint8Array = buf === runBuf ? runBytes! : new Uint8Array(buf);
      if (pfnAt(bytes, off - 8, pfn)) {
        // a new run: what came before it first, in the map's order
        if (runBuf) h.update(new Uint8Array(runBuf, runAt, runEnd - runAt));
        if (p) h.update(scratch!.subarray(0, p));
        p = 0;
        runBuf = buf;
        runBytes = bytes;
        runAt = off - 8;
        runEnd = off + PAGE;
        continue;
      }
    }
    if (runBuf) h.update(new Uint8Array(runBuf, runAt, runEnd - runAt));
    runBuf = null;
    runBytes = null;
    scratch ??= new Uint8Array(Math.min(world.mem.size, HASH_BATCH) * (8 + PAGE));
    // u64 pfn little-endian (pfn < 2^52: exact), then the page
    const lo = pfn % 0x100000000;
    const hi = (pfn - lo) / 0x100000000;
    for (let k = 0; k < 4; k++) {
      scratch[p + k] = (lo >>> (8 * k)) & 0xff;
      scratch[p + 4 + k] = (hi >>> (8 * k)) & 0xff;
    }
    scratch.set(page, p + 8);
    p += 8 + PAGE;
    if (p === scratch.length) {
      h.update(scratch);
      p = 0;
    }
  }
  if (runBuf) h.update(new Uint8Array(runBuf, runAt, runEnd - runAt));
  if (p) h.update(scratch!.subarray(0, p));
  return h.digest('hex');
}

/** True if the 8 bytes at `at` are `pfn` as a u64 LE (the blob's layout). pfn < 2^52: exact. */
function pfnAt(b: Uint8Array, at: number, pfn: number): boolean {
  const lo = pfn % 0x100000000;
  const hi = (pfn - lo) / 0x100000000;
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0 === lo && (b[at + 4]! | (b[at + 5]! << 8) | (b[at + 6]! << 16) | (b[at + 7]! << 24)) >>> 0 === hi;
}
