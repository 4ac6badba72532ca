// The one place the world changes. `mutate` applies an event to a world it owns (a replay batch's
// working copy); `apply` is the pure form: state in, new immutable state out, built with immer.
// Every rule here is a rule of the kernel or QEMU code the event stands for; where an event only
// records an observation (a read, a translation, a fault) nothing changes.
import { enableMapSet, freeze, produce } from 'immer';
import type { DmaEvent, EventOf } from '../events/schema.js';
import { addRange, delRange, wakeCovered } from '../model/device-iotlb.js';
import { liveAdd, liveFind, liveRemove } from '../model/dma-live.js';
import { PAGE_MASK, readMem, writeMem, writeUint } from '../model/memory.js';
import { mappingAt, slotAddr } from '../model/swiotlb.js';
import { usesIommu, type PathName } from '../model/types.js';
import { DEFAULT_VARIANTS, type Variants } from '../model/variants.js';
import { iommuMap, iommuUnmap } from '../model/viommu.js';
import { encodeDesc, encodePacked, packedFlags, usedFlags, VRING_DESC_F_INDIRECT } from '../model/vring.js';
import { newDevice, type DeviceState, type RingState, type World } from '../model/world.js';

enableMapSet();

export class ApplyError extends Error {}

const U64 = (1n << 64n) - 1n;

function ring(w: World, q: number, seq: number): RingState {
  const r = w.rings[q];
  if (!r) throw new ApplyError(`event ${seq}: queue ${q} was never set up`);
  return r;
}

function dev(w: World, d: number, seq: number): DeviceState {
  const s = w.devices.get(d);
  if (!s) throw new ApplyError(`event ${seq}: device 0x${d.toString(16)} was never added`);
  return s;
}

