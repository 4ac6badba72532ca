// Compact binary form of an event, the form stored in SQLite. Layout of one event:
//   u32 length of what follows | u8 kind code | u8 actor | u32 cause | fields in schema order
// Field encodings (little-endian): u8/u16/u32/seq as such; u64 8 bytes, always a bigint (exact above
// 2^53); enum a u8 index into its list; bytes u32 length + bytes; str u16 length + UTF-8; descs u16
// count + 18 bytes each (u64 addr, u32 len, u16 flags, u16 next, u16 idx); segs u16 count + 13 bytes
// each (u64 gpa, u32 len, u8 write); seqs u16 count + u32 each. Events are packed many to a row (see
// store/), and seq is implicit: a row holds consecutive seqs from its first.
//
// Every event recorded or replayed goes through here, so the codec is specialised per kind: at
// module load the schema table is compiled into one straight-line encoder and one decoder per kind
// (generated source, see compileEncoder/compileDecoder), instead of a per-field switch per event.
// The generic, field-by-field decoder below stays as the reference and the error path: a fast
// decoder that sees anything wrong (short event, bad enum code, trailing bytes) gives up and the
// generic one reports exactly what is wrong.
import { ACTORS, type Actor, type DmaEvent, KINDS, type Kind, type NewEvent, fieldsOf } from './schema.js';

type Op = 'u8' | 'u16' | 'u32' | 'u64' | 'bytes' | 'str' | 'descs' | 'segs' | 'seqs' | 'enum';

interface Plan {
  kind: Kind;
  code: number;
  names: string[];
  ops: Op[];
  enums: (readonly string[] | null)[];
  enumIndex: (Map<string, number> | null)[];
  encode: (w: EventWriter, ev: Record<string, unknown>, actor: number) => number;
  /** null when anything about the event is off: the generic decoder then says what */
  decode: (b: Uint8Array, v: DataView, off: number, end: number, seq: number, actor: Actor, bytes: BytesOf) => DmaEvent | null;
}

const M64 = 0xffff_ffff_ffff_ffffn;
const MAX: Record<string, number> = { u8: 0xff, u16: 0xffff, u32: 0xffffffff };
/** bytes each op takes when its size does not depend on the value */
const FIXED: Partial<Record<Op, number>> = { u8: 1, u16: 2, u32: 4, u64: 8, enum: 1 };

export class CodecError extends Error {}

// --- errors (shared by the generated encoders) -------------------------------------------------------
function numError(name: string, max: number, value: unknown): CodecError {
  return new CodecError(`field ${name}: expected an integer 0..${max}, got ${String(value)}`);
}
function fieldError(name: string, what: string): CodecError {
  return new CodecError(`field ${name}: ${what}`);
}
function enumError(name: string, value: unknown, list: readonly string[]): CodecError {
  return new CodecError(`field ${name}: ${String(value)} is not one of ${list.join('|')}`);
}

// --- code generation ---------------------------------------------------------------------------------
// The generated functions see only the helpers passed to them (no globals), and are plain data-driven
// straight-line code: a kind's encoder validates every field first (nothing is written for an event
// that does not fit, so a rejected event leaves the writer as it was), then reserves the event's exact
// size once and stores the fields at known offsets.
const u32Le = (b: string, p: string, x: string) => `${b}[${p}] = ${x}; ${b}[${p} + 1] = ${x} >>> 8; ${b}[${p} + 2] = ${x} >>> 16; ${b}[${p} + 3] = ${x} >>> 24;`;
// A u64 (a bigint, already checked to be in range) at b[p, p+8): stored through one aligned
// BigUint64Array slot and written out as two u32 words. DataView.setBigUint64 on an unaligned offset
// is a runtime call on Node 20's V8 (~3x the cost); the typed-array store is inlined. Big-endian
// hosts keep the DataView call (the words would be the other way round).
const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const u64Le = (p: string, x: string) =>
  LITTLE ? `{ S64[0] = ${x}; const lo = S32[0], hi = S32[1]; ${u32Le('b', p, 'lo')} ${u32Le('b', `${p} + 4`, 'hi')} }` : `v.setBigUint64(${p}, ${x}, true);`;
/** the first value past a u64: a range check against it is two compares V8 inlines */
const TOP = 1n << 64n;

/**
 * The index of string x in a short list, as a chain of === (a pointer compare for the interned
 * literals the simulation emits; a Map lookup costs ~10 ns), then `otherwise` for anything else.
 */
