// Bring-up, in the order QEMU and the guest do it: memory table, driver allocates the ring
// (dma_alloc_coherent: an IOMMU mapping in IOTLB mode), and vhost_dev_start pre-faults the used ring
// with an UPDATE of its own (vhost_device_iotlb_miss(hdev, vq->used_phys, true)).
import { PAGE_BIG } from '../model/memory.js';
import { vringLayout } from '../model/vring.js';
import { allocIova } from '../model/iova.js';
import type { Sim } from './sim.js';
import { vmmFill } from './vmm.js';

export const RAM_SIZE = 0x4000_0000n; // 1 GiB guest, one memory region
export const HVA_BASE = 0x7f3a_0000_0000n; // where the VMM mmap'ed guest RAM
export const RING_GPA = 0x0800_0000n;

export function setup(sim: Sim): void {
  const { config } = sim;
  sim.emit({ kind: 'trace.config', actor: 'vmm', cause: 0, path: config.path, workload: config.workload, ringNum: config.ringNum });
  sim.emit({ kind: 'mem.table', actor: 'vmm', cause: 0, gpa: 0n, size: RAM_SIZE, hva: HVA_BASE });
  const lay = vringLayout(config.ringNum);
  const ringBytes = BigInt(Math.ceil(lay.size / 4096)) * PAGE_BIG;
  let base = RING_GPA;
  if (config.path === 'iommu') {
    base = allocIova(sim.world.iovas, ringBytes)!;
    sim.emit({ kind: 'iommu.map', actor: 'cpu0', cause: 0, iova: base, gpa: RING_GPA, size: ringBytes, perm: 'RW' });
  }
  const setupSeq = sim.emit({
    kind: 'vring.setup',
    actor: 'cpu0',
    cause: 0,
    q: 0,
    num: config.ringNum,
    desc: base,
    avail: base + BigInt(lay.availOff),
    used: base + BigInt(lay.usedOff),
    descGpa: RING_GPA,
    availGpa: RING_GPA + BigInt(lay.availOff),
    usedGpa: RING_GPA + BigInt(lay.usedOff),
  });
  if (config.path === 'iommu') vmmFill(sim, base + BigInt(lay.usedOff), setupSeq);
}
