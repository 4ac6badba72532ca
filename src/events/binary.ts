// Compact binary form of an event, the form stored in SQLite. Layout of one event:
//   u32 length of what follows | u8 kind code | u8 actor | u32 cause | fields in schema order
// u64 fields are 8 bytes little-endian and always bigint (exact above 2^53). Events are packed many to
// a row (see store/), and seq is implicit: a row holds consecutive seqs from its first.
import { ACTORS, type Actor, type DmaEvent, KINDS, KIND_BY_CODE, type Kind, type NewEvent, fieldsOf } from './schema.js';

type Op = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
const U8 = 0, U16 = 1, U32 = 2, U64 = 3, BYTES = 4, STR = 5, DESCS = 6, SEQS = 7, ENUM = 8, SEGS = 9;

interface Plan {
  kind: Kind;
  code: number;
  names: string[];
  ops: Op[];
  enums: (readonly string[] | null)[];
  enumIndex: (Map<string, number> | null)[];
}

const PLANS: Plan[] = [];
const PLAN_BY_KIND = new Map<string, Plan>();
for (const kind of Object.keys(KINDS) as Kind[]) {
  const plan: Plan = { kind, code: KINDS[kind].code, names: [], ops: [], enums: [], enumIndex: [] };
  for (const [name, spec] of fieldsOf(kind)) {
    plan.names.push(name);
    if (typeof spec === 'object') {
      plan.ops.push(ENUM);
      plan.enums.push(spec.enum);
      plan.enumIndex.push(new Map(spec.enum.map((v, i) => [v, i])));
      continue;
    }
    plan.enums.push(null);
    plan.enumIndex.push(null);
    plan.ops.push(
      ({ u8: U8, u16: U16, u32: U32, seq: U32, u64: U64, bytes: BYTES, str: STR, descs: DESCS, seqs: SEQS, segs: SEGS } as const)[spec],
    );
  }
  PLANS[plan.code] = plan;
  PLAN_BY_KIND.set(kind, plan);
}
const ACTOR_CODE = new Map<string, number>(ACTORS.map((a, i) => [a, i]));

export class CodecError extends Error {}

