import type { Command } from 'commander';
import { runSql } from '../src/app/sql.js';
import { out, toJson } from './common.js';

const cell = (v: unknown): string => (v === null ? 'NULL' : typeof v === 'bigint' ? v.toString() : Buffer.isBuffer(v) ? `x'${v.toString('hex')}'` : String(v));

export function sqlCommand(program: Command): void {
  // the database is the first argument (no --db): the command is about one file
  program
    .command('sql <db> <query>')
    .option('--json', 'print one JSON array of row objects')
    .option('--debug', 'print stack traces for errors')
    .description('run one SQL query over a database, read-only: tables event (one row per event; event(T) or event(T, FROM, TO) for one trace), kinds, kind_counts, traces, findings; views finding_list, finding_chain')
    .action((db: string, query: string, o: { json?: boolean }) => {
      const r = runSql(db, query);
      if (o.json) {
        // one JSON document: an array of row objects; integers beyond 2^53 as decimal strings
        const rows = r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, typeof row[i] === 'bigint' ? (row[i] as bigint).toString() : Buffer.isBuffer(row[i]) ? (row[i] as Buffer).toString('hex') : row[i]])));
        return out(toJson(rows));
      }
      const text = r.rows.map((row) => row.map(cell));
      const width = r.columns.map((c, i) => Math.min(60, Math.max(c.length, ...text.map((t) => t[i]!.length))));
      const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(width[i]!))).join('  ').trimEnd();
      out(line(r.columns));
      for (const t of text) out(line(t));
      if (!text.length) out('(no rows)');
    });
}
