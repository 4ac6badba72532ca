// Scenarios: a JSONL file of guest-side steps only — devices and their features, queue setup, guest
// memory writes laying out descriptor tables and rings byte for byte, kicks, IOMMU maps and unmaps,
// and the payload bytes the device is to produce. The simulation runs the device, the VMM and the
// IOMMU model over them (workload 'scenario': the steps live in the trace's config, so replay
// re-executes them). The guest runs one step at a time and waits after each until no device or VMM
// step can run: every kick is served before the next line, whatever the seed.
import { PERMS as PERM_NAMES } from '../events/schema.js';
import { F_ACCESS_PLATFORM, F_EVENT_IDX, F_INDIRECT, F_RING_PACKED, F_VERSION_1, PATHS, usesIommu, type PathName } from '../model/types.js';
import { encodeDesc, encodePacked, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, VRING_PACKED_DESC_F_AVAIL, VRING_PACKED_DESC_F_USED } from '../model/vring.js';
import { ConfigError } from './config.js';
import { setBaseResult } from '../model/queue-life.js';
import {
  attachStatus,
  detachStatus,
  emptyVirtioIommu,
  mapStatus,
  unmapStatus,
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
} from '../model/virtio-iommu.js';
import type { Sim } from './sim.js';
import { vmmPrefault, vmmUnmapNotify } from './vmm.js';

/** One step, as written in the file (addresses and byte strings as hex strings, like the JSONL export). */
export type ScenarioStep = Record<string, unknown> & { op: string };

export interface ScenarioHeader {
  scenario?: string;
  /** where the case comes from: repository, file, test name */
  source?: Record<string, string>;
  /** variants the case needs (the command line overrides them) */
  variants?: Record<string, string | number | boolean>;
  /** what the case asserts (read by test/conformance; the runner ignores it) */
  expect?: Record<string, unknown>;
  note?: string;
}

export const STEP_OPS = ['device', 'queue', 'write', 'write16', 'write32', 'write64', 'desc', 'pdesc', 'kick', 'map', 'unmap', 'payload', 'base', 'enable', 'reset', 'viommu'] as const;
const VIOMMU_REQS = ['attach', 'detach', 'map', 'unmap'] as const;
const MAP_FLAGS: Record<string, number> = { READ: VIRTIO_IOMMU_MAP_F_READ, WRITE: VIRTIO_IOMMU_MAP_F_WRITE, MMIO: VIRTIO_IOMMU_MAP_F_MMIO };

const FEATURE_BITS: Record<string, bigint> = {
  INDIRECT_DESC: F_INDIRECT,
  EVENT_IDX: F_EVENT_IDX,
  VERSION_1: F_VERSION_1,
  ACCESS_PLATFORM: F_ACCESS_PLATFORM,
  RING_PACKED: F_RING_PACKED,
};
const DESC_FLAGS: Record<string, number> = {
  NEXT: VRING_DESC_F_NEXT,
  WRITE: VRING_DESC_F_WRITE,
  INDIRECT: VRING_DESC_F_INDIRECT,
  AVAIL: VRING_PACKED_DESC_F_AVAIL,
  USED: VRING_PACKED_DESC_F_USED,
};

/** Parses a scenario file: an optional header line (no "op"), then steps. Throws ConfigError naming the line. */
export function parseScenario(text: string): { header: ScenarioHeader; steps: ScenarioStep[] } {
  const header: ScenarioHeader = {};
  const steps: ScenarioStep[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('//')) return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw new ConfigError(`line ${i + 1}: not JSON`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError(`line ${i + 1}: expected a JSON object`);
    const r = o as Record<string, unknown>;
    if (r.op === undefined) {
      if (steps.length) throw new ConfigError(`line ${i + 1}: the header (a line without "op") must come first`);
      Object.assign(header, r);
      return;
    }
    try {
      checkStep(r);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`line ${i + 1}: ${e.message}`);
      throw e;
    }
    steps.push(r as ScenarioStep);
  });
  if (!steps.length) throw new ConfigError('the scenario has no steps');
  return { header, steps };
}