/** A growable byte buffer that events are appended to. */
export class EventWriter {
  buf: Buffer;
  view: DataView;
  pos = 0;
  constructor(initial = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initial);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
  reset(): void {
    this.pos = 0;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** Appends one event; returns its offset. */
  write(ev: NewEvent | DmaEvent): number {
    const plan = PLAN_BY_KIND.get(ev.kind);
    if (!plan) throw new CodecError(`unknown event kind ${String(ev.kind)}`);
    const actor = ACTOR_CODE.get(ev.actor);
    if (actor === undefined) throw new CodecError(`unknown actor ${String(ev.actor)}`);
    const start = this.pos;
    this.ensure(10);
    const v = this.view;
    this.pos += 4; // length, patched below
    v.setUint8(this.pos, plan.code);
    v.setUint8(this.pos + 1, actor);
    v.setUint32(this.pos + 2, ev.cause, true);
    this.pos += 6;
    const rec = ev as unknown as Record<string, unknown>;
    for (let i = 0; i < plan.ops.length; i++) this.field(plan, i, rec[plan.names[i]!]);
    this.view.setUint32(start, this.pos - start - 4, true);
    return start;
  }

  private field(plan: Plan, i: number, value: unknown): void {
    const name = plan.names[i]!;
    switch (plan.ops[i]) {
      case U8:
        this.ensure(1);
        this.view.setUint8(this.pos, num(value, name, 0xff));
        this.pos += 1;
        return;
      case U16:
        this.ensure(2);
        this.view.setUint16(this.pos, num(value, name, 0xffff), true);
        this.pos += 2;
        return;
      case U32:
        this.ensure(4);
        this.view.setUint32(this.pos, num(value, name, 0xffffffff), true);
        this.pos += 4;
        return;
      case U64:
        if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn)
          throw new CodecError(`field ${name}: expected a 64-bit unsigned bigint`);
        this.ensure(8);
        this.view.setBigUint64(this.pos, value, true);
        this.pos += 8;
        return;
      case ENUM: {
        const idx = plan.enumIndex[i]!.get(value as string);
        if (idx === undefined) throw new CodecError(`field ${name}: ${String(value)} is not one of ${plan.enums[i]!.join('|')}`);
        this.ensure(1);
        this.view.setUint8(this.pos, idx);
        this.pos += 1;
        return;
      }
      case BYTES: {
        if (!(value instanceof Uint8Array)) throw new CodecError(`field ${name}: expected bytes`);
        this.ensure(4 + value.length);
        this.view.setUint32(this.pos, value.length, true);
        this.buf.set(value, this.pos + 4);
        this.pos += 4 + value.length;
        return;
      }
      case STR: {
        if (typeof value !== 'string') throw new CodecError(`field ${name}: expected a string`);
        const n = Buffer.byteLength(value);
        if (n > 0xffff) throw new CodecError(`field ${name}: string too long`);
        this.ensure(2 + n);
        this.view.setUint16(this.pos, n, true);
        this.buf.write(value, this.pos + 2);
        this.pos += 2 + n;
        return;
      }
      case DESCS: {
        if (!Array.isArray(value)) throw new CodecError(`field ${name}: expected a descriptor list`);
        this.ensure(2 + 18 * value.length);
        this.view.setUint16(this.pos, value.length, true);
        let p = this.pos + 2;
        for (const d of value as { addr: bigint; len: number; flags: number; next: number; idx: number }[]) {
          if (typeof d.addr !== 'bigint') throw new CodecError(`field ${name}: descriptor addr must be a bigint`);
          this.view.setBigUint64(p, d.addr, true);
          this.view.setUint32(p + 8, num(d.len, `${name}.len`, 0xffffffff), true);
          this.view.setUint16(p + 12, num(d.flags, `${name}.flags`, 0xffff), true);
          this.view.setUint16(p + 14, num(d.next, `${name}.next`, 0xffff), true);
          this.view.setUint16(p + 16, num(d.idx, `${name}.idx`, 0xffff), true);
          p += 18;
        }
        this.pos = p;
        return;
      }
      case SEGS: {
        if (!Array.isArray(value)) throw new CodecError(`field ${name}: expected a scatter-gather list`);
        this.ensure(2 + 13 * value.length);
        this.view.setUint16(this.pos, num(value.length, name, 0xffff), true);
        let p = this.pos + 2;
        for (const g of value as { gpa: bigint; len: number; write: number }[]) {
          if (typeof g.gpa !== 'bigint' || g.gpa < 0n || g.gpa > 0xffffffffffffffffn) throw new CodecError(`field ${name}: gpa must be a 64-bit bigint`);
          this.view.setBigUint64(p, g.gpa, true);
          this.view.setUint32(p + 8, num(g.len, `${name}.len`, 0xffffffff), true);
          this.view.setUint8(p + 12, num(g.write, `${name}.write`, 1));
          p += 13;
        }
        this.pos = p;
        return;
      }
      case SEQS: {
        if (!Array.isArray(value)) throw new CodecError(`field ${name}: expected a list of seqs`);
        this.ensure(2 + 4 * value.length);
        this.view.setUint16(this.pos, value.length, true);
        let p = this.pos + 2;
        for (const s of value) {
          this.view.setUint32(p, num(s, name, 0xffffffff), true);
          p += 4;
        }
        this.pos = p;
        return;
      }
    }
  }
}

function num(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    throw new CodecError(`field ${name}: expected an integer 0..${max}, got ${String(value)}`);
  return value;
}