const enumChain = (list: readonly string[], x: string, otherwise: string) =>
  list.length > 12 ? otherwise : list.map((v, k) => `${x} === ${JSON.stringify(v)} ? ${k} : `).join('') + otherwise;

function compileEncoder(plan: Omit<Plan, 'encode' | 'decode'>): Plan['encode'] {
  const L: string[] = [];
  let fixed = 10; // header
  const varSize: string[] = [];
  plan.ops.forEach((op, i) => {
    const name = JSON.stringify(plan.names[i]);
    const f = `f${i}`;
    L.push(`const ${f} = ev[${name}];`);
    switch (op) {
      case 'u8':
      case 'u16':
      case 'u32':
        // (x >>> 0) === x: a number, an integer, 0 <= x < 2^32 (what Number.isInteger + range says)
        L.push(`if ((${f} >>> 0) !== ${f} || ${f} > ${MAX[op]}) throw numError(${name}, ${MAX[op]}, ${f});`);
        break;
      case 'u64':
        L.push(`if (typeof ${f} !== 'bigint' || !(${f} >= 0n && ${f} < TOP)) throw fieldError(${name}, 'expected a 64-bit unsigned bigint');`);
        break;
      case 'enum':
        L.push(`const e${i} = ${enumChain(plan.enums[i]!, f, `ENUM[${i}].get(${f})`)};`);
        L.push(`if (e${i} === undefined) throw enumError(${name}, ${f}, ENUMS[${i}]);`);
        break;
      case 'bytes':
        L.push(`if (!(${f} instanceof Uint8Array)) throw fieldError(${name}, 'expected bytes');`);
        varSize.push(`${f}.length`);
        break;
      case 'str':
        L.push(`if (typeof ${f} !== 'string') throw fieldError(${name}, 'expected a string');`);
        L.push(`const n${i} = Buffer.byteLength(${f});`);
        L.push(`if (n${i} > 0xffff) throw fieldError(${name}, 'string too long');`);
        varSize.push(`n${i}`);
        break;
      case 'descs':
        L.push(`if (!Array.isArray(${f})) throw fieldError(${name}, 'expected a descriptor list');`);
        L.push(`if (${f}.length > 0xffff) throw numError(${name}, 0xffff, ${f}.length);`);
        L.push(`for (let k = 0; k < ${f}.length; k++) checkDesc(${f}[k], ${name});`);
        varSize.push(`18 * ${f}.length`);
        break;
      case 'segs':
        L.push(`if (!Array.isArray(${f})) throw fieldError(${name}, 'expected a scatter-gather list');`);
        L.push(`if (${f}.length > 0xffff) throw numError(${name}, 0xffff, ${f}.length);`);
        L.push(`for (let k = 0; k < ${f}.length; k++) checkSeg(${f}[k], ${name});`);
        varSize.push(`13 * ${f}.length`);
        break;
      case 'seqs':
        L.push(`if (!Array.isArray(${f})) throw fieldError(${name}, 'expected a list of seqs');`);
        L.push(`if (${f}.length > 0xffff) throw numError(${name}, 0xffff, ${f}.length);`);
        L.push(`for (let k = 0; k < ${f}.length; k++) { const s = ${f}[k]; if ((s >>> 0) !== s) throw numError(${name}, 0xffffffff, s); }`);
        varSize.push(`4 * ${f}.length`);
        break;
    }
    fixed += FIXED[op] ?? (op === 'bytes' ? 4 : 2); // variable fields: their length prefix
  });
  L.push(`const size = ${[String(fixed), ...varSize].join(' + ')};`);
  L.push(`const at = w.reserve(size);`);
  L.push(`const b = w.buf, v = w.view, cause = ev.cause >>> 0, len = size - 4;`);
  L.push(u32Le('b', 'at', 'len'));
  L.push(`b[at + 4] = ${plan.code}; b[at + 5] = actor;`);
  L.push(u32Le('b', 'at + 6', 'cause'));
  L.push(`let p = at + 10;`);
  plan.ops.forEach((op, i) => {
    const f = `f${i}`;
    switch (op) {
      case 'u8':
        L.push(`b[p] = ${f}; p += 1;`);
        break;
      case 'u16':
        L.push(`b[p] = ${f}; b[p + 1] = ${f} >>> 8; p += 2;`);
        break;
      case 'u32':
        L.push(u32Le('b', 'p', f), `p += 4;`);
        break;
      case 'u64':
        L.push(u64Le('p', f), `p += 8;`);
        break;
      case 'enum':
        L.push(`b[p] = e${i}; p += 1;`);
        break;
      case 'bytes':
        L.push(`{ const n = ${f}.length; ${u32Le('b', 'p', 'n')} p += 4;`);
        // short copies (ring indices, descriptors) are cheaper as a loop than as a native set()
        L.push(`  if (n <= 32) for (let k = 0; k < n; k++) b[p + k] = ${f}[k]; else b.set(${f}, p); p += n; }`);
        break;
      case 'str':
        L.push(`b[p] = n${i}; b[p + 1] = n${i} >>> 8; p += 2; if (n${i}) b.write(${f}, p, n${i}, 'utf8'); p += n${i};`);
        break;
      case 'descs':
        L.push(`{ const a = ${f}, n = a.length; b[p] = n; b[p + 1] = n >>> 8; p += 2;`);
        L.push(`  for (let k = 0; k < n; k++, p += 18) { const d = a[k]; ${u64Le('p', 'd.addr')} const l = d.len;`);
        L.push(`    ${u32Le('b', 'p + 8', 'l')} b[p + 12] = d.flags; b[p + 13] = d.flags >>> 8; b[p + 14] = d.next; b[p + 15] = d.next >>> 8; b[p + 16] = d.idx; b[p + 17] = d.idx >>> 8; } }`);
        break;
      case 'segs':
        L.push(`{ const a = ${f}, n = a.length; b[p] = n; b[p + 1] = n >>> 8; p += 2;`);
        L.push(`  for (let k = 0; k < n; k++, p += 13) { const g = a[k]; ${u64Le('p', 'g.gpa')} const l = g.len; ${u32Le('b', 'p + 8', 'l')} b[p + 12] = g.write; } }`);
        break;
      case 'seqs':
        L.push(`{ const a = ${f}, n = a.length; b[p] = n; b[p + 1] = n >>> 8; p += 2;`);
        L.push(`  for (let k = 0; k < n; k++, p += 4) { const s = a[k]; ${u32Le('b', 'p', 's')} } }`);
        break;
    }
  });
  L.push(`return at;`);
  const src = `return function encode_${plan.kind.replace(/\W/g, '_')}(w, ev, actor) {\n  ${L.join('\n  ')}\n};`;
  const ENUM = plan.enumIndex;
  const ENUMS = plan.enums;
  const S64 = new BigUint64Array(1);
  return new Function('TOP', 'S64', 'S32', 'ENUM', 'ENUMS', 'numError', 'fieldError', 'enumError', 'checkDesc', 'checkSeg', src)(
    TOP,
    S64,
    new Uint32Array(S64.buffer),
    ENUM,
    ENUMS,
    numError,
    fieldError,
    enumError,
    checkDesc,
    checkSeg,
  ) as Plan['encode'];
}

