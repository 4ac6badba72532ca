import type { Command } from 'commander';
import { bisectRun, bisectTraces, type BisectReport } from '../src/app/bisect.js';
import { EXIT, UsageError } from '../src/errors.js';
import { type CommonOpts, bold, dbPath, dim, green, out, printJson, red } from './common.js';
import { withCommon } from './common.js';
import { progressBar } from './progress.js';
import { addSimOptions, type SimOpts, simConfigOf } from './sim-options.js';

interface Opts extends CommonOpts, SimOpts {
  pathA?: string;
  pathB?: string;
}

export function bisectCommand(program: Command): void {
  addSimOptions(withCommon(program.command('bisect [traceA] [traceB]')), false)
    .description('find the first guest operation whose observable outcome differs between two DMA paths, and why (exit 0 none, 4 divergence found, 3 not comparable)')
    .option('--path-a <name>', 'the reference path (with --workload)', 'direct')
    .option('--path-b <name>', 'the path under test (with --workload)', 'iommu')
    .action((a: string | undefined, b: string | undefined, o: Opts) => {
      let r: BisectReport & { traces?: [number, number] };
      const bar = progressBar(o, 'bisect', '');
      const progress = (d: number, t: number, what?: string) => bar.update(d, t, what);
      try {
        if (a !== undefined || b !== undefined) {
          if (a === undefined || b === undefined) throw new UsageError('bisect takes two trace ids, or --workload with --path-a/--path-b');
          r = bisectTraces(dbPath(o), a, b, progress);
        } else {
          const A = simConfigOf(o, o.pathA);
          const B = simConfigOf(o, o.pathB);
          const { path: _p, ...base } = B.config;
          r = bisectRun({ db: dbPath(o), seed: A.seed, base, pathA: A.config.path, pathB: B.config.path }, progress);
        }
      } finally {
        bar.stop();
      }
      if (o.json) {
        const { diverged, op, probes, a: ra, b: rb, bytes, chain } = r;
        printJson({ diverged, op, probes, a: ra, b: rb, bytes, chain, part: r.part, access: r.access, ops: r.ops });
      } else if (!r.diverged) {
        out(green(`no divergence: traces ${r.a.trace} and ${r.b.trace} agree on all ${r.ops} guest operations (${r.probes} probes)`));
      } else {
        out(`${red('divergence')} at guest operation ${bold(String(r.op))} (${r.probes} probes over ${r.ops} operations): ${r.part} differs`);
        out(`  A: trace ${r.a.trace} at #${r.a.seq}    B: trace ${r.b.trace} at #${r.b.seq}`);
        if (r.bytes.length) out(`  bytes (offset: expected → got): ${r.bytes.slice(0, 8).map((x) => `${x.offset}: ${x.expected}→${x.got}`).join(', ')}${r.bytes.length > 8 ? ' …' : ''}`);
        if (r.access) out(`  the device access behind it: #${r.access}`);
        if (r.chain.length) out(bold('  causal chain:'));
        for (const c of r.chain) out(`    ${c.text}`);
        out(dim(`  dmareplay log ${r.b.trace} --from ${Math.max(1, (r.chain[0]?.seq ?? 1) - 5)} --to ${(r.chain.at(-1)?.seq ?? 1) + 2}`));
      }
      if (r.diverged) process.exitCode = EXIT.divergence;
    });
}