/** Decodes the event at `off` in `buf` (which must hold its whole length prefix and body). */
export function decodeAt(buf: Uint8Array, off: number, seq: number): DmaEvent {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (off + 10 > buf.length) throw new CodecError(`event ${seq}: truncated header`);
  const len = v.getUint32(off, true);
  const end = off + 4 + len;
  if (end > buf.length) throw new CodecError(`event ${seq}: truncated (needs ${len} bytes)`);
  const plan = PLANS[v.getUint8(off + 4)];
  if (!plan) throw new CodecError(`event ${seq}: unknown kind code ${v.getUint8(off + 4)}`);
  const actor = ACTORS[v.getUint8(off + 5)];
  if (!actor) throw new CodecError(`event ${seq}: unknown actor code ${v.getUint8(off + 5)}`);
  const ev: Record<string, unknown> = { seq, kind: plan.kind, actor: actor as Actor, cause: v.getUint32(off + 6, true) };
  let p = off + 10;
  const need = (n: number) => {
    if (p + n > end) throw new CodecError(`event ${seq} (${plan.kind}): truncated field`);
  };
  for (let i = 0; i < plan.ops.length; i++) {
    const name = plan.names[i]!;
    switch (plan.ops[i]) {
      case U8:
        need(1);
        ev[name] = v.getUint8(p);
        p += 1;
        break;
      case U16:
        need(2);
        ev[name] = v.getUint16(p, true);
        p += 2;
        break;
      case U32:
        need(4);
        ev[name] = v.getUint32(p, true);
        p += 4;
        break;
      case U64:
        need(8);
        ev[name] = v.getBigUint64(p, true);
        p += 8;
        break;
      case ENUM: {
        need(1);
        const val = plan.enums[i]![v.getUint8(p)];
        if (val === undefined) throw new CodecError(`event ${seq} (${plan.kind}): bad ${name} code`);
        ev[name] = val;
        p += 1;
        break;
      }
      case BYTES: {
        need(4);
        const n = v.getUint32(p, true);
        need(4 + n);
        ev[name] = new Uint8Array(buf.subarray(p + 4, p + 4 + n));
        p += 4 + n;
        break;
      }
      case STR: {
        need(2);
        const n = v.getUint16(p, true);
        need(2 + n);
        ev[name] = Buffer.from(buf.buffer, buf.byteOffset + p + 2, n).toString('utf8');
        p += 2 + n;
        break;
      }
      case DESCS: {
        need(2);
        const n = v.getUint16(p, true);
        need(2 + 18 * n);
        const out = [];
        let q = p + 2;
        for (let k = 0; k < n; k++, q += 18)
          out.push({
            addr: v.getBigUint64(q, true),
            len: v.getUint32(q + 8, true),
            flags: v.getUint16(q + 12, true),
            next: v.getUint16(q + 14, true),
            idx: v.getUint16(q + 16, true),
          });
        ev[name] = out;
        p = q;
        break;
      }
      case SEGS: {
        need(2);
        const n = v.getUint16(p, true);
        need(2 + 13 * n);
        const out = [];
        let q = p + 2;
        for (let k = 0; k < n; k++, q += 13) out.push({ gpa: v.getBigUint64(q, true), len: v.getUint32(q + 8, true), write: v.getUint8(q + 12) });
        ev[name] = out;
        p = q;
        break;
      }
      case SEQS: {
        need(2);
        const n = v.getUint16(p, true);
        need(2 + 4 * n);
        const out = [];
        for (let k = 0; k < n; k++) out.push(v.getUint32(p + 2 + 4 * k, true));
        ev[name] = out;
        p += 2 + 4 * n;
        break;
      }
    }
  }
  if (p !== end) throw new CodecError(`event ${seq} (${plan.kind}): ${end - p} trailing bytes`);
  return ev as unknown as DmaEvent;
}

/** Byte length of the event at off (including its length prefix). */
export function sizeAt(buf: Uint8Array, off: number): number {
  return 4 + (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16)) + buf[off + 3]! * 0x1000000;
}

/** Decodes every event of a packed chunk whose first event has seq `seq0`. */
export function decodeChunk(buf: Uint8Array, seq0: number, n: number): DmaEvent[] {
  const out: DmaEvent[] = [];
  let off = 0;
  for (let i = 0; i < n; i++) {
    if (off >= buf.length) throw new CodecError(`event ${seq0 + i}: chunk ends early`);
    out.push(decodeAt(buf, off, seq0 + i));
    off += sizeAt(buf, off);
  }
  if (off !== buf.length) throw new CodecError(`chunk at seq ${seq0}: ${buf.length - off} trailing bytes`);
  return out;
}

export function encodeOne(ev: NewEvent | DmaEvent): Buffer {
  const w = new EventWriter(256);
  w.write(ev);
  return Buffer.from(w.bytes());
}
