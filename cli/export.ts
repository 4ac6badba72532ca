import type { Command } from 'commander';
import { exportTrace } from '../src/app/export.js';
import { type CommonOpts, dbPath, withCommon } from './common.js';

export function exportCommand(program: Command): void {
  withCommon(program.command('export <trace>'))
    .description('write a trace as canonical JSONL on stdout (header line, then one JSON object per event)')
    .action(async (id: string, o: CommonOpts) => {
      await exportTrace(dbPath(o), id, (chunk) => {
        if (process.stdout.write(chunk)) return;
        return new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
      });
    });
}