function checkStep(r: Record<string, unknown>): void {
  if (!(STEP_OPS as readonly string[]).includes(r.op as string)) throw new ConfigError(`unknown op ${JSON.stringify(r.op)} (known: ${STEP_OPS.join(', ')})`);
  const s = r as ScenarioStep;
  switch (s.op) {
    case 'device':
      devId(s.dev);
      if (s.path !== undefined && !(PATHS as readonly string[]).includes(s.path as string)) throw new ConfigError(`unknown path ${JSON.stringify(s.path)}`);
      features(s);
      return;
    case 'queue':
      devId(s.dev);
      int(s, 'q', 3);
      int(s, 'num', 0x8000);
      addr(s, 'desc');
      return;
    case 'write':
      addr(s, 'gpa');
      bytes(s, 'data');
      return;
    case 'write16':
    case 'write32':
    case 'write64':
      addr(s, 'gpa');
      addr(s, 'value');
      return;
    case 'desc':
      addr(s, 'table');
      int(s, 'i', 0xffff);
      addr(s, 'addr');
      int(s, 'len', 0xffffffff);
      descFlags(s.flags);
      if (s.next !== undefined) int(s, 'next', 0xffff);
      return;
    case 'pdesc':
      addr(s, 'table');
      int(s, 'i', 0xffff);
      addr(s, 'addr');
      int(s, 'len', 0xffffffff);
      int(s, 'id', 0xffff);
      descFlags(s.flags);
      return;
    case 'kick':
      int(s, 'q', 3);
      return;
    case 'map':
    case 'unmap':
      devId(s.dev);
      addr(s, 'iova');
      addr(s, 'size');
      if (s.op === 'map') addr(s, 'gpa');
      if (s.perm !== undefined && !(PERM_NAMES as readonly string[]).includes(s.perm as string)) throw new ConfigError(`perm must be one of ${PERM_NAMES.join('|')}`);
      return;
    case 'payload':
      int(s, 'q', 3);
      bytes(s, 'data');
      return;
    case 'base':
      int(s, 'q', 3);
      int(s, 'num', 0xffffffff);
      return;
    case 'enable':
      int(s, 'q', 3);
      if (s.enable !== undefined && typeof s.enable !== 'boolean') throw new ConfigError('enable: enable must be true or false');
      return;
    case 'reset':
      int(s, 'q', 3);
      return;
    case 'viommu':
      if (!(VIOMMU_REQS as readonly string[]).includes(s.req as string)) throw new ConfigError(`viommu: req must be one of ${VIOMMU_REQS.join('|')}`);
      int(s, 'domain', 0xffffffff);
      if (s.req === 'attach' || s.req === 'detach') devId(s.ep);
      else {
        addr(s, 'start');
        addr(s, 'end');
      }
      if (s.req === 'map') {
        addr(s, 'phys');
        mapFlags(s.flags);
      }
      return;
  }
}

function mapFlags(v: unknown): number {
  if (v === undefined) return VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xff) return v;
  if (Array.isArray(v))
    return v.reduce((acc: number, f) => {
      const bit = MAP_FLAGS[f as string];
      if (bit === undefined) throw new ConfigError(`viommu: unknown map flag ${JSON.stringify(f)} (known: READ, WRITE, MMIO, or a number)`);
      return acc | bit;
    }, 0);
  throw new ConfigError('viommu: flags must be a number or a list like ["READ", "WRITE"]');
}

/** "00:03.0" (bus:dev.fn) or a number: the PCI requester id. */
export function devId(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff) return v;
  const m = typeof v === 'string' ? /^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(v) : null;
  if (!m) throw new ConfigError(`dev must be a PCI address like "00:03.0" (got ${JSON.stringify(v)})`);
  return (parseInt(m[1]!, 16) << 8) | (parseInt(m[2]!, 16) << 3) | parseInt(m[3]!, 10);
}

function int(s: ScenarioStep, k: string, max: number): number {
  const v = s[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new ConfigError(`${s.op}: ${k} must be an integer 0..${max}`);
  return v;
}

/** A 64-bit value: a hex string ("0x1000") or a number below 2^53. */
function addr(s: ScenarioStep, k: string): bigint {
  const v = s[k];
  if (typeof v === 'string' && /^0x[0-9a-f]{1,16}$/i.test(v)) return BigInt(v);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw new ConfigError(`${s.op}: ${k} must be a hex string like "0x1000" or a non-negative integer`);
}

function bytes(s: ScenarioStep, k: string): Uint8Array {
  const v = s[k];
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/i.test(v)) throw new ConfigError(`${s.op}: ${k} must be an even-length hex string`);
  return new Uint8Array(Buffer.from(v, 'hex'));
}

function descFlags(v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff) return v;
  if (Array.isArray(v))
    return v.reduce((acc: number, f) => {
      if (typeof f === 'number') return acc | f;
      const bit = DESC_FLAGS[f as string];
      if (bit === undefined) throw new ConfigError(`desc: unknown flag ${JSON.stringify(f)} (known: NEXT, WRITE, INDIRECT, AVAIL, USED, or a number)`);
      return acc | bit;
    }, 0);
  throw new ConfigError('desc: flags must be a number or a list like ["NEXT", "WRITE"] (packed: also "AVAIL", "USED")');
}

