import type { Command } from 'commander';
import { explainFinding } from '../src/app/explain.js';
import { record } from '../src/app/record.js';
import { replayTrace } from '../src/app/replay.js';
import { formatEvent } from '../src/events/format.js';
import { eventToJson } from '../src/events/json.js';
import { type CommonOpts, bold, dbPath, dim, green, out, printJson, red } from './common.js';
import { withCommon } from './common.js';

const ROLE: Record<string, string> = {
  'iotlb.update': 'filled the device-IOTLB entry',
  'iommu.unmap': 'guest unmapped the IOVA',
  'iommu.inv': 'vIOMMU asked for the invalidation',
  'iommu.map': 'guest remapped the IOVA to another GPA',
  'dev.access': 'device access through the stale entry',
};

export function demoCommand(program: Command): void {
  withCommon(program.command('demo'))
    .description('record the GPA-remap race under the IOMMU path, replay it, explain the finding')
    .action((o: CommonOpts) => {
      const db = dbPath(o);
      const base = { workload: 'remap' as const, ops: 8, ringNum: 16 };
      const race = record({ db, seed: '7', name: 'demo: remap/iommu, invalidation 1 pass late', config: { ...base, path: 'iommu', faults: [{ kind: 'delay-invalidate', arg: 1 }] } });
      const rep = replayTrace(db, String(race.trace));
      const prompt = record({ db, seed: '7', name: 'demo: remap/iommu, prompt invalidation', config: { ...base, path: 'iommu', faults: [] } });
      const direct = record({ db, seed: '7', name: 'demo: remap/direct GPA', config: { ...base, path: 'direct', faults: [] } });
      const first = race.findings[0];
      const why = first ? explainFinding(db, String(race.trace), first.chain) : null;
      if (o.json)
        return printJson({
          race: { ...race, replay: { ok: rep.ok, events: rep.events } },
          prompt,
          direct,
          explanation: why && { chain: why.chain.map(eventToJson), lateInvalidation: why.lateInvalidation && eventToJson(why.lateInvalidation) },
        });
      out(bold('dmareplay demo: the guest changes the GPA behind an IOVA while vhost still caches the old translation'));
      out(dim(`database: ${db}`));
      out();
      out(`${bold('1. record')} remap workload, IOMMU path (virtio with ACCESS_PLATFORM → vIOMMU → vhost device IOTLB),`);
      out(`   seed 7, device-IOTLB invalidation delivered one device pass late`);
      out(`   → trace ${race.trace}: ${race.events} events, ${race.findings.length} findings, hash ${race.hash.slice(0, 16)}`);
      out(`${bold('2. replay')} trace ${race.trace}: ${rep.ok ? green(`re-executed from the seed, ${rep.events} events verified, ${rep.checkpoints} checkpoint hashes match`) : red('MISMATCH')}`);
      if (first && why) {
        out(`${bold('3. finding')} ${red(first.class)} at #${first.seq}:`);
        out(`   ${first.message}`);
        out(`   causal chain:`);
        for (const ev of why.chain) out(`   ${dim((ROLE[ev.kind] ?? ev.kind).padEnd(40))} ${formatEvent(ev)}`);
        if (why.lateInvalidation) out(`   ${dim('the late invalidation, delivered after'.padEnd(40))} ${formatEvent(why.lateInvalidation)}`);
      }
      out(`${bold('4. controls')} same workload and seed:`);
      out(`   prompt invalidation (trace ${prompt.trace}): ${prompt.findings.length} findings`);
      out(`   direct GPA path     (trace ${direct.trace}): ${direct.findings.length} findings`);
      out();
      out(`next: dmareplay log ${race.trace} --kind 'iotlb.*,iommu.*,finding'   |   dmareplay state ${race.trace} --at ${first?.seq ?? race.events} --iova 0x${first ? BigInt(why!.chain.find((e) => e.kind === 'dev.access') ? (why!.chain.find((e) => e.kind === 'dev.access') as { dma: bigint }).dma : 0n).toString(16) : '0'}`);
    });
}
