// The one place the world changes. `mutate` applies an event to a world it owns (a replay batch's
// working copy); `apply` is the pure form: state in, new immutable state out, built with immer.
import { enableMapSet, freeze, produce } from 'immer';
import type { DmaEvent } from '../events/schema.js';
import { addRange, delRange, wakeCovered } from '../model/device-iotlb.js';
import { writeMem, writeUint } from '../model/memory.js';
import { iommuMap, iommuUnmap } from '../model/viommu.js';
import { encodeDesc } from '../model/vring.js';
import type { RingState, World } from '../model/world.js';
import { PATHS, type PathName } from '../model/types.js';
import { vringLayout } from '../model/vring.js';
import { PAGE_BIG } from '../model/memory.js';

enableMapSet();

export class ApplyError extends Error {}

function ring(w: World, q: number, seq: number): RingState {
  const r = w.rings[q];
  if (!r) throw new ApplyError(`event ${seq}: queue ${q} was never set up`);
  return r;
}

export function mutate(w: World, ev: DmaEvent, owned?: Set<Uint8Array>): void {
  switch (ev.kind) {
    case 'trace.config':
      if (!(PATHS as readonly string[]).includes(ev.path)) throw new ApplyError(`event ${ev.seq}: unknown path ${ev.path}`);
      w.path = ev.path as PathName;
      w.workload = ev.workload;
      return;
    case 'mem.table':
      w.memTable.push({ gpa: ev.gpa, size: ev.size, hva: ev.hva });
      return;
    case 'mem.write':
      writeMem(w.mem, ev.gpa, ev.data, owned);
      return;
    case 'intent':
      w.guest.ops++;
      return;
    case 'sched':
    case 'vring.kick':
      if (ev.kind === 'vring.kick') ring(w, ev.q, ev.seq).kicked = true;
      return;
    case 'fault':
      if (ev.what === 'delay-invalidate') {
        const inv = w.vmm.invals.find((i) => i.req === ev.cause);
        if (inv) inv.due = w.passes + ev.arg;
      }
      return;
    case 'vring.setup': {
      const free: number[] = [];
      for (let i = ev.num - 1; i >= 0; i--) free.push(i);
      w.rings[ev.q] = {
        q: ev.q,
        num: ev.num,
        desc: ev.desc,
        avail: ev.avail,
        used: ev.used,
        descGpa: ev.descGpa,
        availGpa: ev.availGpa,
        usedGpa: ev.usedGpa,
        free,
        extra: new Map(),
        availIdx: 0,
        lastUsed: 0,
        lastAvail: 0,
        usedIdx: 0,
        kicked: false,
        parked: false,
      };
      if (w.path === 'iommu') {
        const size = BigInt(Math.ceil(vringLayout(ev.num).size / 4096)) * PAGE_BIG;
        w.iovas.push({ start: ev.desc & ~0xfffn, size });
      }
      return;
    }
    case 'vring.post': {
      const r = ring(w, ev.q, ev.seq);
      for (const d of ev.chain) {
        writeMem(w.mem, r.descGpa + BigInt(16 * d.idx), encodeDesc(d), owned);
        const at = r.free.lastIndexOf(d.idx);
        if (at < 0) throw new ApplyError(`event ${ev.seq}: descriptor ${d.idx} is not free`);
        r.free.splice(at, 1);
      }
      r.extra.set(ev.head, ev.chain.map((d) => ({ idx: d.idx, addr: d.addr, len: d.len, flags: d.flags, next: d.next })));
      writeUint(w.mem, r.availGpa + BigInt(4 + 2 * ev.slot), 2, ev.head, owned);
      writeUint(w.mem, r.availGpa + 2n, 2, ev.availIdx, owned);
      r.availIdx = ev.availIdx;
      return;
    }
    case 'vring.used': {
      const r = ring(w, ev.q, ev.seq);
      const at = ev.gpa + BigInt(4 + 8 * ev.slot);
      writeUint(w.mem, at, 4, ev.id, owned);
      writeUint(w.mem, at + 4n, 4, ev.len, owned);
      writeUint(w.mem, ev.gpa + 2n, 2, ev.usedIdx, owned);
      r.usedIdx = ev.usedIdx;
      r.lastAvail = (r.lastAvail + 1) & 0xffff;
      return;
    }
    case 'vring.irq':
      w.guest.irq = true;
      return;
    case 'vring.getbuf': {
      const r = ring(w, ev.q, ev.seq);
      const chain = r.extra.get(ev.id);
      if (!chain) throw new ApplyError(`event ${ev.seq}: id ${ev.id} is not an outstanding head`);
      r.extra.delete(ev.id);
      for (let i = chain.length - 1; i >= 0; i--) r.free.push(chain[i]!.idx);
      r.lastUsed = ev.lastUsed;
      w.guest.irq = false;
      return;
    }
    case 'iommu.map':
      iommuMap(w.iommu, ev.iova, ev.gpa, ev.size, ev.perm, ev.seq);
      return;
    case 'iommu.unmap':
      for (const pfn of iommuUnmap(w.iommu, ev.iova, ev.size)) w.unmapSeq.set(pfn, ev.seq);
      return;
    case 'iommu.inv':
      // The vIOMMU's UNMAP notifier reaches the VMM, which owes vhost an INVALIDATE (vhost_iommu_unmap_notify).
      if (w.path === 'iommu') w.vmm.invals.push({ iova: ev.iova, size: ev.size, req: ev.seq, due: w.passes });
      return;
    case 'dma.map':
      w.dmaLive.set(ev.dma, { phys: ev.phys, size: ev.size, dir: ev.dir, seq: ev.seq });
      if (w.path === 'iommu') w.iovas.push({ start: ev.dma & ~0xfffn, size: pageSpan(ev.dma, ev.size) });
      return;
    case 'dma.unmap': {
      w.dmaLive.delete(ev.dma);
      const start = ev.dma & ~0xfffn;
      const at = w.iovas.findIndex((r) => r.start === start);
      if (at >= 0) w.iovas.splice(at, 1);
      return;
    }
    case 'iotlb.miss':
      w.iotlb.pending.push({ q: ev.q, iova: ev.iova, perm: ev.perm, seq: ev.seq });
      w.vmm.toRead.push(ev.seq);
      ring(w, ev.q, ev.seq).parked = true;
      return;
    case 'iotlb.update': {
      markRead(w, ev.cause);
      addRange(w.iotlb, { start: ev.iova, last: ev.iova + ev.size - 1n, uaddr: ev.uaddr, perm: ev.perm, seq: ev.seq });
      for (const m of wakeCovered(w.iotlb, ev.iova, ev.size))
        if (!w.iotlb.pending.some((p) => p.q === m.q)) ring(w, m.q, ev.seq).parked = false;
      return;
    }
    case 'iotlb.invalidate': {
      delRange(w.iotlb, ev.iova, ev.iova + ev.size - 1n);
      const at = w.vmm.invals.findIndex((i) => i.req === ev.cause);
      if (at >= 0) w.vmm.invals.splice(at, 1);
      return;
    }
    case 'dev.pass':
      if (ev.begin) w.inPass = true;
      else {
        w.inPass = false;
        w.passes++;
        const r = ring(w, ev.q, ev.seq);
        r.kicked = r.lastAvail !== r.availIdx;
      }
      return;
    case 'dev.access':
      if (ev.dir === 'write') writeMem(w.mem, ev.gpa, ev.data, owned);
      return;
    case 'finding':
      w.findings++;
      return;
  }
}

function markRead(w: World, missSeq: number): void {
  const at = w.vmm.toRead.indexOf(missSeq);
  if (at >= 0) w.vmm.toRead.splice(at, 1);
}

function pageSpan(addr: bigint, size: number): bigint {
  const start = addr & ~0xfffn;
  const end = (addr + BigInt(size) + 0xfffn) & ~0xfffn;
  return end - start;
}

/** Pure form: the world after `ev`, as a new immutable value sharing what did not change. */
export function apply(state: World, ev: DmaEvent): World {
  return produce(state, (d) => {
    mutate(d as World, ev);
  });
}

export function freezeWorld(w: World): World {
  return freeze(w, true);
}