export function mutate(w: World, ev: DmaEvent, owned?: Set<Uint8Array>): void {
  switch (ev.kind) {
    case 'trace.config':
      w.workload = ev.workload;
      w.protected = !!ev.protected;
      w.variants = { ...DEFAULT_VARIANTS, ...(JSON.parse(ev.variants || '{}') as Partial<Variants>) };
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
    case 'fault':
      applyFault(w, ev);
      return;
    case 'dev.add':
      w.devices.set(
        ev.dev,
        newDevice({
          dev: ev.dev,
          name: ev.name,
          path: ev.path as PathName,
          useDmaApi: !!ev.useDmaApi,
          translate: ev.translate,
          backend: ev.backend,
          dmaMask: ev.dmaMask,
          features: ev.features,
        }),
      );
      return;
    case 'dev.probe_fail':
      dev(w, ev.dev, ev.seq).probed = false;
      return;
    case 'vring.setup': {
      const free: number[] = [];
      for (let i = ev.num - 1; i >= 0; i--) free.push(i);
      w.rings[ev.q] = {
        q: ev.q,
        dev: ev.dev,
        num: ev.num,
        packed: !!ev.packed,
        eventIdx: !!ev.eventIdx,
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
        availWrap: 1,
        usedWrap: 1,
        lastUsedWrap: 1,
        lastAvail: 0,
        usedIdx: 0,
        served: 0,
        kicked: false,
        parked: false,
        broken: false,
        meta: { desc: 0, avail: 0, used: 0 },
      };
      return;
    }
    case 'vring.post':
      post(w, ev, owned);
      return;
    case 'vring.kick':
      ring(w, ev.q, ev.seq).kicked = true;
      return;
    case 'vq.event': {
      writeUint(w.mem, ev.gpa, 2, ev.idx, owned);
      return;
    }
    case 'vring.used': {
      const r = ring(w, ev.q, ev.seq);
      if (r.packed) {
        const posted = r.extra.get(ev.id);
        const chain = posted ? (posted.table ? 1 : posted.chain.length) : 1;
        const at = ev.gpa + BigInt(16 * ev.slot);
        writeUint(w.mem, at + 8n, 4, ev.len, owned);
        writeUint(w.mem, at + 12n, 2, ev.id, owned);
        writeUint(w.mem, at + 14n, 2, usedFlags(ev.wrap), owned);
        if (ev.slot + chain >= r.num) r.usedWrap ^= 1;
        r.usedIdx = ev.usedIdx;
        r.lastAvail = ev.usedIdx;
        r.served++;
        return;
      }
      const at = ev.gpa + BigInt(4 + 8 * ev.slot);
      writeUint(w.mem, at, 4, ev.id, owned);
      writeUint(w.mem, at + 4n, 4, ev.len, owned);
      writeUint(w.mem, ev.gpa + 2n, 2, ev.usedIdx, owned);
      r.usedIdx = ev.usedIdx;
      r.lastAvail = (r.lastAvail + 1) & 0xffff;
      r.served++;
      return;
    }
    case 'vring.irq':
      w.guest.irq = true;
      return;
    case 'vring.getbuf': {
      const r = ring(w, ev.q, ev.seq);
      const posted = r.extra.get(ev.id);
      if (!posted) throw new ApplyError(`event ${ev.seq}: id ${ev.id} is not an outstanding head`);
      r.extra.delete(ev.id);
      if (r.packed || posted.table) r.free.push(ev.id);
      else for (let i = posted.chain.length - 1; i >= 0; i--) r.free.push(posted.chain[i]!.idx);
      if (r.packed && ev.lastUsed <= r.lastUsed) r.lastUsedWrap ^= 1; // the driver's used wrap counter
      r.lastUsed = ev.lastUsed;
      w.guest.irq = false;
      return;
    }
    case 'vq.error':
      ring(w, ev.q, ev.seq).broken = true;
      return;
    case 'vq.prefetch':
      ring(w, ev.q, ev.seq).meta = { desc: ev.desc, avail: ev.avail, used: ev.used };
      return;
    case 'iommu.map':
      iommuMap(dev(w, ev.dev, ev.seq).iommu, ev.iova, ev.gpa, ev.size, ev.perm, ev.seq);
      return;
    case 'iommu.unmap': {
      const d = dev(w, ev.dev, ev.seq);
      for (const pfn of iommuUnmap(d.iommu, ev.iova, ev.size)) d.unmapSeq.set(pfn, ev.seq);
      return;
    }
    case 'iommu.inv': {
      const d = w.devices.get(ev.dev);
      if (!d) return;
      // The flush queue is emptied by a flush: its IOVAs may be handed out again.
      if (d.path === 'iommu-lazy' && ev.gran !== 'page' && d.fq.length) {
        for (const r of d.fq) removeIova(d, r.start);
        d.fq = [];
      }
      // The vIOMMU's UNMAP notifier reaches the VMM, which owes vhost an INVALIDATE (vhost_iommu_unmap_notify).
      if (d.translate === 'iova' && d.backend.startsWith('vhost')) w.vmm.invals.push({ dev: ev.dev, iova: ev.iova, size: ev.size, req: ev.seq, due: w.passes });
      return;
    }
    case 'iommu.fault':
      markRead(w, ev.cause); // a miss whose translation faulted has been read: no UPDATE will come
      return;
    case 'iommu.translate':
      if (ev.cache === 'miss' && ev.actor === 'vmm') w.vmm.lastTranslate = { dev: ev.dev, iova: ev.iova, gpa: ev.gpa, perm: ev.perm, miss: ev.cause };
      return;
    case 'iommu.notify': {
      const d = dev(w, ev.dev, ev.seq);
      if (ev.op === 'UNMAP' && ev.size >> 12n > BigInt(d.shadow.size)) {
        // larger than the shadow table: walk the table (an UNMAP of [0, 2^64) must not step page by page)
        const first = ev.iova >> 12n;
        const last = (ev.iova + (((ev.size - 1n) >> 12n) << 12n)) >> 12n; // the loop's last page
        for (const pfn of [...d.shadow.keys()]) if (pfn >= first && pfn <= last) d.shadow.delete(pfn);
        return;
      }
      for (let off = 0n; off < ev.size; off += 0x1000n) {
        const pfn = (ev.iova + off) >> 12n;
        if (ev.op === 'MAP') d.shadow.set(pfn, { gpa: ev.gpa + off, seq: ev.seq });
        else d.shadow.delete(pfn);
      }
      return;
    }
    case 'dma.map': {
      const d = dev(w, ev.dev, ev.seq);
      liveAdd(d.dmaLive, ev.dma, { phys: ev.phys, size: ev.size, dir: ev.dir, type: ev.type, seq: ev.seq, checked: false });
      if (ev.path === 'iommu') d.iovas.push({ start: ev.dma & ~PAGE_MASK, size: pageSpan(ev.dma, ev.size) });
      if (ev.type === 'coherent' && w.protected) w.shared.push({ start: ev.phys & ~PAGE_MASK, size: pageSpan(ev.phys, ev.size) });
      return;
    }
    case 'dma.check': {
      // debug_dma_mapping_error: the first unchecked entry at that address
      const m = w.devices.get(ev.dev)?.dmaLive.get(ev.dma)?.find((x) => !x.checked);
      if (m) m.checked = true;
      return;
    }
    case 'dma.unmap': {
      const d = dev(w, ev.dev, ev.seq);
      const m = liveFind(d.dmaLive, ev.dma, ev.size, ev.dir);
      if (!m) return; // dma-debug reports it; the kernel carries on
      liveRemove(d.dmaLive, ev.dma, m);
      if (usesIommu(d.path)) {
        // strict: the IOVA is free once the invalidation completed (same guest step); lazy: after the flush
        if (d.path === 'iommu-lazy') d.fq.push({ start: ev.dma & ~PAGE_MASK, size: pageSpan(ev.dma, m.size) });
        else removeIova(d, ev.dma & ~PAGE_MASK);
      }
      return;
    }
    case 'swiotlb.slots':
      if (ev.op === 'alloc') {
        w.swiotlb.slots.set(ev.index, { dev: ev.dev, orig: ev.orig, size: ev.size, nslots: ev.nslots, offset: ev.offset, init: new Uint8Array(ev.nslots * 2048), dirty: false });
        w.swiotlb.next = ev.index + ev.nslots;
      } else w.swiotlb.slots.delete(ev.index);
      return;
    case 'swiotlb.bounce': {
      if (ev.tlb === 0n) return; // imported: the trace names the buffer, not the slot it bounced through
      const from = ev.toTlb ? ev.orig : ev.tlb;
      const to = ev.toTlb ? ev.tlb : ev.orig;
      writeMem(w.mem, to, readMem(w.mem, from, ev.size), owned);
      const hit = mappingAt(w.swiotlb, ev.tlb);
      if (hit) {
        const [index, m] = hit;
        const start = Number(ev.tlb - slotAddr(index));
        if (ev.toTlb) m.init.fill(1, start, Math.min(start + ev.size, m.init.length));
        else m.dirty = false;
      }
      return;
    }
    case 'iotlb.miss':
      dev(w, ev.dev, ev.seq).iotlb.pending.push({ q: ev.q, iova: ev.iova, perm: ev.perm, seq: ev.seq });
      w.vmm.toRead.push(ev.seq);
      ring(w, ev.q, ev.seq).parked = true;
      return;
    case 'iotlb.update': {
      markRead(w, ev.cause);
      const held = w.vmm.held.findIndex((h) => h.miss === ev.cause);
      if (held >= 0) w.vmm.held.splice(held, 1);
      if (ev.result !== 'ok') return;
      const d = dev(w, ev.dev, ev.seq);
      resetMeta(w, ev.dev);
      addRange(d.iotlb, { start: ev.iova, last: (ev.iova + ev.size - 1n) & U64, uaddr: ev.uaddr, perm: ev.perm, seq: ev.seq });
      const last = w.variants.wakeRule === 'gt' ? ev.iova + ev.size - 2n : ev.iova + ev.size - 1n;
      for (const m of wakeCovered(d.iotlb, ev.iova, last - ev.iova + 1n))
        if (!d.iotlb.pending.some((p) => p.q === m.q)) ring(w, m.q, ev.seq).parked = false;
      return;
    }
    case 'iotlb.invalidate': {
      const at = w.vmm.invals.findIndex((i) => i.req === ev.cause);
      if (at >= 0) w.vmm.invals.splice(at, 1);
      if (ev.result !== 'ok') return;
      resetMeta(w, ev.dev);
      delRange(dev(w, ev.dev, ev.seq).iotlb, ev.iova, (ev.iova + ev.size - 1n) & U64);
      return;
    }
    case 'iotlb.batch':
      if (ev.result === 'ok') dev(w, ev.dev, ev.seq).inBatch = !!ev.begin;
      return;
    case 'dev.pass':
      if (ev.begin) w.inPass = true;
      else {
        w.inPass = false;
        w.passes++;
        const r = ring(w, ev.q, ev.seq);
        r.kicked = !r.broken && pendingWork(r);
      }
      return;
    case 'dev.access':
      if (ev.dir === 'write') {
        writeMem(w.mem, ev.gpa, ev.data, owned);
        const hit = mappingAt(w.swiotlb, ev.gpa);
        if (hit) {
          const [index, m] = hit;
          const start = Number(ev.gpa - slotAddr(index));
          m.init.fill(1, start, Math.min(start + ev.len, m.init.length));
          m.dirty = true;
        }
      }
      return;
    case 'finding':
      w.findings++;
      return;
    case 'sched':
    case 'cpu.read':
    case 'dev.teardown':
    case 'vq.log':
    case 'dma.map_error':
    case 'dma.sync':
    case 'vq.pop':
    case 'vq.fill':
    case 'marker':
    case 'opaque':
      return;
  }
}

