// JSON form of events, used by `--json` output and the canonical JSONL export. 64-bit values and
// byte strings are hex strings so no consumer can round them through a double.
import { ACTORS, type DmaEvent, KINDS, type Kind, fieldsOf } from './schema.js';

export class JsonEventError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export const hex = (v: bigint): string => '0x' + v.toString(16);
export const bytesHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

export function eventToJson(ev: DmaEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { seq: ev.seq, kind: ev.kind, actor: ev.actor };
  if (ev.cause) out.cause = ev.cause;
  const rec = ev as unknown as Record<string, unknown>;
  for (const [name, spec] of fieldsOf(ev.kind)) {
    const v = rec[name];
    if (spec === 'u64') out[name] = hex(v as bigint);
    else if (spec === 'bytes') out[name] = bytesHex(v as Uint8Array);
    else if (spec === 'descs')
      out[name] = (v as { addr: bigint; len: number; flags: number; next: number; idx: number }[]).map((d) => ({
        idx: d.idx,
        addr: hex(d.addr),
        len: d.len,
        flags: d.flags,
        next: d.next,
      }));
    else if (spec === 'segs') out[name] = (v as { gpa: bigint; len: number; write: number }[]).map((g) => ({ gpa: hex(g.gpa), len: g.len, write: g.write }));
    else out[name] = v;
  }
  return out;
}

const HEX64 = /^0x[0-9a-fA-F]{1,16}$/;
// no backtracking: a 32 MiB hex string is checked in one linear pass (an `([0-9a-f]{2})*` group
// recursed once per pair and overflowed the stack)
const HEXDIGITS = /^[0-9a-fA-F]*$/;
/** the binary codec stores a string's UTF-8 length and a list's count in 16 bits (see binary.ts) */
export const MAX_STR_BYTES = 0xffff;
export const MAX_LIST = 0xffff;
/** fields every event has besides its kind's */
const HEAD_FIELDS = new Set(['seq', 'kind', 'actor', 'cause']);

function list(v: unknown, field: string, what: string): unknown[] {
  if (!Array.isArray(v)) throw new JsonEventError(field, `${field} must be an array of ${what}`);
  if (v.length > MAX_LIST) throw new JsonEventError(field, `${field} has ${v.length} ${what}, more than ${MAX_LIST}`);
  return v;
}

function u64(v: unknown, field: string): bigint {
  if (typeof v !== 'string' || !HEX64.test(v)) throw new JsonEventError(field, `${field} must be a hex string like "0x1000"`);
  return BigInt(v);
}

function int(v: unknown, field: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    throw new JsonEventError(field, `${field} must be an integer 0..${max}`);
  return v;
}

/** Parses one event object (as produced by eventToJson); throws JsonEventError naming the field. */
export function eventFromJson(o: unknown, expectSeq?: number): DmaEvent {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new JsonEventError('event', 'expected a JSON object');
  const r = o as Record<string, unknown>;
  const kind = r.kind as Kind;
  // own properties only: "constructor" or "toString" are in KINDS through its prototype
  if (typeof kind !== 'string' || !Object.hasOwn(KINDS, kind)) throw new JsonEventError('kind', `unknown kind ${JSON.stringify(r.kind)}`);
  const seq = int(r.seq, 'seq', 0xffffffff);
  if (expectSeq !== undefined && seq !== expectSeq) throw new JsonEventError('seq', `seq ${seq} out of order (expected ${expectSeq})`);
  if (typeof r.actor !== 'string' || !(ACTORS as readonly string[]).includes(r.actor))
    throw new JsonEventError('actor', `unknown actor ${JSON.stringify(r.actor)}`);
  const ev: Record<string, unknown> = { seq, kind, actor: r.actor, cause: r.cause === undefined ? 0 : int(r.cause, 'cause', 0xffffffff) };
  const fields = fieldsOf(kind);
  // a field the kind does not have is a typo or a different program's trace: never silently dropped
  for (const k of Object.keys(r)) if (!HEAD_FIELDS.has(k) && !Object.hasOwn(KINDS[kind].fields, k)) throw new JsonEventError(k, `${kind} has no field ${k} (fields: ${fields.map(([n]) => n).join(', ')})`);
  for (const [name, spec] of fields) {
    const v = r[name];
    if (v === undefined) throw new JsonEventError(name, `${kind} is missing field ${name}`);
    if (typeof spec === 'object') {
      if (typeof v !== 'string' || !spec.enum.includes(v)) throw new JsonEventError(name, `${name} must be one of ${spec.enum.join('|')}`);
      ev[name] = v;
    } else if (spec === 'u64') ev[name] = u64(v, name);
    else if (spec === 'u8') ev[name] = int(v, name, 0xff);
    else if (spec === 'u16') ev[name] = int(v, name, 0xffff);
    else if (spec === 'u32' || spec === 'seq') ev[name] = int(v, name, 0xffffffff);
    else if (spec === 'str') {
      if (typeof v !== 'string') throw new JsonEventError(name, `${name} must be a string`);
      if (v.length > MAX_STR_BYTES / 3 && Buffer.byteLength(v) > MAX_STR_BYTES) throw new JsonEventError(name, `${name} is longer than ${MAX_STR_BYTES} bytes`);
      ev[name] = v;
    } else if (spec === 'bytes') {
      if (typeof v !== 'string' || v.length % 2 !== 0 || !HEXDIGITS.test(v)) throw new JsonEventError(name, `${name} must be an even-length hex string`);
      ev[name] = new Uint8Array(Buffer.from(v, 'hex'));
    } else if (spec === 'seqs') {
      ev[name] = list(v, name, 'seqs').map((s, i) => int(s, `${name}[${i}]`, 0xffffffff));
    } else if (spec === 'segs') {
      ev[name] = (list(v, name, 'segments') as Record<string, unknown>[]).map((g, i) => {
        if (typeof g !== 'object' || g === null || Array.isArray(g)) throw new JsonEventError(`${name}[${i}]`, `${name}[${i}] must be an object`);
        return { gpa: u64(g.gpa, `${name}[${i}].gpa`), len: int(g.len, `${name}[${i}].len`, 0xffffffff), write: int(g.write, `${name}[${i}].write`, 1) };
      });
    } else if (spec === 'descs') {
      ev[name] = (list(v, name, 'descriptors') as Record<string, unknown>[]).map((d, i) => {
        if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new JsonEventError(`${name}[${i}]`, `${name}[${i}] must be an object`);
        return {
          addr: u64(d.addr, `${name}[${i}].addr`),
          len: int(d.len, `${name}[${i}].len`, 0xffffffff),
          flags: int(d.flags, `${name}[${i}].flags`, 0xffff),
          next: int(d.next, `${name}[${i}].next`, 0xffff),
          idx: int(d.idx, `${name}[${i}].idx`, 0xffff),
        };
      });
    }
  }
  return ev as unknown as DmaEvent;
}