function features(s: ScenarioStep): bigint {
  const v = s.features;
  const path = (s.path as PathName | undefined) ?? 'direct';
  if (v === undefined) return F_VERSION_1 | F_INDIRECT | F_EVENT_IDX | (path === 'direct' ? 0n : F_ACCESS_PLATFORM);
  if (!Array.isArray(v)) throw new ConfigError('device: features must be a list like ["VERSION_1", "INDIRECT_DESC"]');
  let f = 0n;
  for (const name of v) {
    const bit = FEATURE_BITS[name as string];
    if (bit === undefined) throw new ConfigError(`device: unknown feature ${JSON.stringify(name)} (known: ${Object.keys(FEATURE_BITS).join(', ')})`);
    f |= bit;
  }
  return f;
}

// ---- running -------------------------------------------------------------------------------------

/** the fault-counter slot (checkpointed with the run) holding the next step's number */
export const SCENARIO_LINE = 'scenario:line';

export function scenarioStep(sim: Sim): void {
  const n = sim.counters[SCENARIO_LINE] ?? 0;
  sim.counters[SCENARIO_LINE] = n + 1;
  runStep(sim, sim.config.scenario![n]!);
}

function runStep(sim: Sim, s: ScenarioStep): void {
  const w = sim.world;
  switch (s.op) {
    case 'device': {
      const dev = devId(s.dev);
      const path = (s.path as PathName | undefined) ?? sim.config.path;
      const f = features({ ...s, path });
      sim.emit({
        kind: 'dev.add',
        actor: 'cpu0',
        cause: 0,
        dev,
        name: (s.name as string | undefined) ?? 'virtio-net',
        path,
        features: f,
        useDmaApi: 0, // the scenario lays out its own rings: no DMA-API mappings to judge
        translate: (s.translate as 'gpa' | 'iova' | 'shadow' | undefined) ?? (usesIommu(path) ? 'iova' : 'gpa'),
        backend: (s.backend as string | undefined) ?? 'vhost',
        dmaMask: 0xffff_ffff_ffff_ffffn,
        seq: 0,
      });
      return;
    }
    case 'queue': {
      const dev = devId(s.dev);
      const d = w.devices.get(dev);
      if (!d) throw new ConfigError(`queue ${String(s.q)}: no device ${String(s.dev)} (add it with a "device" step first)`);
      if (s.q !== w.rings.length) throw new ConfigError(`queue ${String(s.q)}: queues are numbered in order (next is ${w.rings.length})`);
      const packed = !!(d.features & F_RING_PACKED);
      const desc = addr(s, 'desc');
      const num = s.num as number;
      const avail = s.avail === undefined ? desc + BigInt(16 * num) : addr(s, 'avail');
      const used = s.used === undefined ? (avail + BigInt(4 + 2 * num + 2) + 4095n) & ~4095n : addr(s, 'used');
      const g = (k: string, dflt: bigint) => (s[k] === undefined ? dflt : addr(s, k));
      const setup = sim.emit({
        kind: 'vring.setup',
        actor: 'cpu0',
        cause: 0,
        dev,
        q: s.q as number,
        num,
        packed: packed ? 1 : 0,
        eventIdx: d.features & F_EVENT_IDX && !packed ? 1 : 0,
        desc,
        avail: packed ? desc : avail,
        used: packed ? desc : used,
        descGpa: g('descGpa', desc),
        availGpa: packed ? g('descGpa', desc) : g('availGpa', avail),
        usedGpa: packed ? g('descGpa', desc) : g('usedGpa', used),
        seq: 0,
      });
      // a queue set up stopped, to be started with "enable" (and given a base first)
      if (s.enable === false) sim.emit({ kind: 'vq.enable', actor: 'vmm', cause: setup, q: s.q as number, enable: 0, seq: 0 });
      // vhost_dev_start pre-faults the used ring in IOTLB mode
      if (d.translate === 'iova' && d.backend.startsWith('vhost')) vmmPrefault(sim, d, packed ? desc : used, setup);
      return;
    }
    case 'write':
      sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: 0, gpa: addr(s, 'gpa'), by: 'cpu', data: bytes(s, 'data'), seq: 0 });
      return;
    case 'write16':
    case 'write32':
    case 'write64': {
      const n = s.op === 'write16' ? 2 : s.op === 'write32' ? 4 : 8;
      const v = addr(s, 'value');
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = Number((v >> BigInt(8 * i)) & 0xffn);
      sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: 0, gpa: addr(s, 'gpa'), by: 'cpu', data, seq: 0 });
      return;
    }
    case 'desc': {
      const i = s.i as number;
      const data = encodeDesc({ idx: i, addr: addr(s, 'addr'), len: s.len as number, flags: descFlags(s.flags), next: (s.next as number | undefined) ?? 0 });
      sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: 0, gpa: addr(s, 'table') + BigInt(16 * i), by: 'cpu', data, seq: 0 });
      return;
    }
    case 'pdesc': {
      const data = encodePacked(addr(s, 'addr'), s.len as number, s.id as number, descFlags(s.flags));
      sim.emit({ kind: 'mem.write', actor: 'cpu0', cause: 0, gpa: addr(s, 'table') + BigInt(16 * (s.i as number)), by: 'cpu', data, seq: 0 });
      return;
    }
    case 'kick':
      if (!w.rings[s.q as number]) throw new ConfigError(`kick: no queue ${String(s.q)}`);
      sim.emit({ kind: 'vring.kick', actor: 'cpu0', cause: 0, q: s.q as number, seq: 0 });
      return;
    case 'map': {
      const dev = devId(s.dev);
      sim.emit({ kind: 'iommu.map', actor: 'cpu0', cause: 0, dev, iova: addr(s, 'iova'), gpa: addr(s, 'gpa'), size: addr(s, 'size'), perm: (s.perm as 'RW' | undefined) ?? 'RW', seq: 0 });
      return;
    }
    case 'unmap': {
      const dev = devId(s.dev);
      const d = w.devices.get(dev);
      const iova = addr(s, 'iova');
      const size = addr(s, 'size');
      const un = sim.emit({ kind: 'iommu.unmap', actor: 'cpu0', cause: 0, dev, iova, size, seq: 0 });
      // strict unmap: the page invalidation, forwarded to vhost as an INVALIDATE
      const inv = sim.emit({ kind: 'iommu.inv', actor: 'iommu', cause: un, dev, iova, size, gran: 'page', seq: 0 });
      if (d) vmmUnmapNotify(sim, d, inv, iova, size, 'page');
      return;
    }
    case 'payload':
      return; // read by the device when it produces data (payloadFor)
    case 'base': {
      const r = w.rings[s.q as number];
      if (!r) throw new ConfigError(`base: no queue ${String(s.q)}`);
      sim.emit({ kind: 'vq.base', actor: 'vmm', cause: 0, q: r.q, num: s.num as number, result: setBaseResult(r, s.num as number), seq: 0 });
      return;
    }
    case 'enable':
      if (!w.rings[s.q as number]) throw new ConfigError(`enable: no queue ${String(s.q)}`);
      sim.emit({ kind: 'vq.enable', actor: 'vmm', cause: 0, q: s.q as number, enable: s.enable === false ? 0 : 1, seq: 0 });
      return;
    case 'reset':
      if (!w.rings[s.q as number]) throw new ConfigError(`reset: no queue ${String(s.q)}`);
      sim.emit({ kind: 'vq.reset', actor: 'cpu0', cause: 0, q: s.q as number, seq: 0 });
      return;
    case 'viommu':
      return viommuRequest(sim, s);
  }
}

