// Serialized form of a world (checkpoints, `state --json`) and its hash. Layout of a checkpoint
// blob: u32 length of a JSON header, the header (every field but guest memory, 64-bit values as hex
// strings; plus the simulation's RNG states and fault counters), then each guest page as u64 pfn +
// 4096 bytes, in the map's order. The state hash is SHA-256 of the blob without the simulation
// state, so two worlds hash equal only if every field and every byte is equal. Fields are spelled
// out: the hash must not depend on the key order an object happened to be built in.
import { createHash } from 'node:crypto';
import type { SimState } from '../sim/sim.js';
import { PAGE } from '../model/memory.js';
import type { DeviceState, RingState, World } from '../model/world.js';
import type { DirName, PathName, PermName, TranslateMode } from '../model/types.js';
import type { Variants } from '../model/variants.js';
import { type DmaLive, liveAdd, liveEntries } from '../model/dma-live.js';
import { virtioIommuFromPlain, virtioIommuToPlain } from '../model/virtio-iommu.js';

const h = (v: bigint) => '0x' + v.toString(16);
const b = (s: string) => BigInt(s);
const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');

function deviceToPlain(d: DeviceState) {
  return {
    dev: d.dev,
    name: d.name,
    path: d.path,
    useDmaApi: d.useDmaApi,
    translate: d.translate,
    backend: d.backend,
    dmaMask: h(d.dmaMask),
    features: h(d.features),
    probed: d.probed,
    iommu: [...d.iommu].map(([pfn, p]) => ({ iova: h(pfn << 12n), gpa: h(p.gpa), perm: p.perm, seq: p.seq })),
    iovas: d.iovas.map((r) => ({ start: h(r.start), size: h(r.size) })),
    fq: d.fq.map((r) => ({ start: h(r.start), size: h(r.size) })),
    iotlb: {
      entries: d.iotlb.entries.map((e) => ({ start: h(e.start), last: h(e.last), uaddr: h(e.uaddr), perm: e.perm, seq: e.seq })),
      pending: d.iotlb.pending.map((m) => ({ q: m.q, iova: h(m.iova), perm: m.perm, seq: m.seq })),
    },
    shadow: [...d.shadow].map(([pfn, s]) => ({ iova: h(pfn << 12n), gpa: h(s.gpa), seq: s.seq })),
    dmaLive: [...liveEntries(d.dmaLive)].map(([dma, m]) => ({ dma: h(dma), phys: h(m.phys), size: m.size, dir: m.dir, type: m.type, seq: m.seq, checked: m.checked })),
    unmapSeq: [...d.unmapSeq].map(([pfn, seq]) => ({ iova: h(pfn << 12n), seq })),
    inBatch: d.inBatch,
  };
}

function ringToPlain(r: RingState) {
  return {
    q: r.q,
    dev: r.dev,
    num: r.num,
    packed: r.packed,
    eventIdx: r.eventIdx,
    desc: h(r.desc),
    avail: h(r.avail),
    used: h(r.used),
    descGpa: h(r.descGpa),
    availGpa: h(r.availGpa),
    usedGpa: h(r.usedGpa),
    free: r.free,
    extra: [...r.extra].map(([head, p]) => ({
      head,
      chain: p.chain.map((d) => ({ idx: d.idx, addr: h(d.addr), len: d.len, flags: d.flags, next: d.next })),
      sg: p.sg.map((g) => ({ gpa: h(g.gpa), len: g.len, write: g.write })),
      table: h(p.table),
      tableGpa: h(p.tableGpa),
      op: p.op,
    })),
    availIdx: r.availIdx,
    lastUsed: r.lastUsed,
    availWrap: r.availWrap,
    usedWrap: r.usedWrap,
    lastUsedWrap: r.lastUsedWrap,
    lastAvail: r.lastAvail,
    usedIdx: r.usedIdx,
    served: r.served,
    kicked: r.kicked,
    parked: r.parked,
    broken: r.broken,
    meta: { desc: r.meta.desc, avail: r.meta.avail, used: r.meta.used },
    // only when not the default, so worlds without life-cycle events hash as before
    ...(r.enabled ? {} : { enabled: false }),
  };
}

export function worldToPlain(w: World) {
  const held = (x: World['vmm']['held'][number]) => ({ dev: x.dev, iova: h(x.iova), gpa: h(x.gpa), perm: x.perm, miss: x.miss });
  return {
    workload: w.workload,
    protected: w.protected,
    variants: w.variants,
    memTable: w.memTable.map((r) => ({ gpa: h(r.gpa), size: h(r.size), hva: h(r.hva) })),
    devices: [...w.devices.values()].map(deviceToPlain),
    rings: w.rings.map(ringToPlain),
    swiotlb: {
      next: w.swiotlb.next,
      slots: [...w.swiotlb.slots].map(([index, m]) => ({ index, dev: m.dev, orig: h(m.orig), size: m.size, nslots: m.nslots, offset: m.offset, dirty: m.dirty, init: b64(m.init) })),
    },
    shared: w.shared.map((r) => ({ start: h(r.start), size: h(r.size) })),
    vmm: {
      invals: w.vmm.invals.map((i) => ({ dev: i.dev, iova: h(i.iova), size: h(i.size), req: i.req, due: i.due })),
      toRead: w.vmm.toRead,
      held: w.vmm.held.map(held),
      lastTranslate: w.vmm.lastTranslate && held(w.vmm.lastTranslate),
    },
    passes: w.passes,
    inPass: w.inPass,
    guest: { ops: w.guest.ops, irq: w.guest.irq },
    findings: w.findings,
    // only when used, so worlds without virtio-iommu events hash as before
    ...(w.virtioIommu.domains.size || w.virtioIommu.endpoints.size ? { virtioIommu: virtioIommuToPlain(w.virtioIommu) } : {}),
  };
}

