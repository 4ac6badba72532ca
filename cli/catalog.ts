import type { Command } from 'commander';
import { runCatalog, updateCatalog } from '../src/app/catalog.js';
import { SCENARIOS } from '../src/sim/catalog.js';
import { UsageError } from '../src/errors.js';
import { type CommonOpts, bold, dim, green, out, printJson, red, withCommon, yellow } from './common.js';

interface Opts extends CommonOpts {
  update?: boolean;
}

export function catalogCommand(program: Command): void {
  withCommon(program.command('catalog [ids...]'))
    .description('run the bug catalog (traces/catalog/): each real bug\'s buggy trace must show its finding class, the fixed one must not')
    .option('--update', 'regenerate traces/catalog/*.jsonl from the scenarios (after a model change)')
    .action((ids: string[], o: Opts) => {
      const unknown = ids.filter((i) => !SCENARIOS.some((s) => s.id === i));
      if (unknown.length) throw new UsageError(`unknown scenario ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
      if (o.update) {
        const files = updateCatalog();
        if (o.json) return printJson({ written: files });
        return out(`wrote ${files.length} traces`);
      }
      const results = runCatalog(undefined, ids);
      if (o.json) printJson(results.map(({ id, upstream, expected, found, fixedFound, ok }) => ({ id, upstream, expected, found, fixedFound, ok })));
      else {
        for (const r of results) {
          out(`${r.ok ? green('ok  ') : red('FAIL')} ${bold(r.id.padEnd(4))} ${r.title}`);
          out(`     ${dim(r.upstream)}`);
          out(`     expected ${r.expected}; buggy found: ${r.found.join(', ') || 'nothing'}; fixed found: ${r.fixedFound.join(', ') || 'nothing'}${r.current ? '' : yellow('  (stored trace differs from the current model: npm run catalog:update)')}`);
        }
        const bad = results.filter((r) => !r.ok).length;
        out(bad ? red(`${bad} of ${results.length} scenarios failed`) : green(`all ${results.length} scenarios ok`));
      }
      if (results.some((r) => !r.ok)) process.exitCode = 1;
    });
}
