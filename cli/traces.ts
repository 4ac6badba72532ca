import type { Command } from 'commander';
import { listTraces, openDb } from '../src/store/db.js';
import { type CommonOpts, dbPath, out, printJson, withCommon, yellow } from './common.js';

export function tracesCommand(program: Command): void {
  withCommon(program.command('traces'))
    .description('list the traces in the database')
    .action((o: CommonOpts) => {
      const db = openDb(dbPath(o));
      try {
        const rows = listTraces(db).map((t) => ({
          id: t.id,
          name: t.name,
          source: t.source,
          seed: t.seed,
          config: JSON.parse(t.config) as unknown,
          events: t.events,
          findings: t.findings,
          complete: !!t.complete,
          hash: t.hash,
          created: t.created,
          schemaVersion: t.schema_version,
          engineVersion: t.engine_version,
        }));
        if (o.json) return printJson(rows);
        if (!rows.length) return out('no traces');
        // the name says what the trace is (workload/path, ring, ops, seed, faults, variants); --json adds when it was made
        for (const t of rows)
          out(`${String(t.id).padStart(4)}  ${String(t.events).padStart(9)} events ${String(t.findings).padStart(5)} findings  ${t.source === 'sim' ? '' : t.source + ' '}${t.complete ? '' : yellow('INCOMPLETE ')}${t.name}`);
      } finally {
        db.close();
      }
    });
}