function post(w: World, ev: EventOf<'vring.post'>, owned?: Set<Uint8Array>): void {
  const r = ring(w, ev.q, ev.seq);
  if (r.packed) {
    // descriptors at ring positions slot, slot+1, ... with the driver's wrap counter at each
    let wrap = ev.wrap;
    const entries = ev.table ? [{ addr: ev.table, len: 16 * ev.chain.length, flags: VRING_DESC_F_INDIRECT }] : ev.chain;
    entries.forEach((d, i) => {
      const pos = (ev.slot + i) % r.num;
      if (i > 0 && pos === 0) wrap ^= 1;
      writeMem(w.mem, r.descGpa + BigInt(16 * pos), encodePacked(d.addr, d.len, ev.head, packedFlags(d.flags, wrap)), owned);
    });
    if (ev.slot + entries.length >= r.num) r.availWrap ^= 1;
    takeFree(r, ev.head, ev.seq);
    r.extra.set(ev.head, { chain: ev.chain.map(copyDesc), sg: ev.sg.map((g) => ({ gpa: g.gpa, len: g.len, write: g.write })), table: ev.table, tableGpa: ev.tableGpa, op: ev.cause });
    r.availIdx = ev.availIdx;
    return;
  }
  if (ev.table) {
    // the indirect table itself was written (mem.write) before it was mapped
    writeMem(w.mem, r.descGpa + BigInt(16 * ev.head), encodeDesc({ idx: ev.head, addr: ev.table, len: 16 * ev.chain.length, flags: VRING_DESC_F_INDIRECT, next: 0 }), owned);
    takeFree(r, ev.head, ev.seq);
  } else {
    for (const d of ev.chain) {
      writeMem(w.mem, r.descGpa + BigInt(16 * d.idx), encodeDesc(d), owned);
      takeFree(r, d.idx, ev.seq);
    }
  }
  r.extra.set(ev.head, { chain: ev.chain.map(copyDesc), sg: ev.sg.map((g) => ({ gpa: g.gpa, len: g.len, write: g.write })), table: ev.table, tableGpa: ev.tableGpa, op: ev.cause });
  writeUint(w.mem, r.availGpa + BigInt(4 + 2 * ev.slot), 2, ev.head, owned);
  writeUint(w.mem, r.availGpa + 2n, 2, ev.availIdx, owned);
  r.availIdx = ev.availIdx;
}