function checkDesc(d: { addr: unknown; len: unknown; flags: unknown; next: unknown; idx: unknown }, name: string): void {
  if (typeof d.addr !== 'bigint' || d.addr < 0n || d.addr > M64) throw fieldError(name, 'descriptor addr must be a bigint');
  checkNum(d.len, `${name}.len`, 0xffffffff);
  checkNum(d.flags, `${name}.flags`, 0xffff);
  checkNum(d.next, `${name}.next`, 0xffff);
  checkNum(d.idx, `${name}.idx`, 0xffff);
}

function checkSeg(g: { gpa: unknown; len: unknown; write: unknown }, name: string): void {
  if (typeof g.gpa !== 'bigint' || g.gpa < 0n || g.gpa > M64) throw fieldError(name, 'gpa must be a 64-bit bigint');
  checkNum(g.len, `${name}.len`, 0xffffffff);
  checkNum(g.write, `${name}.write`, 1);
}

function checkNum(value: unknown, name: string, max: number): void {
  if ((value as number) >>> 0 !== value || (value as number) > max) throw numError(name, max, value);
}

function compileDecoder(plan: Omit<Plan, 'encode' | 'decode'>): Plan['decode'] {
  const L: string[] = [`let p = off + 10;`];
  const names: string[] = [];
  // one bounds check per run of fixed-size fields
  let run = 0;
  const flush = () => {
    if (run) L.splice(runAt, 0, `if (p + ${run} > end) return null;`);
    run = 0;
  };
  let runAt = L.length;
  plan.ops.forEach((op, i) => {
    const f = `f${i}`;
    names.push(`${JSON.stringify(plan.names[i])}: ${f}`);
    if (FIXED[op] !== undefined) {
      if (!run) runAt = L.length;
      run += FIXED[op]!;
    } else flush();
    switch (op) {
      case 'u8':
        L.push(`const ${f} = b[p]; p += 1;`);
        break;
      case 'u16':
        L.push(`const ${f} = b[p] | (b[p + 1] << 8); p += 2;`);
        break;
      case 'u32':
        L.push(`const ${f} = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000; p += 4;`);
        break;
      case 'u64':
        L.push(`const ${f} = v.getBigUint64(p, true); p += 8;`);
        break;
      case 'enum':
        L.push(`const ${f} = ENUMS[${i}][b[p]]; if (${f} === undefined) return null; p += 1;`);
        break;
      case 'bytes':
        L.push(`if (p + 4 > end) return null; const n${i} = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000; p += 4;`);
        L.push(`if (p + n${i} > end) return null; const ${f} = bytes(b, p, n${i}); p += n${i};`);
        break;
      case 'str':
        L.push(`if (p + 2 > end) return null; const n${i} = b[p] | (b[p + 1] << 8); p += 2;`);
        L.push(`if (p + n${i} > end) return null; const ${f} = utf8(b, p, n${i}); p += n${i};`);
        break;
      case 'descs':
        L.push(`if (p + 2 > end) return null; const n${i} = b[p] | (b[p + 1] << 8); p += 2; if (p + 18 * n${i} > end) return null;`);
        L.push(`const ${f} = []; for (let k = 0; k < n${i}; k++, p += 18)`);
        L.push(`  ${f}.push({ idx: b[p + 16] | (b[p + 17] << 8), addr: v.getBigUint64(p, true), len: (b[p + 8] | (b[p + 9] << 8) | (b[p + 10] << 16)) + b[p + 11] * 0x1000000, flags: b[p + 12] | (b[p + 13] << 8), next: b[p + 14] | (b[p + 15] << 8) });`);
        break;
      case 'segs':
        L.push(`if (p + 2 > end) return null; const n${i} = b[p] | (b[p + 1] << 8); p += 2; if (p + 13 * n${i} > end) return null;`);
        L.push(`const ${f} = []; for (let k = 0; k < n${i}; k++, p += 13)`);
        L.push(`  ${f}.push({ gpa: v.getBigUint64(p, true), len: (b[p + 8] | (b[p + 9] << 8) | (b[p + 10] << 16)) + b[p + 11] * 0x1000000, write: b[p + 12] });`);
        break;
      case 'seqs':
        L.push(`if (p + 2 > end) return null; const n${i} = b[p] | (b[p + 1] << 8); p += 2; if (p + 4 * n${i} > end) return null;`);
        L.push(`const ${f} = []; for (let k = 0; k < n${i}; k++, p += 4) ${f}.push((b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000);`);
        break;
    }
  });
  flush();
  L.push(`if (p !== end) return null;`);
  // one object literal per kind: every decoded event of a kind has the same shape, and it is the shape
  // the simulation emits (kind, actor, cause, fields, seq last): rules and checkers optimised while
  // simulating stay optimised when they fold a stored trace (seek after record, replay, bisect)
  L.push(`return { kind: ${JSON.stringify(plan.kind)}, actor, cause: (b[off + 6] | (b[off + 7] << 8) | (b[off + 8] << 16)) + b[off + 9] * 0x1000000${names.map((n) => `, ${n}`).join('')}, seq };`);
  const src = `return function decode_${plan.kind.replace(/\W/g, '_')}(b, v, off, end, seq, actor, bytes) {\n  ${L.join('\n  ')}\n};`;
  return new Function('ENUMS', 'utf8', src)(plan.enums, utf8) as Plan['decode'];
}

