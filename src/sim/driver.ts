// The guest: a virtio driver (drivers/virtio/virtio_ring.c) over the DMA API. With ACCESS_PLATFORM
// in IOTLB mode it maps each buffer through the IOMMU (iommu-dma: IOVA top-down, iommu_map, strict
// unmap + invalidation); on the direct path vring_use_dma_api() is false and desc.addr is the GPA.
// Unmaps read the driver's own shadow (desc_extra), never the guest-visible descriptor.
import type { Desc } from '../events/schema.js';
import { PAGE_MASK, readMem, readU16 } from '../model/memory.js';
import { allocIova } from '../model/iova.js';
import { VRING_DESC_F_WRITE } from '../model/vring.js';
import type { DirName, PermName } from '../model/types.js';
import type { Sim } from './sim.js';
import { vmmUnmapNotify } from './vmm.js';
import { WORKLOAD_IMPLS } from './workload.js';

const PERM_FOR_DIR: Record<DirName, PermName> = { TO_DEVICE: 'RO', FROM_DEVICE: 'WO', BIDIRECTIONAL: 'RW', NONE: 'NONE' };

function span(addr: bigint, len: number): { page: bigint; bytes: bigint } {
  const page = addr & ~PAGE_MASK;
  const end = (addr + BigInt(Math.max(len, 1)) + PAGE_MASK) & ~PAGE_MASK;
  return { page, bytes: end - page };
}

export function driverRunnable(sim: Sim): boolean {
  const r = sim.world.rings[0];
  if (!r) return false;
  if (readU16(sim.world.mem, r.usedGpa + 2n) !== r.lastUsed) return true;
  const wl = WORKLOAD_IMPLS[sim.config.workload];
  return sim.world.guest.ops < sim.config.ops && r.extra.size < wl.maxInflight && r.free.length > 0;
}

export function driverStep(sim: Sim): void {
  const r = sim.world.rings[0]!;
  if (readU16(sim.world.mem, r.usedGpa + 2n) !== r.lastUsed) reap(sim);
  else submit(sim);
}

function submit(sim: Sim): void {
  const w = sim.world;
  const r = w.rings[0]!;
  const req = WORKLOAD_IMPLS[sim.config.workload].next(sim.rng, w.guest.ops);
  const intent = sim.emit({ kind: 'intent', actor: 'cpu0', cause: 0, op: w.guest.ops, what: req.what, gpa: req.gpa, len: req.len });
  if (req.what === 'tx') sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: intent, gpa: req.gpa, by: 'cpu', data: sim.rng.bytes(req.len) });
  const dir: DirName = req.what === 'tx' ? 'TO_DEVICE' : 'FROM_DEVICE';
  const addr = mapOne(sim, req.gpa, req.len, dir, intent);
  const idx = r.free[r.free.length - 1]!;
  const chain: Desc[] = [{ idx, addr, len: req.len, flags: dir === 'FROM_DEVICE' ? VRING_DESC_F_WRITE : 0, next: 0 }];
  const availIdx = (r.availIdx + 1) & 0xffff;
  sim.emit({ kind: 'vring.post', actor: 'cpu0', cause: intent, q: 0, head: idx, slot: r.availIdx % r.num, availIdx, chain });
  sim.emit({ kind: 'vring.kick', actor: 'cpu0', cause: intent, q: 0 });
}

function mapOne(sim: Sim, gpa: bigint, len: number, dir: DirName, cause: number): bigint {
  if (sim.world.path === 'direct') return gpa;
  const { page, bytes } = span(gpa, len);
  const iovaPage = allocIova(sim.world.iovas, bytes);
  if (iovaPage === null) throw new Error('IOVA space exhausted');
  const iova = iovaPage + (gpa & PAGE_MASK);
  sim.emit({ kind: 'iommu.map', actor: 'cpu0', cause, iova: iovaPage, gpa: page, size: bytes, perm: PERM_FOR_DIR[dir] });
  sim.emit({ kind: 'dma.map', actor: 'cpu0', cause, dev: 0, phys: gpa, dma: iova, size: len, dir });
  return iova;
}

function unmapOne(sim: Sim, d: Desc, cause: number): void {
  if (sim.world.path === 'direct') return;
  const dir: DirName = d.flags & VRING_DESC_F_WRITE ? 'FROM_DEVICE' : 'TO_DEVICE';
  const { page, bytes } = span(d.addr, d.len);
  sim.emit({ kind: 'dma.unmap', actor: 'cpu0', cause, dev: 0, dma: d.addr, size: d.len, dir });
  sim.emit({ kind: 'iommu.unmap', actor: 'cpu0', cause, iova: page, size: bytes });
  // Strict mode: iommu_iotlb_sync → a page-selective invalidation the vIOMMU processes at once.
  const inv = sim.emit({ kind: 'iommu.inv', actor: 'iommu', cause, iova: page, size: bytes });
  vmmUnmapNotify(sim, inv, page, bytes);
}

function reap(sim: Sim): void {
  const w = sim.world;
  const r = w.rings[0]!;
  const usedIdx = readU16(w.mem, r.usedGpa + 2n);
  while (r.lastUsed !== usedIdx) {
    const slot = r.lastUsed % r.num;
    const elem = readMem(w.mem, r.usedGpa + BigInt(4 + 8 * slot), 8);
    const id = elem[0]! | (elem[1]! << 8);
    const len = (elem[4]! | (elem[5]! << 8) | (elem[6]! << 16)) + elem[7]! * 0x1000000;
    const chain = r.extra.get(id);
    if (!chain) throw new Error(`used id ${id} is not a head`);
    const got = sim.emit({ kind: 'vring.getbuf', actor: 'cpu0', cause: 0, q: 0, id, len, lastUsed: (r.lastUsed + 1) & 0xffff });
    for (const d of chain) unmapOne(sim, d, got);
  }
}


