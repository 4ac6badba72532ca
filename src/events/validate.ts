// What an event must satisfy on its face, beyond the field types the schema gives (json.ts checks
// those): ranges (no address range wraps past 2^64, sizes that must be positive, rings of a size the
// virtio spec allows, lengths the model can hold), and references (a cause, a seq-valued field or a
// finding's chain names an earlier event; a device or queue was added before it is used).
//
// One declaration per kind (RULES below, keyed like KINDS), checked by one stateful validator that
// walks a trace in seq order: the JSONL import runs every line through it, and so does the fold of
// an imported log. Whether the recorded results agree with the model (a hit through a deleted entry,
// ...) is the checkers' business, not this file's.
import { type DmaEvent, type Kind, KINDS, fieldsOf } from './schema.js';

export class ValidationError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const TWO64 = 1n << 64n;
/** the device id a trace uses when it does not know the device (imports); never needs a dev.add */
export const DEV_ANY = 0xffff;
/**
 * The model keeps IOMMU page tables and shadow mappings per 4 KiB page (model/viommu.ts), so a
 * single map of more than this is refused rather than expanded into millions of entries.
 */
export const MAX_PAGE_RANGE = 1n << 30n;
/**
 * Bytes one device access or CPU read may move: the model reads or writes every byte, so an event's
 * cost must stay near its size on the line (simulated accesses are page-sized fragments; 1 MiB is
 * 256 times that).
 */
export const MAX_ACCESS = 1 << 20;
/** swiotlb: at most IO_TLB_SEGSIZE (128) contiguous 2 KiB slots per mapping, so one bounce moves at most 256 KiB */
export const IO_TLB_SEGSIZE = 128;
export const MAX_BOUNCE = IO_TLB_SEGSIZE * 2048;
/** virtio 1.x: a queue has at most 32768 entries; a split ring's size is a power of 2 */
export const MAX_RING = 32768;

type Rule = (ev: Record<string, unknown>, v: TraceValidator) => void;

const fail = (field: string, msg: string): never => {
  throw new ValidationError(field, msg);
};
const hex = (n: bigint) => '0x' + n.toString(16);

/** [addr, addr+len) must end at or below 2^64 */
const noWrap =
  (addr: string, len: string | ((ev: Record<string, unknown>) => bigint)): Rule =>
  (ev) => {
    const a = ev[addr] as bigint;
    const n = typeof len === 'string' ? BigInt(ev[len] as bigint | number) : len(ev);
    if (a + n > TWO64) fail(typeof len === 'string' ? len : addr, `${addr} ${hex(a)} + ${hex(n)} bytes wraps past 2^64`);
  };
const positive =
  (f: string): Rule =>
  (ev) => {
    if (BigInt(ev[f] as bigint | number) === 0n) fail(f, `${f} must be greater than 0`);
  };
const atMost =
  (f: string, max: bigint | number, why: string): Rule =>
  (ev) => {
    const x = BigInt(ev[f] as bigint | number);
    if (x > BigInt(max)) fail(f, `${f} ${hex(x)} is larger than ${hex(BigInt(max))} (${why})`);
  };
/** the device was added (dev.add) before; DEV_ANY stands for "not known" and needs none */
const knownDev: Rule = (ev, v) => {
  const d = ev.dev as number;
  if (d !== DEV_ANY && !v.devices.has(d)) fail('dev', `device 0x${d.toString(16)} was never added (no earlier dev.add)`);
};
/** the queue was set up (vring.setup) before */
const knownQueue: Rule = (ev, v) => {
  const q = ev.q as number;
  if (!v.queues.has(q)) fail('q', `queue ${q} was never set up (no earlier vring.setup)`);
};
/** a slot/head/id of the ring must lie inside it */
const inRing =
  (...fs: string[]): Rule =>
  (ev, v) => {
    const num = v.queues.get(ev.q as number);
    if (num === undefined) return;
    for (const f of fs) if ((ev[f] as number) >= num) fail(f, `${f} ${ev[f] as number} is outside queue ${ev.q as number} of size ${num}`);
  };