/** How a decoder gets a bytes field out of the chunk: a copy (the default), or a view (decodeAt's `shared`). */
type BytesOf = (b: Uint8Array, p: number, n: number) => Uint8Array;

/** A copy of b[p, p+n) the decoded event owns (the chunk it came from is reused or freed). */
function copyBytes(b: Uint8Array, p: number, n: number): Uint8Array {
  if (n > 32) return new Uint8Array(b.subarray(p, p + n));
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[k] = b[p + k]!;
  return out;
}

/** UTF-8 text at b[p, p+n): short ASCII (actor lists, names) without a Buffer per string. */
function utf8(b: Uint8Array, p: number, n: number): string {
  if (n <= 32) {
    let s = '';
    for (let k = 0; k < n; k++) {
      const c = b[p + k]!;
      if (c > 0x7f) return Buffer.from(b.buffer, b.byteOffset + p, n).toString('utf8');
      s += String.fromCharCode(c);
    }
    return s;
  }
  return Buffer.from(b.buffer, b.byteOffset + p, n).toString('utf8');
}

// --- plans -------------------------------------------------------------------------------------------
const PLANS: Plan[] = [];
const PLAN_BY_KIND = new Map<string, Plan>();
for (const kind of Object.keys(KINDS) as Kind[]) {
  const base: Omit<Plan, 'encode' | 'decode'> = { kind, code: KINDS[kind].code, names: [], ops: [], enums: [], enumIndex: [] };
  for (const [name, spec] of fieldsOf(kind)) {
    base.names.push(name);
    if (typeof spec === 'object') {
      base.ops.push('enum');
      base.enums.push(spec.enum);
      base.enumIndex.push(new Map(spec.enum.map((v, i) => [v, i])));
      continue;
    }
    base.enums.push(null);
    base.enumIndex.push(null);
    base.ops.push(spec === 'seq' ? 'u32' : spec);
  }
  const plan: Plan = { ...base, encode: compileEncoder(base), decode: compileDecoder(base) };
  PLANS[plan.code] = plan;
  PLAN_BY_KIND.set(kind, plan);
}
const ACTOR_CODE = new Map<string, number>(ACTORS.map((a, i) => [a, i]));
// The kinds a simulated trace is mostly made of (a remap or net workload: device accesses and passes,
// the IOTLB and DMA-API traffic of each buffer), most frequent first: found by === before the Map.
const HOT_KINDS: readonly Kind[] = ['dev.access', 'dev.pass', 'vq.prefetch', 'iotlb.update', 'iommu.map', 'dma.map', 'dma.check', 'iotlb.miss', 'dma.unmap', 'iommu.unmap', 'iommu.inv', 'iotlb.invalidate'];
const planOf = new Function(
  'PLAN_BY_KIND',
  'HOT',
  `return (k) => ${HOT_KINDS.map((kind, i) => `k === ${JSON.stringify(kind)} ? HOT[${i}] : `).join('')}PLAN_BY_KIND.get(k);`,
)(PLAN_BY_KIND, HOT_KINDS.map((k) => PLAN_BY_KIND.get(k)!)) as (k: string) => Plan | undefined;
const actorCode = new Function('ACTOR_CODE', `return (a) => ${enumChain(ACTORS, 'a', 'ACTOR_CODE.get(a)')};`)(ACTOR_CODE) as (a: string) => number | undefined;

