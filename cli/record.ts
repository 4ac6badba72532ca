import type { Command } from 'commander';
import { record } from '../src/app/record.js';
import { type CommonOpts, bold, dbPath, out, parseCount, printJson, red, withCommon } from './common.js';
import { printFinding } from './findings.js';
import { progressBar } from './progress.js';
import { addSimOptions, type SimOpts, simConfigOf } from './sim-options.js';

interface Opts extends CommonOpts, SimOpts {
  checkpointEvery?: string;
  name?: string;
}

export function recordCommand(program: Command): void {
  addSimOptions(withCommon(program.command('record')))
    .description('run a workload under a DMA path, record every event, report findings')
    .option('--checkpoint-every <n>', 'store a checkpoint every N events')
    .option('--name <name>', 'a name for the trace')
    .action((o: Opts) => {
      const { config, seed } = simConfigOf(o);
      const checkpointEvery = parseCount('--checkpoint-every', o.checkpointEvery, 1);
      const bar = progressBar(o, 'record', 'ops');
      let result;
      try {
        result = record({ db: dbPath(o), config, seed, name: o.name, checkpointEvery, progress: (d, t) => bar.update(d, t) });
      } finally {
        bar.stop();
      }
      if (o.json) return printJson(result);
      out(`${bold('trace ' + result.trace)}: ${result.events} events, hash ${result.hash.slice(0, 16)}`);
      if (!result.findingCount) out('no findings');
      for (const f of result.findings.slice(0, 10)) printFinding(f, red);
      if (result.findingCount > 10) out(`… ${result.findingCount - 10} more (dmareplay log ${result.trace} --kind finding)`);
    });
}