function takeFree(r: RingState, idx: number, seq: number): void {
  const at = r.free.lastIndexOf(idx);
  if (at < 0) throw new ApplyError(`event ${seq}: descriptor ${idx} is not free`);
  r.free.splice(at, 1);
}

// Spelled out so every world built from the same events has the same key order (the state hash).
const copyDesc = (d: { idx: number; addr: bigint; len: number; flags: number; next: number }) => ({ idx: d.idx, addr: d.addr, len: d.len, flags: d.flags, next: d.next });

function applyFault(w: World, ev: EventOf<'fault'>): void {
  switch (ev.what) {
    case 'delay-invalidate': {
      const inv = w.vmm.invals.find((i) => i.req === ev.cause);
      if (inv) inv.due = w.passes + ev.arg;
      return;
    }
    case 'drop-invalidate': {
      const at = w.vmm.invals.findIndex((i) => i.req === ev.cause);
      if (at >= 0) w.vmm.invals.splice(at, 1);
      return;
    }
    case 'viommu-fault':
      markRead(w, ev.cause); // the VMM read the miss and sent nothing
      return;
    case 'reorder-update-invalidate':
      markRead(w, ev.cause);
      if (w.vmm.lastTranslate) w.vmm.held.push({ ...w.vmm.lastTranslate });
      return;
    case 'evict-iotlb': {
      const d = w.devices.get(ev.dev);
      if (d?.iotlb.entries.length) {
        d.iotlb.entries.shift();
        resetMeta(w, ev.dev);
      }
      return;
    }
  }
}

function pendingWork(r: RingState): boolean {
  return r.lastAvail !== r.availIdx;
}

function markRead(w: World, missSeq: number): void {
  const at = w.vmm.toRead.indexOf(missSeq);
  if (at >= 0) w.vmm.toRead.splice(at, 1);
}

function removeIova(d: DeviceState, start: bigint): void {
  const at = d.iovas.findIndex((r) => r.start === start);
  if (at >= 0) d.iovas.splice(at, 1);
}

export function pageSpan(addr: bigint, size: number): bigint {
  const start = addr & ~PAGE_MASK;
  const end = (addr + BigInt(Math.max(size, 1)) + PAGE_MASK) & ~PAGE_MASK;
  return end - start;
}

// vhost_vq_meta_reset: every UPDATE and INVALIDATE drops the cached ring translations (the map
// objects they point into may be freed).
function resetMeta(w: World, d: number): void {
  for (const r of w.rings) if (r.dev === d && (r.meta.desc || r.meta.avail || r.meta.used)) r.meta = { desc: 0, avail: 0, used: 0 };
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
