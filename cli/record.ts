import type { Command } from 'commander';
import { record } from '../src/app/record.js';
import { UsageError } from '../src/errors.js';
import { ConfigError, defaultFaults, parseFault, type SimConfig, type WorkloadName } from '../src/sim/config.js';
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
  checkpointEvery?: string;
  name?: string;
}

export function recordCommand(program: Command): void {
  withCommon(program.command('record'))
    .description('run a workload under a DMA path, record every event, report findings')
    .option('--workload <name>', 'workload: remap (the GPA-remap race)', 'remap')
    .option('--path <name>', 'DMA path: direct | iommu', 'iommu')
    .option('--seed <n>', 'random seed (an integer; stored as a string)', '1')
    .option('--ops <n>', 'guest operations to run', '8')
    .option('--ring <n>', 'virtqueue size (power of two, 2..256)', '16')
    .option('--fault <kind[=arg]>', 'inject a fault (repeatable): delay-invalidate=K, or none', collect, [])
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
      const config: SimConfig = {
        workload: o.workload as WorkloadName,
        path: o.path as PathName,
        ops: parseCount('--ops', o.ops, 0, 100_000_000)!,
        ringNum: parseCount('--ring', o.ring, 2, 256)!,
        faults,
      };
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
