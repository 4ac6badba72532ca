import type { Command } from 'commander';
import { record } from '../src/app/record.js';
import { UsageError } from '../src/errors.js';
import { ConfigError, defaultDevices, type DeviceConfig, defaultFaults, parseFault, parseVariant, type SimConfig, type WorkloadName, WORKLOADS, FAULT_KINDS } from '../src/sim/config.js';
import { PATHS } from '../src/model/types.js';
import type { PathName } from '../src/model/types.js';
import { type CommonOpts, bold, dbPath, out, parseCount, parseSeed, printJson, red, withCommon } from './common.js';
import { printFinding } from './findings.js';

interface Opts extends CommonOpts {
  workload: string;
  path: string;
  seed: string;
  ops?: string;
  ring?: string;
  fault?: string[];
  variant?: string[];
  checkpointEvery?: string;
  name?: string;
  packed?: boolean;
  eventIdx?: boolean;
  indirect?: boolean;
  translate?: string;
  backend?: string;
  accessPlatform?: boolean;
  protected?: boolean;
}

export function recordCommand(program: Command): void {
  withCommon(program.command('record'))
    .description('run a workload under a DMA path, record every event, report findings')
    .option('--workload <name>', `workload: ${WORKLOADS.filter((w) => w !== 'script').join(' | ')}`, 'remap')
    .option('--path <name>', `DMA path: ${PATHS.join(' | ')}`, 'iommu')
    .option('--seed <n>', 'random seed (an integer; stored as a string)', '1')
    .option('--ops <n>', 'guest operations to run', '8')
    .option('--ring <n>', 'virtqueue size (power of two, 2..256)', '256')
    .option('--fault <kind[=arg]>', `inject a fault (repeatable; 'none' for no fault): ${FAULT_KINDS.join(', ')}`, collect, [])
    .option('--variant <key=value>', 'a kernel/QEMU behaviour variant (repeatable), e.g. wakeRule=gt, sizeZero=reject-all, swiotlbMapCopy=dir', collect, [])
    .option('--packed', 'negotiate VIRTIO_F_RING_PACKED')
    .option('--no-event-idx', 'do not negotiate VIRTIO_RING_F_EVENT_IDX')
    .option('--no-indirect', 'do not negotiate VIRTIO_RING_F_INDIRECT_DESC')
    .option('--no-access-platform', 'the device does not offer VIRTIO_F_ACCESS_PLATFORM (legacy/transitional)')
    .option('--translate <mode>', 'what the device does with desc.addr: gpa | iova | shadow (default: what the path implies)')
    .option('--backend <name>', 'vhost | vhost-vdpa | qemu', 'vhost')
    .option('--protected', 'a protected guest (SEV/TDX): ACCESS_PLATFORM required')
    .option('--checkpoint-every <n>', 'store a checkpoint every N events')
    .option('--name <name>', 'a name for the trace')
    .action((o: Opts) => {
      const seed = parseSeed(o.seed);
      let faults;
      try {
        faults =
          o.fault && o.fault.length
            ? o.fault.filter((f) => f !== 'none').map(parseFault)
            : defaultFaults(o.workload as WorkloadName, o.path as PathName);
      } catch (e) {
        if (e instanceof ConfigError) throw new UsageError(e.message);
        throw e;
      }
      let variants = {};
      try {
        for (const v of o.variant ?? []) variants = { ...variants, ...parseVariant(v) };
      } catch (e) {
        if (e instanceof ConfigError) throw new UsageError(e.message);
        throw e;
      }
      const config: SimConfig = {
        workload: o.workload as WorkloadName,
        path: o.path as PathName,
        ops: parseCount('--ops', o.ops, 0, 100_000_000)!,
        ringNum: parseCount('--ring', o.ring, 2, 256)!,
        faults,
        variants,
        packed: !!o.packed,
        eventIdx: o.eventIdx !== false,
        indirect: o.indirect !== false,
      };
      if (o.translate || o.backend !== 'vhost' || o.accessPlatform === false) {
        if (o.translate && !['gpa', 'iova', 'shadow'].includes(o.translate)) throw new UsageError(`--translate must be gpa, iova or shadow`);
        if (!['vhost', 'vhost-vdpa', 'qemu'].includes(o.backend ?? 'vhost')) throw new UsageError(`--backend must be vhost, vhost-vdpa or qemu`);
        if (!(WORKLOADS as readonly string[]).includes(o.workload)) throw new UsageError(`unknown workload ${JSON.stringify(o.workload)}`);
        config.devices = defaultDevices(config).map((d) => ({
          ...d,
          translate: o.translate as DeviceConfig['translate'],
          backend: o.backend as DeviceConfig['backend'],
          accessPlatform: o.accessPlatform === false ? false : undefined,
        }));
      }
      if (o.protected) config.protected = true;
      let result;
      try {
        result = record({
          db: dbPath(o),
          config,
          seed,
          name: o.name,
          checkpointEvery: parseCount('--checkpoint-every', o.checkpointEvery, 1),
        });
      } catch (e) {
        if (e instanceof ConfigError) throw new UsageError(e.message);
        throw e;
      }
      if (o.json) return printJson(result);
      out(`${bold('trace ' + result.trace)}: ${result.events} events, hash ${result.hash.slice(0, 16)}`);
      if (!result.findings.length) out('no findings');
      for (const f of result.findings.slice(0, 10)) printFinding(f, red);
      if (result.findings.length > 10) out(`… ${result.findings.length - 10} more (dmareplay log ${result.trace} --kind finding)`);
    });
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}
