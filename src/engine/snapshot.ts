// Serialized form of a world (checkpoints, `state --json`) and its hash. Layout of a checkpoint
// blob: u32 length of a JSON header, the header (every field but guest memory, 64-bit values as hex
// strings), then each guest page as u64 pfn + 4096 bytes, in the map's order. The state hash is
// SHA-256 of that blob, so two worlds hash equal only if every field and every byte is equal.
import { createHash } from 'node:crypto';
import type { RngState } from '../sim/rng.js';
import { PAGE } from '../model/memory.js';
import type { World } from '../model/world.js';
import type { PermName, PathName, DirName } from '../model/types.js';

const h = (v: bigint) => '0x' + v.toString(16);
const b = (s: string) => BigInt(s);

export function worldToPlain(w: World) {
  return {
    path: w.path,
    workload: w.workload,
    memTable: w.memTable.map((r) => ({ gpa: h(r.gpa), size: h(r.size), hva: h(r.hva) })),
    iommu: [...w.iommu].map(([pfn, p]) => ({ iova: h(pfn << 12n), gpa: h(p.gpa), perm: p.perm, seq: p.seq })),
    iotlb: {
      entries: w.iotlb.entries.map((e) => ({ start: h(e.start), last: h(e.last), uaddr: h(e.uaddr), perm: e.perm, seq: e.seq })),
      pending: w.iotlb.pending.map((m) => ({ q: m.q, iova: h(m.iova), perm: m.perm, seq: m.seq })),
    },
    rings: w.rings.map((r) => ({
      q: r.q,
      num: r.num,
      desc: h(r.desc),
      avail: h(r.avail),
      used: h(r.used),
      descGpa: h(r.descGpa),
      availGpa: h(r.availGpa),
      usedGpa: h(r.usedGpa),
      free: r.free,
      // fields spelled out: the hash must not depend on the key order an object happened to be built in
      extra: [...r.extra].map(([head, chain]) => ({ head, chain: chain.map((d) => ({ idx: d.idx, addr: h(d.addr), len: d.len, flags: d.flags, next: d.next })) })),
      availIdx: r.availIdx,
      lastUsed: r.lastUsed,
      lastAvail: r.lastAvail,
      usedIdx: r.usedIdx,
      kicked: r.kicked,
      parked: r.parked,
    })),
    dmaLive: [...w.dmaLive].map(([dma, m]) => ({ dma: h(dma), phys: h(m.phys), size: m.size, dir: m.dir, seq: m.seq })),
    iovas: w.iovas.map((r) => ({ start: h(r.start), size: h(r.size) })),
    vmm: { invals: w.vmm.invals.map((i) => ({ iova: h(i.iova), size: h(i.size), req: i.req, due: i.due })), toRead: w.vmm.toRead },
    unmapSeq: [...w.unmapSeq].map(([pfn, seq]) => ({ iova: h(pfn << 12n), seq })),
    passes: w.passes,
    inPass: w.inPass,
    guest: { ops: w.guest.ops, irq: w.guest.irq },
    findings: w.findings,
  };
}

export type PlainWorld = ReturnType<typeof worldToPlain>;

export function worldFromPlain(p: PlainWorld, mem: Map<bigint, Uint8Array>): World {
  return {
    path: p.path as PathName,
    workload: p.workload,
    mem,
    memTable: p.memTable.map((r) => ({ gpa: b(r.gpa), size: b(r.size), hva: b(r.hva) })),
    iommu: new Map(p.iommu.map((e) => [b(e.iova) >> 12n, { gpa: b(e.gpa), perm: e.perm as PermName, seq: e.seq }])),
    iotlb: {
      entries: p.iotlb.entries.map((e) => ({ start: b(e.start), last: b(e.last), uaddr: b(e.uaddr), perm: e.perm as PermName, seq: e.seq })),
      pending: p.iotlb.pending.map((m) => ({ q: m.q, iova: b(m.iova), perm: m.perm as PermName, seq: m.seq })),
    },
    rings: p.rings.map((r) => ({
      ...r,
      desc: b(r.desc),
      avail: b(r.avail),
      used: b(r.used),
      descGpa: b(r.descGpa),
      availGpa: b(r.availGpa),
      usedGpa: b(r.usedGpa),
      free: [...r.free],
      extra: new Map(r.extra.map((x) => [x.head, x.chain.map((d) => ({ ...d, addr: b(d.addr) }))])),
    })),
    dmaLive: new Map(p.dmaLive.map((m) => [b(m.dma), { phys: b(m.phys), size: m.size, dir: m.dir as DirName, seq: m.seq }])),
    iovas: p.iovas.map((r) => ({ start: b(r.start), size: b(r.size) })),
    vmm: { invals: p.vmm.invals.map((i) => ({ iova: b(i.iova), size: b(i.size), req: i.req, due: i.due })), toRead: [...p.vmm.toRead] },
    unmapSeq: new Map(p.unmapSeq.map((u) => [b(u.iova) >> 12n, u.seq])),
    passes: p.passes,
    inPass: p.inPass,
    guest: { ...p.guest },
    findings: p.findings,
  };
}

export interface Checkpoint {
  seq: number;
  world: World;
  rng: RngState | null;
}

export function encodeCheckpoint(world: World, rng: RngState | null): Buffer {
  const head = Buffer.from(JSON.stringify({ world: worldToPlain(world), rng }));
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
  const head = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as { world: PlainWorld; rng: RngState | null };
  const mem = new Map<bigint, Uint8Array>();
  for (let p = 4 + n; p < buf.length; p += 8 + PAGE) mem.set(buf.readBigUInt64LE(p), new Uint8Array(buf.subarray(p + 8, p + 8 + PAGE)));
  return { seq, world: worldFromPlain(head.world, mem), rng: head.rng };
}

export function hashBytes(blob: Uint8Array): string {
  return createHash('sha256').update(blob).digest('hex');
}

/** The state hash of a world (the same hash checkpoints store). */
export function stateHash(world: World): string {
  return hashBytes(encodeCheckpoint(world, null));
}
