import type { Command } from 'commander';
import { streamSql } from '../src/app/sql.js';
import { mapped, printJson, streamed } from './output.js';
import { out } from './common.js';

const cell = (v: unknown): string => (v === null ? 'NULL' : typeof v === 'bigint' ? v.toString() : Buffer.isBuffer(v) ? `x'${v.toString('hex')}'` : String(v));

/** Rows whose cells size the table's columns: the rest are written as they come, in those widths. */
const SIZING_ROWS = 1000;

export function sqlCommand(program: Command): void {
  // the database is the first argument (no --db): the command is about one file
  program
    .command('sql <db> <query>')
    .option('--json', 'print one JSON array of row objects')
    .option('--debug', 'print stack traces for errors')
    .description('run one SQL query over a database, read-only: tables event (one row per event; event(T) or event(T, FROM, TO) for one trace), kinds, kind_counts, traces, findings; views finding_list, finding_chain')
    .action((db: string, query: string, o: { json?: boolean }) => {
      const r = streamSql(db, query);
      try {
        if (o.json) {
          // one JSON document: an array of row objects, written row by row; integers beyond 2^53 as decimal strings
          const obj = (row: unknown[]) => Object.fromEntries(r.columns.map((c, i) => [c, typeof row[i] === 'bigint' ? (row[i] as bigint).toString() : Buffer.isBuffer(row[i]) ? (row[i] as Buffer).toString('hex') : row[i]]));
          return printJson(streamed(mapped(r.rows, obj)));
        }
        // a table: the first rows size the columns (at most 60 wide), then every row is written as it is read
        const first: string[][] = [];
        let next = r.rows.next();
        for (; !next.done && first.length < SIZING_ROWS; next = r.rows.next()) first.push(next.value.map(cell));
        const width = r.columns.map((c, i) => {
          let w = c.length;
          for (const t of first) w = Math.max(w, t[i]!.length);
          return Math.min(60, w);
        });
        const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(width[i]!))).join('  ').trimEnd();
        out(line(r.columns));
        for (const t of first) out(line(t));
        if (!first.length) out('(no rows)');
        for (; !next.done; next = r.rows.next()) out(line(next.value.map(cell)));
      } finally {
        r.rows.return(undefined);
        r.close();
      }
    });
}