export type PlainWorld = ReturnType<typeof worldToPlain>;

function liveFromPlain(list: ReturnType<typeof deviceToPlain>['dmaLive']): DmaLive {
  const l: DmaLive = new Map();
  for (const m of list) liveAdd(l, b(m.dma), { phys: b(m.phys), size: m.size, dir: m.dir as DirName, type: m.type, seq: m.seq, checked: m.checked });
  return l;
}

function deviceFromPlain(p: ReturnType<typeof deviceToPlain>): DeviceState {
  return {
    dev: p.dev,
    name: p.name,
    path: p.path as PathName,
    useDmaApi: p.useDmaApi,
    translate: p.translate as TranslateMode,
    backend: p.backend,
    dmaMask: b(p.dmaMask),
    features: b(p.features),
    probed: p.probed,
    iommu: new Map(p.iommu.map((e) => [b(e.iova) >> 12n, { gpa: b(e.gpa), perm: e.perm as PermName, seq: e.seq }])),
    iovas: p.iovas.map((r) => ({ start: b(r.start), size: b(r.size) })),
    fq: p.fq.map((r) => ({ start: b(r.start), size: b(r.size) })),
    iotlb: {
      entries: p.iotlb.entries.map((e) => ({ start: b(e.start), last: b(e.last), uaddr: b(e.uaddr), perm: e.perm as PermName, seq: e.seq })),
      pending: p.iotlb.pending.map((m) => ({ q: m.q, iova: b(m.iova), perm: m.perm as PermName, seq: m.seq })),
    },
    shadow: new Map(p.shadow.map((s) => [b(s.iova) >> 12n, { gpa: b(s.gpa), seq: s.seq }])),
    dmaLive: liveFromPlain(p.dmaLive),
    unmapSeq: new Map(p.unmapSeq.map((u) => [b(u.iova) >> 12n, u.seq])),
    inBatch: p.inBatch,
  };
}

export function worldFromPlain(p: PlainWorld, mem: Map<bigint, Uint8Array>): World {
  const held = (x: { dev: number; iova: string; gpa: string; perm: PermName; miss: number }) => ({ dev: x.dev, iova: b(x.iova), gpa: b(x.gpa), perm: x.perm, miss: x.miss });
  return {
    workload: p.workload,
    protected: p.protected,
    variants: p.variants as Variants,
    mem,
    memTable: p.memTable.map((r) => ({ gpa: b(r.gpa), size: b(r.size), hva: b(r.hva) })),
    devices: new Map(p.devices.map((d) => [d.dev, deviceFromPlain(d)])),
    rings: p.rings.map((r) => ({
      ...r,
      desc: b(r.desc),
      avail: b(r.avail),
      used: b(r.used),
      descGpa: b(r.descGpa),
      availGpa: b(r.availGpa),
      usedGpa: b(r.usedGpa),
      free: [...r.free],
      extra: new Map(
        r.extra.map((x) => [
          x.head,
          {
            chain: x.chain.map((d) => ({ idx: d.idx, addr: b(d.addr), len: d.len, flags: d.flags, next: d.next })),
            sg: x.sg.map((g) => ({ gpa: b(g.gpa), len: g.len, write: g.write })),
            table: b(x.table),
            tableGpa: b(x.tableGpa),
            op: x.op,
          },
        ]),
      ),
      meta: { ...r.meta },
      enabled: (r as { enabled?: boolean }).enabled ?? true,
    })),
    swiotlb: {
      next: p.swiotlb.next,
      slots: new Map(
        p.swiotlb.slots.map((s) => [
          s.index,
          { dev: s.dev, orig: b(s.orig), size: s.size, nslots: s.nslots, offset: s.offset, dirty: s.dirty, init: new Uint8Array(Buffer.from(s.init, 'base64')) },
        ]),
      ),
    },
    shared: p.shared.map((r) => ({ start: b(r.start), size: b(r.size) })),
    vmm: {
      invals: p.vmm.invals.map((i) => ({ dev: i.dev, iova: b(i.iova), size: b(i.size), req: i.req, due: i.due })),
      toRead: [...p.vmm.toRead],
      held: p.vmm.held.map((x) => held(x as never)),
      lastTranslate: p.vmm.lastTranslate ? held(p.vmm.lastTranslate as never) : null,
    },
    passes: p.passes,
    inPass: p.inPass,
    guest: { ...p.guest },
    findings: p.findings,
    virtioIommu: virtioIommuFromPlain((p as { virtioIommu?: ReturnType<typeof virtioIommuToPlain> }).virtioIommu),
  };
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
    out.writeBigUInt64LE(pfn, p);
    out.set(page, p + 8);
    p += 8 + PAGE;
  }
  return out;
}

export function decodeCheckpoint(seq: number, blob: Uint8Array): Checkpoint {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const n = buf.readUInt32LE(0);
  const head = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as { world: PlainWorld; sim: SimState | null };
  const mem = new Map<bigint, Uint8Array>();
  for (let p = 4 + n; p < buf.length; p += 8 + PAGE) mem.set(buf.readBigUInt64LE(p), new Uint8Array(buf.subarray(p + 8, p + 8 + PAGE)));
  return { seq, world: worldFromPlain(head.world, mem), sim: head.sim };
}

export function hashBytes(blob: Uint8Array): string {
  return createHash('sha256').update(blob).digest('hex');
}

/** The state hash of a world (the same hash checkpoints store). */
export function stateHash(world: World): string {
  return hashBytes(encodeCheckpoint(world, null));
}
