import type { Command } from 'commander';
import { checkKindPattern, logTrace } from '../src/app/log.js';
import { eventToJson } from '../src/events/json.js';
import { formatEvent } from '../src/events/format.js';
import { type CommonOpts, dbPath, parseCount, withCommon } from './common.js';
import { write } from './output.js';

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
        write('[');
        logTrace(dbPath(o), id, q, (ev) => {
          write((first ? '\n' : ',\n') + JSON.stringify(eventToJson(ev)));
          first = false;
        });
        write('\n]\n');
        return;
      }
      logTrace(dbPath(o), id, q, (ev) => write(formatEvent(ev) + '\n'));
    });
}
