import type { Command } from 'commander';
import { type Buffer, loadScenario, runScenario } from '../src/app/run.js';
import { PATHS, type PathName } from '../src/model/types.js';
import { ConfigError, parseVariant } from '../src/sim/config.js';
import { UsageError } from '../src/errors.js';
import { type CommonOpts, bold, dbPath, out, parseSeed, printJson, red, withCommon } from './common.js';
import { printFinding } from './findings.js';

interface Opts extends CommonOpts {
  path?: string;
  variant: string[];
  seed: string;
  name?: string;
}

const hex = (v: bigint) => '0x' + v.toString(16);
const buf = (b: Buffer) => `${hex(b.gpa)}+${b.len}${b.dma !== b.gpa ? ` (dma ${hex(b.dma)})` : ''}`;

export function runCommand(program: Command): void {
  withCommon(program.command('run'))
    .argument('<scenario>', 'a scenario file (JSONL of guest-side steps; see README "Scenarios")')
    .description('run a scenario through the device, VMM and IOMMU model, record it, and print what the device did')
    .option('--path <name>', `DMA path of devices that do not name one: ${PATHS.join(' | ')}`)
    .option('--variant <key=value>', 'a kernel/QEMU behaviour variant (repeatable), e.g. backend=qemu', (v: string, prev: string[]) => [...prev, v], [])
    .option('--seed <n>', 'scheduler seed (an integer)', '1')
    .option('--name <name>', 'a name for the trace')
    .action((file: string, o: Opts) => {
      if (o.path !== undefined && !(PATHS as readonly string[]).includes(o.path)) throw new UsageError(`unknown path ${JSON.stringify(o.path)} (known: ${PATHS.join(', ')})`);
      let variants = {};
      try {
        for (const v of o.variant) variants = { ...variants, ...parseVariant(v) };
      } catch (e) {
        if (e instanceof ConfigError) throw new UsageError(e.message);
        throw e;
      }
      const r = runScenario({ db: dbPath(o), text: loadScenario(file), file, path: o.path as PathName | undefined, variants, seed: parseSeed(o.seed), name: o.name });
      if (o.json) return printJson(r);
      out(`${bold('trace ' + r.trace)}: ${r.events} events, hash ${r.hash.slice(0, 16)}${r.scenario.scenario ? ` — ${r.scenario.scenario}` : ''}`);
      for (const c of r.chains) {
        out(`q${c.q} used id=${c.id} len=${c.len} slot=${c.slot} used.idx=${c.usedIdx}${c.tableBytes ? ` (indirect table: ${c.tableBytes} B read)` : ''}`);
        out(`   read:  ${c.read.length ? c.read.map(buf).join(' ') : '-'}`);
        out(`   wrote: ${c.written.length ? c.written.map(buf).join(' ') : '-'}`);
      }
      if (!r.chains.length) out('no used-ring entries');
      for (const q of r.requests) out(`${q.kind} #${q.seq}: ${q.status}`);
      for (const e of r.errors) out(red(`q${e.q} error #${e.seq}: ${e.msg}`));
      out(`interrupts: ${r.interrupts.length ? r.interrupts.map((i) => `q${i.q} #${i.seq}`).join(', ') : 'none'}; kicks: ${r.kicks.length}; IOTLB misses: ${r.misses}`);
      if (!r.findings.length) out('no findings');
      for (const f of r.findings) printFinding(f, red);
    });
}
