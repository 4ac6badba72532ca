import type { Command } from 'commander';
import { exportTrace } from '../src/app/export.js';
import { exportPerfetto } from '../src/app/perfetto.js';
import { UsageError } from '../src/errors.js';
import { type CommonOpts, dbPath, parseCount, withCommon } from './common.js';
import { progressBar } from './progress.js';
import { write } from './output.js';

// stdout through output.ts: synchronous writes (a slow reader blocks the export: back-pressure),
// and a reader that has gone (EPIPE) stops it at once
const writeStdout = (chunk: string): void => write(chunk);

export function exportCommand(program: Command): void {
  withCommon(program.command('export <trace>'))
    .description('write a trace on stdout: canonical JSONL (header line, then one JSON object per event), or a Perfetto / chrome://tracing timeline')
    .option('--format <f>', 'jsonl | perfetto (Chrome JSON trace events: a track per actor, IOTLB entries and IOMMU mappings as spans, findings, causal-chain arrows)', 'jsonl')
    .option('--from <seq>', 'perfetto: only events from this seq (IOTLB entries and mappings alive then begin there)')
    .option('--to <seq>', 'perfetto: only events up to this seq')
    .action(async (id: string, o: CommonOpts & { format: string; from?: string; to?: string }) => {
      if (o.format !== 'jsonl' && o.format !== 'perfetto') throw new UsageError(`--format must be jsonl or perfetto, got ${JSON.stringify(o.format)}`);
      const from = parseCount('--from', o.from, 1);
      const to = parseCount('--to', o.to, 1);
      if (o.format === 'jsonl' && (from !== undefined || to !== undefined)) throw new UsageError('--from/--to go with --format perfetto (a JSONL export is always the whole trace)');
      const bar = progressBar(o, 'export');
      try {
        if (o.format === 'perfetto') await exportPerfetto(dbPath(o), id, writeStdout, { progress: (d, t) => bar.update(d, t), from, to });
        else await exportTrace(dbPath(o), id, writeStdout, { progress: (d, t) => bar.update(d, t) });
      } finally {
        bar.stop();
      }
    });
}
