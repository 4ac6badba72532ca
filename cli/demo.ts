import type { Command } from 'commander';
import { explainFinding } from '../src/app/explain.js';
import { record } from '../src/app/record.js';
import { replayTrace } from '../src/app/replay.js';
import { recordCommandLine } from '../src/app/sim-args.js';
import { formatEvent } from '../src/events/format.js';
import { eventToJson } from '../src/events/json.js';
import type { SimConfig } from '../src/sim/config.js';
import { type CommonOpts, bold, dbPath, dim, green, out, printJson, red } from './common.js';
import { withCommon } from './common.js';
import { type SimOpts, simConfigOf } from './sim-options.js';

const ROLE: Record<string, string> = {
  'iotlb.update': 'filled the device-IOTLB entry',
  'iommu.unmap': 'guest unmapped the IOVA',
  'iommu.inv': 'vIOMMU asked for the invalidation',
  'iommu.map': 'guest remapped the IOVA to another GPA',
  'dev.access': 'device access through the stale entry',
};

export function demoCommand(program: Command): void {
  withCommon(program.command('demo'))
    .description('record the GPA-remap race under the IOMMU path, replay it, explain the finding (three `record` runs; each prints its exact command line)')
    .action((o: CommonOpts) => {
      const db = dbPath(o);
      // Everything explicit: the race is the delay-invalidate=1 fault, the controls have none.
      // Built through the same option parsing as `record`, so the printed command lines give the same traces (same hash).
      const opts = (path: string, fault: string[]): SimOpts => ({ workload: 'remap', path, seed: '7', ops: '8', ring: '16', fault, variant: [], backend: 'vhost' });
      const configs: Record<'race' | 'prompt' | 'direct', SimConfig> = {
        race: simConfigOf(opts('iommu', ['delay-invalidate=1'])).config,
        prompt: simConfigOf(opts('iommu', [])).config,
        direct: simConfigOf(opts('direct', [])).config,
      };
      const race = record({ db, seed: '7', config: configs.race });
      const rep = replayTrace(db, String(race.trace));
      const prompt = record({ db, seed: '7', config: configs.prompt });
      const direct = record({ db, seed: '7', config: configs.direct });
      const first = race.findings[0];
      const why = first ? explainFinding(db, String(race.trace), first.chain) : null;
      if (o.json)
        return printJson({
          race: { ...race, replay: { ok: rep.ok, events: rep.events } },
          prompt,
          direct,
          commands: Object.fromEntries(Object.entries(configs).map(([k, c]) => [k, recordCommandLine(c, '7')])),
          explanation: why && { chain: why.chain.map(eventToJson), lateInvalidation: why.lateInvalidation && eventToJson(why.lateInvalidation) },
        });
      out(bold('dmareplay demo: the guest changes the GPA behind an IOVA while vhost still caches the old translation'));
      out(dim(`database: ${db}`));
      out();
      out(`${bold('1. record')} remap workload, IOMMU path (virtio with ACCESS_PLATFORM → vIOMMU → vhost device IOTLB),`);
      out(`   seed 7, device-IOTLB invalidation delivered one device pass late:`);
      out(`   $ ${recordCommandLine(configs.race, '7')}`);
      out(`   → trace ${race.trace}: ${race.events} events, ${race.findingCount} findings, hash ${race.hash.slice(0, 16)}`);
      const cks = rep.checkpoints ? ` and ${rep.checkpoints} checkpoint state hashes` : '';
      out(`${bold('2. replay')} trace ${race.trace}: ${rep.ok ? green(`re-executed from the seed; all ${rep.events} events${cks} identical to the recording`) : red('MISMATCH')}`);
      if (first && why) {
        out(`${bold('3. finding')} ${red(first.class)} at #${first.seq}:`);
        out(`   ${first.message}`);
        out(`   causal chain:`);
        for (const ev of why.chain) out(`   ${dim((ROLE[ev.kind] ?? ev.kind).padEnd(40))} ${formatEvent(ev)}`);
        if (why.lateInvalidation) out(`   ${dim('the late invalidation, delivered after'.padEnd(40))} ${formatEvent(why.lateInvalidation)}`);
      }
      out(`${bold('4. controls')} same workload and seed, no fault:`);
      out(`   prompt invalidation (trace ${prompt.trace}): ${prompt.findingCount} findings   $ ${recordCommandLine(configs.prompt, '7')}`);
      out(`   direct GPA path     (trace ${direct.trace}): ${direct.findingCount} findings   $ ${recordCommandLine(configs.direct, '7')}`);
      out();
      const access = why?.chain.find((e) => e.kind === 'dev.access') as { dma: bigint } | undefined;
      out('next:');
      out(`   npx dmareplay export ${race.trace} --format perfetto > race.json   # open in https://ui.perfetto.dev`);
      out(`   npx dmareplay report ${race.trace} -o race.html                    # one self-contained HTML page`);
      out(`   npx dmareplay log ${race.trace} --kind 'iotlb.*,iommu.*,finding'`);
      if (first) out(`   npx dmareplay state ${race.trace} --at ${first.seq}${access ? ` --iova 0x${access.dma.toString(16)}` : ''}`);
    });
}
