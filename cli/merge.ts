import type { Command } from 'commander';
import { merge } from '../src/app/merge.js';
import { UsageError } from '../src/errors.js';
import { bold, out, printJson } from './common.js';

interface Opts {
  into?: string;
  json?: boolean;
  debug?: boolean;
}

export function mergeCommand(program: Command): void {
  program
    .command('merge')
    .description('combine the explore results of shard databases: blocks united, counts added, the smallest reproducer per signature kept')
    .argument('<db...>', 'databases written by dmareplay explore')
    .option('--into <path>', 'the database to merge into (created if missing)')
    .option('--json', 'print one JSON document on stdout')
    .option('--debug', 'print stack traces for errors')
    .action((dbs: string[], o: Opts) => {
      if (!o.into) throw new UsageError('merge needs --into <path>');
      const r = merge(dbs, o.into);
      if (o.json) return printJson(r);
      for (const i of r.inputs) out(`${i.db}: ${i.blocks} blocks (${i.added} new), ${i.reproducers} reproducers taken`);
      for (const c of r.campaigns) {
        out(`${bold('campaign ' + c.campaign)}: ${c.seeds} seeds (${c.passing} passing), ${c.runs} runs (${c.failing} failing), ${c.signatures.length} signatures`);
        for (const s of c.signatures)
          out(`  ${s.sig} ${s.class.padEnd(24)} ${String(s.count).padStart(7)}  first seed ${s.firstSeed}${s.repro ? `  smallest: ${s.repro.replay} (${s.repro.events} events)` : ''}`);
      }
    });
}