/** A growable byte buffer that events are appended to. */
export class EventWriter {
  buf: Buffer;
  view: DataView;
  pos = 0;
  constructor(initial = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initial);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }
  /** Makes room for n more bytes and returns where they start (the caller fills them). */
  reserve(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) this.grow(at + n);
    this.pos = at + n;
    return at;
  }
  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
  reset(): void {
    this.pos = 0;
  }
  /**
   * Hands over what was written (a Buffer that owns its ArrayBuffer alone, so it can be transferred
   * to another thread) and starts again on a fresh buffer of `next` bytes.
   */
  take(next = this.buf.length): Buffer {
    let out = this.buf.subarray(0, this.pos);
    if (this.buf.byteOffset !== 0 || this.buf.buffer.byteLength !== this.buf.byteLength) {
      // a small first buffer may come from Node's pool, shared with other Buffers: copy it out
      const own = Buffer.allocUnsafeSlow(this.pos);
      out.copy(own);
      out = own;
    }
    this.buf = Buffer.allocUnsafeSlow(next); // never from Node's shared pool: its ArrayBuffer is its own
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.pos = 0;
    return out;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /**
   * Appends one event; returns its offset. An event that does not fit the schema throws and writes
   * nothing. `kind`: the event's kind, when the caller has read it already (see Recorder.event).
   */
  write(ev: NewEvent | DmaEvent, kind: string = ev.kind): number {
    const plan = planOf(kind);
    if (!plan) throw new CodecError(`unknown event kind ${String(kind)}`);
    const actor = actorCode(ev.actor);
    if (actor === undefined) throw new CodecError(`unknown actor ${String(ev.actor)}`);
    return plan.encode(this, ev as unknown as Record<string, unknown>, actor);
  }
}

