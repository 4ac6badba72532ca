// Rules for the trace's own bookkeeping, the guest's memory and its devices: the configuration, the
// vhost memory table, CPU and device stores into guest memory, guest operations, findings, and the
// kinds that only record what was observed.
import { writeMem } from '../memory.js';
import { region } from '../memtable.js';
import { mappingAt, slotAddr } from '../swiotlb.js';
import type { PathName } from '../types.js';
import { DEFAULT_VARIANTS, type Variants } from '../variants.js';
import { deviceOf, newDevice } from '../world.js';
import type { RulesFor } from './rule.js';

type PlatformKinds = 'trace.config' | 'mem.table' | 'mem.write' | 'cpu.read' | 'intent' | 'sched' | 'dev.add' | 'dev.probe_fail' | 'dev.teardown' | 'dev.access' | 'marker' | 'opaque' | 'finding';

export const PLATFORM_RULES: RulesFor<PlatformKinds> = {
  'trace.config': {
    models: 'the run: workload, protected guest, kernel/QEMU variants (src/model/variants.ts)',
    evolve(w, ev) {
      w.workload = ev.workload;
      w.protected = !!ev.protected;
      w.variants = { ...DEFAULT_VARIANTS, ...(JSON.parse(ev.variants || '{}') as Partial<Variants>) };
    },
  },
  'mem.table': {
    models: 'VHOST_SET_MEM_TABLE (vhost_set_memory): one GPA→HVA region',
    evolve(w, ev) {
      w.memTable.push(region(ev.gpa, ev.size, ev.hva));
    },
  },
  'mem.write': {
    models: 'a CPU (or swiotlb, or device) store into guest physical memory',
    evolve(w, ev, owned) {
      writeMem(w.mem, ev.gpa, ev.data, owned);
    },
  },
  'cpu.read': { models: 'the guest reading a completed DMA buffer (an observation)' },
  intent: {
    models: 'one guest operation (a packet, a block request)',
    evolve(w) {
      w.guest.ops++;
    },
  },
  sched: { models: "the scheduler's choice of the next actor (an observation)" },
  'dev.add': {
    models: 'virtio device probe (virtio_dev_probe): its DMA path, translation and back-end',
    evolve(w, ev) {
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
    },
  },
  'dev.probe_fail': {
    models: 'virtio_features_ok() refusing the device',
    evolve(w, ev) {
      deviceOf(w, ev.dev, ev.seq).probed = false;
    },
  },
  'dev.teardown': { models: 'the driver unbound (virtio remove); its unmaps are events of their own' },
  'dev.access': {
    models: 'a device read or write of guest memory (vhost copy_to/from_user through its translation)',
    inertWhen: { field: 'dir', value: 'read' },
    evolve(w, ev, owned) {
      if (ev.dir !== 'write') return;
      writeMem(w.mem, ev.gpa, ev.data, owned);
      // a write into a bounce slot: those bytes now hold this mapping's data, to be copied back
      const hit = mappingAt(w.swiotlb, ev.gpa);
      if (hit) {
        const [index, m] = hit;
        const start = Number(ev.gpa - slotAddr(index));
        m.init.fill(1, start, Math.min(start + ev.len, m.init.length));
        m.dirty = true;
      }
    },
  },
  marker: { models: 'a phase marker shared by guest and host logs' },
  opaque: { models: 'an imported line of a kind dmareplay does not model' },
  finding: {
    models: 'a checker finding (counted)',
    evolve(w) {
      w.findings++;
    },
  },
};