const segsNoWrap =
  (f: string, addr: 'gpa' | 'addr'): Rule =>
  (ev) => {
    (ev[f] as { len: number }[]).forEach((s, i) => {
      const a = (s as unknown as Record<string, bigint>)[addr]!;
      if (a + BigInt(s.len) > TWO64) fail(`${f}[${i}].${addr}`, `${f}[${i}]: ${hex(a)} + ${s.len} bytes wraps past 2^64`);
    });
  };
const bytesOf = (f: string) => (ev: Record<string, unknown>) => BigInt((ev[f] as Uint8Array).length);

/** The per-kind rules. Kinds not listed have only the schema's type checks and the generic ones. */
export const RULES: { readonly [K in Kind]?: readonly Rule[] } = {
  'trace.config': [
    (ev, v) => {
      const text = ev.variants as string;
      if (text === '') return;
      let o: unknown;
      try {
        o = JSON.parse(text);
      } catch {
        return fail('variants', 'variants is not valid JSON');
      }
      if (typeof o !== 'object' || o === null || Array.isArray(o)) fail('variants', 'variants must be a JSON object');
      for (const [k, x] of Object.entries(o as Record<string, unknown>)) v.checkVariant(k, x);
    },
  ],
  'mem.table': [positive('size'), noWrap('gpa', 'size'), noWrap('hva', 'size')],
  'mem.write': [noWrap('gpa', bytesOf('data'))],
  'cpu.read': [knownDev, atMost('len', MAX_ACCESS, 'the most one access may move'), noWrap('gpa', 'len')],
  intent: [knownDev, segsNoWrap('segs', 'gpa')],
  fault: [knownDev, noWrap('iova', 'size')],
  'dev.probe_fail': [knownDev],
  'dev.teardown': [knownDev],
  'vring.setup': [
    knownDev,
    (ev) => {
      const num = ev.num as number;
      if (num < 1 || num > MAX_RING) fail('num', `num ${num}: a virtqueue has 1..${MAX_RING} entries`);
      if (!ev.packed && (num & (num - 1)) !== 0) fail('num', `num ${num}: a split virtqueue's size must be a power of 2`);
    },
  ],
  'vring.post': [knownQueue, inRing('head', 'slot'), segsNoWrap('chain', 'addr'), segsNoWrap('sg', 'gpa')],
  'vring.kick': [knownQueue],
  'vring.used': [knownQueue, inRing('slot'), noWrap('gpa', () => 8n)],
  'vring.irq': [], // imports see the interrupt (virtio_notify) of queues whose setup they never saw
  'vring.getbuf': [knownQueue],
  'vq.event': [knownQueue, noWrap('gpa', () => 2n)],
  'vq.error': [knownQueue],
  'vq.prefetch': [knownQueue],
  'vq.log': [knownQueue],
  'iommu.map': [knownDev, positive('size'), atMost('size', MAX_PAGE_RANGE, 'the model keeps IOMMU page tables per 4 KiB page'), noWrap('iova', 'size'), noWrap('gpa', 'size')],
  'iommu.unmap': [knownDev, positive('size'), noWrap('iova', 'size')],
  'iommu.inv': [knownDev, noWrap('iova', 'size')],
  'iommu.translate': [knownDev],
  'iommu.fault': [knownDev],
  'iommu.notify': [
    knownDev,
    (ev, v) => {
      if (ev.op === 'MAP') atMost('size', MAX_PAGE_RANGE, 'the model keeps shadow mappings per 4 KiB page')(ev, v);
    },
    noWrap('iova', 'size'),
    noWrap('gpa', 'size'),
  ],
  'dma.map': [knownDev, noWrap('phys', 'size'), noWrap('dma', 'size')],
  'dma.map_error': [knownDev],
  'dma.check': [knownDev],
  'dma.unmap': [knownDev, noWrap('dma', 'size')],
  'dma.sync': [knownDev, noWrap('dma', 'size')],
  'swiotlb.slots': [
    knownDev,
    (ev) => {
      const n = ev.nslots as number;
      if (ev.op === 'alloc' && (n < 1 || n > IO_TLB_SEGSIZE)) fail('nslots', `nslots ${n}: swiotlb allocates 1..${IO_TLB_SEGSIZE} slots per mapping (IO_TLB_SEGSIZE)`);
    },
  ],
  'swiotlb.bounce': [knownDev, atMost('size', MAX_BOUNCE, 'swiotlb_max_mapping_size: IO_TLB_SEGSIZE slots of 2 KiB'), noWrap('orig', 'size'), noWrap('tlb', 'size')],
  'iotlb.miss': [knownDev],
  'iotlb.update': [knownDev, noWrap('iova', 'size'), noWrap('uaddr', 'size')],
  'iotlb.invalidate': [knownDev],
  'iotlb.batch': [knownDev],
  'dev.pass': [knownQueue],
  'dev.access': [
    knownQueue,
    atMost('len', MAX_ACCESS, 'the most one access may move'),
    noWrap('dma', 'len'),
    noWrap('gpa', 'len'),
    (ev) => {
      const n = (ev.data as Uint8Array).length;
      if (n !== 0 && n !== ev.len) fail('data', `data holds ${n} bytes, the access is ${ev.len as number} bytes long`);
    },
  ],
  'vq.pop': [knownDev],
  'vq.fill': [knownDev],
};

