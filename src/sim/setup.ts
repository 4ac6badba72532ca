// Bring-up, in the order QEMU and the guest do it: memory table; each device probed (features
// negotiated, vring_use_dma_api decided, or refused by a protected guest); its rings allocated
// (dma_alloc_coherent: an IOMMU mapping in IOTLB mode); and vhost_dev_start pre-faulting the used
// ring with an UPDATE of the VMM's own (vhost_device_iotlb_miss(hdev, vq->used_phys, true)).
import { packedRingBytes, vringLayout } from '../model/vring.js';
import { F_ACCESS_PLATFORM, F_EVENT_IDX, F_INDIRECT, F_RING_PACKED, F_VERSION_1, usesIommu, type TranslateMode } from '../model/types.js';
import { type DeviceConfig, defaultDevices, variantsOf } from './config.js';
import { dmaMap } from './dma-api.js';
import type { Sim } from './sim.js';
import { vmmPrefault, vmmZeroUpdate } from './vmm.js';

export const RAM_LOW = 0x8000_0000n; // 2 GiB below 4 GiB
export const RAM_HIGH_GPA = 0x1_0000_0000n;
export const RAM_HIGH = 0x4000_0000n; // 1 GiB above 4 GiB
export const HVA_BASE = 0x7f3a_0000_0000n; // where the VMM mmap'ed guest RAM
export const RING_BASE = 0x0800_0000n;

export function devicesOf(sim: Sim): DeviceConfig[] {
  return sim.config.devices ?? defaultDevices(sim.config);
}

export function isProtected(sim: Sim): boolean {
  return sim.config.protected ?? devicesOf(sim).some((d) => d.path === 'swiotlb-force');
}

export function setup(sim: Sim): void {
  const { config } = sim;
  // a scenario (scenario.ts) brings its own devices and queues: the platform only
  const scenario = config.workload === 'scenario';
  const prot = !scenario && isProtected(sim);
  sim.emit({ kind: 'trace.config', actor: 'vmm', cause: 0, workload: config.workload, protected: prot ? 1 : 0, variants: JSON.stringify(variantsOf(config)), seq: 0 });
  sim.emit({ kind: 'mem.table', actor: 'vmm', cause: 0, gpa: 0n, size: RAM_LOW, hva: HVA_BASE, seq: 0 });
  sim.emit({ kind: 'mem.table', actor: 'vmm', cause: 0, gpa: RAM_HIGH_GPA, size: RAM_HIGH, hva: HVA_BASE + RAM_LOW, seq: 0 });
  if (scenario) return;
  let q = 0;
  for (const c of devicesOf(sim)) {
    const ap = c.accessPlatform ?? c.path !== 'direct';
    const packed = c.packed ?? config.packed ?? false;
    const eventIdx = c.eventIdx ?? config.eventIdx ?? true;
    const indirect = c.indirect ?? config.indirect ?? true;
    const features =
      F_VERSION_1 | (ap ? F_ACCESS_PLATFORM : 0n) | (indirect ? F_INDIRECT : 0n) | (eventIdx && !packed ? F_EVENT_IDX : 0n) | (packed ? F_RING_PACKED : 0n);
    const translate: TranslateMode = c.translate ?? (usesIommu(c.path) ? 'iova' : 'gpa');
    const added = sim.emit({
      kind: 'dev.add',
      actor: 'cpu0',
      cause: 0,
      dev: c.dev,
      name: c.name,
      path: c.path,
      features,
      useDmaApi: ap ? 1 : 0, // vring_use_dma_api(): !virtio_has_dma_quirk()
      translate,
      backend: c.backend ?? 'vhost',
      dmaMask: BigInt(c.dmaMask ?? (c.path === 'swiotlb' ? '0xffffffff' : '0xffffffffffffffff')),
      seq: 0,
    });
    if (prot && !ap) {
      // virtio_features_ok(): a protected guest needs ACCESS_PLATFORM, else -ENODEV
      sim.emit({ kind: 'dev.probe_fail', actor: 'cpu0', cause: added, dev: c.dev, reason: 'device must provide VIRTIO_F_ACCESS_PLATFORM', seq: 0 });
      continue;
    }
    const d = sim.world.devices.get(c.dev)!;
    const queues = (c.name === 'virtio-net' ? 2 : 1) * (config.knobs?.queues ?? 1); // rx/tx pairs, or request queues
    for (let i = 0; i < queues; i++, q++) {
      const lay = vringLayout(config.ringNum);
      const bytes = packed ? packedRingBytes(config.ringNum) : lay.size;
      const gpa = RING_BASE + BigInt(q * 0x10000);
      const m = dmaMap(sim, d, gpa, bytes, 'BIDIRECTIONAL', 'coherent', added);
      if (!m.ok) throw new Error(`cannot allocate ring ${q}`);
      const base = m.dma;
      const setupSeq = sim.emit({
        kind: 'vring.setup',
        actor: 'cpu0',
        cause: added,
        dev: c.dev,
        q,
        num: config.ringNum,
        packed: packed ? 1 : 0,
        eventIdx: eventIdx && !packed ? 1 : 0,
        desc: base,
        avail: packed ? base : base + BigInt(lay.availOff),
        used: packed ? base : base + BigInt(lay.usedOff),
        descGpa: gpa,
        availGpa: packed ? gpa : gpa + BigInt(lay.availOff),
        usedGpa: packed ? gpa : gpa + BigInt(lay.usedOff),
        seq: 0,
      });
      if (translate === 'iova' && d.backend.startsWith('vhost')) vmmPrefault(sim, d, packed ? base : base + BigInt(lay.usedOff), setupSeq);
    }
    if (translate === 'iova' && sim.fault('zero-update')) vmmZeroUpdate(sim, d);
  }
}
