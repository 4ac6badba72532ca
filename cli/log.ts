import type { Command } from 'commander';
import { checkKindPattern, logTrace } from '../src/app/log.js';
import { eventToJson } from '../src/events/json.js';
import { formatEvent } from '../src/events/format.js';
import { type CommonOpts, dbPath, out, parseCount, withCommon } from './common.js';

interface Opts extends CommonOpts {
  from?: string;
  to?: string;
  kind?: string;
}

export function logCommand(program: Command): void {
  withCommon(program.command('log <trace>'))
    .description('print the events of a trace')
    .option('--from <seq>', 'first seq')
    .option('--to <seq>', 'last seq')
    .option('--kind <glob>', 'only these kinds, e.g. iotlb.* or dev.access,finding')
    .action((id: string, o: Opts) => {
      checkKindPattern(o.kind);
      const q = { from: parseCount('--from', o.from, 1), to: parseCount('--to', o.to, 1), kind: o.kind };
      if (o.json) {
        // One JSON document, streamed: an array of events.
        let first = true;
        process.stdout.write('[');
        logTrace(dbPath(o), id, q, (ev) => {
          process.stdout.write((first ? '\n' : ',\n') + JSON.stringify(eventToJson(ev)));
          first = false;
        });
        process.stdout.write('\n]\n');
        return;
      }
      logTrace(dbPath(o), id, q, (ev) => out(formatEvent(ev)));
    });
}