/** seq-valued fields of each kind (references to earlier events), from the schema */
const SEQ_FIELDS = new Map<Kind, { one: string[]; many: string[] }>();
for (const k of Object.keys(KINDS) as Kind[]) {
  const f = fieldsOf(k);
  SEQ_FIELDS.set(k, { one: f.filter(([, s]) => s === 'seq').map(([n]) => n), many: f.filter(([, s]) => s === 'seqs').map(([n]) => n) });
}

export interface ValidatorOptions {
  /** seqs only increase (the caller inserts events of its own in between), instead of counting up by one */
  gaps?: boolean;
  /** allowed values of each trace.config variant: a list, or 'number' (see model/variants.ts) */
  variants?: Readonly<Record<string, readonly (string | boolean | number)[] | 'number'>>;
}

/** Walks a trace in seq order; check() throws a ValidationError naming the field at the first problem. */
export class TraceValidator {
  readonly devices = new Set<number>();
  /** queue → its size */
  readonly queues = new Map<number, number>();
  private last = 0;

  constructor(private readonly opts: ValidatorOptions = {}) {}

  check(ev: DmaEvent): void {
    const r = ev as unknown as Record<string, unknown>;
    if (this.opts.gaps ? ev.seq <= this.last : ev.seq !== this.last + 1) fail('seq', `seq ${ev.seq} out of order (expected ${this.last + 1})`);
    if (ev.cause >= ev.seq) fail('cause', ev.cause === ev.seq ? `event #${ev.seq} names itself as its cause` : `cause #${ev.cause} is later than the event #${ev.seq}`);
    const refs = SEQ_FIELDS.get(ev.kind)!;
    for (const f of refs.one) if ((r[f] as number) >= ev.seq) fail(f, `${f} #${r[f] as number} is not an earlier event than #${ev.seq}`);
    for (const f of refs.many)
      (r[f] as number[]).forEach((s, i) => {
        if (s >= ev.seq) fail(`${f}[${i}]`, `${f}[${i}] #${s} is not an earlier event than #${ev.seq}`);
      });
    for (const rule of RULES[ev.kind] ?? []) rule(r, this);
    this.last = ev.seq;
    if (ev.kind === 'dev.add') this.devices.add(ev.dev);
    else if (ev.kind === 'vring.setup') this.queues.set(ev.q, ev.num);
  }

  checkVariant(k: string, x: unknown): void {
    const choices = this.opts.variants;
    if (typeof x !== 'string' && typeof x !== 'boolean' && typeof x !== 'number') fail('variants', `variant ${JSON.stringify(k)} must be a string, number or boolean`);
    if (!choices) return;
    if (!Object.hasOwn(choices, k)) fail('variants', `unknown variant ${JSON.stringify(k)}`);
    const c = choices[k]!;
    if (c === 'number' ? !(typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= 0xffff_ffff) : !c.includes(x as string)) fail('variants', `variant ${k} cannot be ${JSON.stringify(x)}`);
  }
}