/** The guest's virtio-iommu driver sends a request; QEMU's virtio-iommu device answers it (virtio-iommu.ts). */
function viommuRequest(sim: Sim, s: ScenarioStep): void {
  const v = sim.world.virtioIommu ?? emptyVirtioIommu();
  const domain = s.domain as number;
  switch (s.req) {
    case 'attach': {
      const ep = devId(s.ep);
      const bypass = s.bypass === true;
      sim.emit({ kind: 'viommu.attach', actor: 'vmm', cause: 0, ep, domain, bypass: bypass ? 1 : 0, status: attachStatus(v, sim.world.devices.has(ep), domain, bypass), seq: 0 });
      return;
    }
    case 'detach': {
      const ep = devId(s.ep);
      sim.emit({ kind: 'viommu.detach', actor: 'vmm', cause: 0, ep, domain, status: detachStatus(v, ep, domain), seq: 0 });
      return;
    }
    case 'map': {
      const [start, end, flags] = [addr(s, 'start'), addr(s, 'end'), mapFlags(s.flags)];
      sim.emit({ kind: 'viommu.map', actor: 'vmm', cause: 0, domain, start, end, phys: addr(s, 'phys'), flags, status: mapStatus(v, domain, start, end, flags), seq: 0 });
      return;
    }
    case 'unmap': {
      const [start, end] = [addr(s, 'start'), addr(s, 'end')];
      sim.emit({ kind: 'viommu.unmap', actor: 'vmm', cause: 0, domain, start, end, status: unmapStatus(v, domain, start, end), seq: 0 });
      return;
    }
  }
}

/** The bytes the scenario gives the device for the `nth` chain it completes on queue q, if any. */
export function payloadFor(sim: Sim, q: number, nth: number): Uint8Array | undefined {
  let k = 0;
  for (const s of sim.config.scenario ?? []) if (s.op === 'payload' && s.q === q && k++ === nth) return bytes(s, 'data');
  return undefined;
}
