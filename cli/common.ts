// What every command shares: the database location, --json/--debug, number parsing that rejects
// bad input with a usage error, and printing.
import { styleText } from 'node:util';
import type { Command } from 'commander';
import { UsageError } from '../src/errors.js';
import { write } from './output.js';

export interface CommonOpts {
  db?: string;
  json?: boolean;
  debug?: boolean;
}

export function withCommon(cmd: Command): Command {
  return cmd
    .option('--db <path>', 'SQLite database (default: $DMAREPLAY_DB or ./dmareplay.db)')
    .option('--json', 'print one JSON document on stdout')
    .option('--debug', 'print stack traces for errors');
}

export function dbPath(o: CommonOpts): string {
  return o.db ?? process.env.DMAREPLAY_DB ?? 'dmareplay.db';
}

export function parseCount(name: string, v: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function parseAddr(name: string, v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(v)) throw new UsageError(`${name} must be an address (hex 0x… or decimal), got ${JSON.stringify(v)}`);
  const n = BigInt(v);
  if (n > 0xffffffffffffffffn) throw new UsageError(`${name} ${v} does not fit in 64 bits`);
  return n;
}

export function parseSeed(v: string): string {
  if (!/^[0-9]{1,20}$/.test(v)) throw new UsageError(`--seed must be a non-negative integer, got ${JSON.stringify(v)}`);
  return String(BigInt(v)); // canonical: "007" and "7" are the same seed
}

// JSON with 64-bit values as hex strings (toJson), one document on stdout, streamed where it holds
// Streamed arrays (printJson): see output.ts, which every line the CLI prints goes through.
export { printJson, toJson } from './output.js';

export const bold = (s: string) => styleText('bold', s);
export const red = (s: string) => styleText('red', s);
export const green = (s: string) => styleText('green', s);
export const dim = (s: string) => styleText('dim', s);
export const yellow = (s: string) => styleText('yellow', s);

/**
 * A message made printable on one line: control bytes (C0, DEL, C1), line and paragraph separators,
 * bidi and zero-width format characters and lone surrogates become \\xNN / \\u{N} escapes, so no input
 * echoed in an error can break the line, repaint the terminal or hide text; very long messages are cut.
 */
export function printable(s: string, max = 1000): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
  return t.length > max ? `${t.slice(0, max)}… (${t.length - max} more characters)` : t;
}

export function out(line = ''): void {
  write(line + '\n');
}