// decodeAt is called once per event, mostly many times on the same chunk: keep that chunk's view.
let viewOf: Uint8Array | null = null;
let view: DataView | null = null;
function dataView(buf: Uint8Array): DataView {
  if (buf !== viewOf) {
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    viewOf = buf;
  }
  return view!;
}

/**
 * b[p, p+n) itself, for a reader that consumes each event before the chunk can change and keeps none
 * of its bytes (fold into a world: the rules copy what they keep into guest pages). A bytes field
 * longer than 64 bytes costs V8 a backing store of its own when copied, the main cost of decoding a
 * device access's data; a view costs a small object.
 */
function viewBytes(b: Uint8Array, p: number, n: number): Uint8Array {
  // most device accesses are reads, which carry no bytes: one shared empty array instead of a view each
  return n === 0 ? NO_BYTES : new Uint8Array(b.buffer, b.byteOffset + p, n);
}
/** A zero-length array (nothing to write into; frozen all the same), shared by every empty bytes field decoded `shared`. */
const NO_BYTES = Object.freeze(new Uint8Array(0)) as Uint8Array;

/**
 * Decodes the event at `off` in `buf` (which must hold its whole length prefix and body). With
 * `shared`, the event's bytes fields are views of `buf` rather than copies: only for a caller that
 * is done with the event before `buf` changes and keeps none of its bytes.
 */
export function decodeAt(buf: Uint8Array, off: number, seq: number, shared = false): DmaEvent {
  if (off + 10 <= buf.length) {
    const end = off + sizeAt(buf, off);
    const plan = PLANS[buf[off + 4]!];
    const actor = ACTORS[buf[off + 5]!];
    if (end <= buf.length && plan && actor) {
      const ev = plan.decode(buf, dataView(buf), off, end, seq, actor, shared ? viewBytes : copyBytes);
      if (ev) return ev;
    }
  }
  return decodeChecked(buf, off, seq); // throws the precise CodecError
}

/** The reference decoder, field by field with every check: what decodeAt falls back to on bad input. */
function decodeChecked(buf: Uint8Array, off: number, seq: number): DmaEvent {
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
      case 'u8':
        need(1);
        ev[name] = v.getUint8(p);
        p += 1;
        break;
      case 'u16':
        need(2);
        ev[name] = v.getUint16(p, true);
        p += 2;
        break;
      case 'u32':
        need(4);
        ev[name] = v.getUint32(p, true);
        p += 4;
        break;
      case 'u64':
        need(8);
        ev[name] = v.getBigUint64(p, true);
        p += 8;
        break;
      case 'enum': {
        need(1);
        const val = plan.enums[i]![v.getUint8(p)];
        if (val === undefined) throw new CodecError(`event ${seq} (${plan.kind}): bad ${name} code`);
        ev[name] = val;
        p += 1;
        break;
      }
      case 'bytes': {
        need(4);
        const n = v.getUint32(p, true);
        need(4 + n);
        ev[name] = new Uint8Array(buf.subarray(p + 4, p + 4 + n));
        p += 4 + n;
        break;
      }
      case 'str': {
        need(2);
        const n = v.getUint16(p, true);
        need(2 + n);
        ev[name] = Buffer.from(buf.buffer, buf.byteOffset + p + 2, n).toString('utf8');
        p += 2 + n;
        break;
      }
      case 'descs': {
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
      case 'segs': {
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
      case 'seqs': {
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

/** Kind code of the event at off (a peek: nothing else is decoded). */
export function kindCodeAt(buf: Uint8Array, off: number): number {
  return buf[off + 4]!;
}

/**
 * Where a field of a kind lies from the start of its event (length prefix included), for peeking at
 * it without decoding; null if a variable-size field precedes it.
 */
export function fieldOffset(kind: Kind, field: string): number | null {
  const plan = PLAN_BY_KIND.get(kind)!;
  let at = 10;
  for (let i = 0; i < plan.names.length; i++) {
    if (plan.names[i] === field) return at;
    const size = FIXED[plan.ops[i]!];
    if (size === undefined) return null;
    at += size;
  }
  throw new Error(`${kind} has no field ${field}`);
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

/** The generated source of a kind's encoder and decoder (for reading them when debugging the codec). */
export function codecSource(kind: Kind): { encode: string; decode: string } {
  const plan = PLAN_BY_KIND.get(kind)!;
  return { encode: plan.encode.toString(), decode: plan.decode.toString() };
}

