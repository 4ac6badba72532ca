// SQL over a dmareplay database, opened read-only. The stored events are packed binary chunks
// (src/events/binary.ts), so this registers, per connection, virtual tables and views that decode
// them on the fly (better-sqlite3 user-defined virtual tables; nothing is written to the file):
//
//   event          one row per event: trace, seq, kind, code, actor, cause, then one column per
//                  field name of any kind (dev, q, iova, gpa, dma, size, len, ...; NULL where the
//                  kind has no such field).
//                  `FROM event` reads every trace; `FROM event(T)` only trace T, and
//                  `FROM event(T, FROM, TO)` only seqs FROM..TO of it — the fast forms.
//   kinds          code, kind, fields, doc: the event kinds of src/events/schema.ts
//   kind_counts    trace, kind, n: events per kind, counted from the kind bytes (nothing decoded)
//   finding_list   (view) the findings with their trace name and chain length
//   finding_chain  (view) one row per event of each finding's causal chain
//
// Column types: 64-bit fields (u64) are hex text exactly as `log --json` prints them ('0xffffa000');
// addr(x) turns one into fixed-width text ('0x00000000ffffa000') that compares and sorts like the
// number, for ranges. dev is bus:dev.fn text ('00:03.0'). Other integers are SQLite integers
// (at most 32 bits). Bytes are hex text, lists JSON text. No 64-bit value passes through a double.
import type Database from 'better-sqlite3';
import { decodeAt, sizeAt } from '../events/binary.js';
import { bdf } from '../events/format.js';
import { eventToJson } from '../events/json.js';
import { type DmaEvent, KIND_BY_CODE, KIND_NAMES, KINDS, fieldsOf } from '../events/schema.js';
import { CHUNK, readChunks, type TraceRow } from './db.js';

/** events read at a time by the event table: 64 chunks */
const WINDOW = 64 * CHUNK;

/** Every field name of every kind, in first-seen schema order (the event table's field columns). */
export const FIELD_COLUMNS: string[] = [...new Set(KIND_NAMES.flatMap((k) => fieldsOf(k).map(([n]) => n)))];
const HEAD = ['trace', 'seq', 'kind', 'code', 'actor', 'cause'];
/** (vring.setup's `desc` is an SQL keyword: quote it, "desc") */
export const EVENT_COLUMNS = [...HEAD, ...FIELD_COLUMNS];

const hex = (v: bigint) => '0x' + v.toString(16);
const COLUMN_OF = new Map(FIELD_COLUMNS.map((f, i) => [f, HEAD.length + i]));
const FIELDS: ReturnType<typeof fieldsOf>[] = [];
for (const k of KIND_NAMES) FIELDS[KINDS[k].code] = fieldsOf(k);

function row(trace: number, ev: DmaEvent): unknown[] {
  const r: unknown[] = new Array(EVENT_COLUMNS.length).fill(null);
  r[0] = trace;
  r[1] = ev.seq;
  r[2] = ev.kind;
  r[3] = KINDS[ev.kind].code;
  r[4] = ev.actor;
  r[5] = ev.cause;
  const rec = ev as unknown as Record<string, unknown>;
  let json: Record<string, unknown> | undefined;
  for (const [name, spec] of FIELDS[KINDS[ev.kind].code]!) {
    const i = COLUMN_OF.get(name)!;
    const v = rec[name];
    if (name === 'dev' && spec === 'u16') r[i] = bdf(v as number);
    else if (spec === 'u64') r[i] = hex(v as bigint);
    else if (spec === 'bytes') r[i] = Buffer.from(v as Uint8Array).toString('hex');
    else if (spec === 'seqs') r[i] = JSON.stringify(v);
    else if (spec === 'descs' || spec === 'segs') r[i] = JSON.stringify((json ??= eventToJson(ev))[name]);
    else r[i] = v;
  }
  return r;
}

const int = (v: unknown): number | undefined => (v === undefined || v === null ? undefined : Number(v));

/**
 * Registers the virtual tables, functions and temp views on a connection to a dmareplay database.
 * The virtual tables read the chunks through `reader`, a second read-only connection to the same
 * file (a connection cannot run a statement while it is in the middle of one).
 */
export function registerSql(db: Database.Database, reader: Database.Database): void {
  const traces = (only?: number) =>
    (only === undefined ? reader.prepare(`SELECT * FROM traces ORDER BY id`).all() : reader.prepare(`SELECT * FROM traces WHERE id = ?`).all(only)) as TraceRow[];

  db.table('event', {
    columns: EVENT_COLUMNS,
    parameters: ['only_trace', 'from_seq', 'to_seq'],
    rows: function* (t: unknown, from: unknown, to: unknown) {
      for (const tr of traces(int(t))) {
        const lo = Math.max(1, int(from) ?? 1);
        const hi = Math.min(tr.events, int(to) ?? tr.events);
        // a window of chunks is read whole before any row of it is yielded: SQLite drops a cursor
        // it no longer needs (LIMIT) without finishing this generator, and a statement left
        // iterating would keep `reader` busy, so it could not be closed
        for (let wlo = lo, whi: number; wlo <= hi; wlo = whi + 1) {
          whi = Math.min(hi, (Math.floor((wlo - 1) / WINDOW) + 1) * WINDOW); // windows end on a chunk boundary
          for (const c of [...readChunks(reader, tr, wlo, whi)]) {
            let off = 0;
            for (let i = 0; i < c.n; i++) {
              const seq = c.seq0 + i;
              if (seq >= wlo && seq <= whi) yield row(tr.id, decodeAt(c.data, off, seq));
              off += sizeAt(c.data, off);
            }
          }
        }
      }
    },
  });

  db.table('kinds', {
    columns: ['code', 'kind', 'fields', 'doc'],
    rows: function* () {
      for (const k of KIND_NAMES) yield [KINDS[k].code, k, fieldsOf(k).map(([n, s]) => `${n}:${typeof s === 'object' ? s.enum.join('|') : s}`).join(', '), KINDS[k].doc];
    },
  });

  db.table('kind_counts', {
    columns: ['trace', 'kind', 'code', 'n'],
    rows: function* () {
      for (const tr of traces()) {
        const counts = new Map<number, number>();
        for (const c of readChunks(reader, tr)) {
          let off = 0;
          for (let i = 0; i < c.n; i++) {
            const code = c.data[off + 4]!;
            counts.set(code, (counts.get(code) ?? 0) + 1);
            off += sizeAt(c.data, off);
          }
        }
        for (const [code, n] of [...counts].sort((a, b) => a[0] - b[0])) yield [tr.id, KIND_BY_CODE[code] ?? `?${code}`, code, n];
      }
    },
  });

  db.function('addr', { deterministic: true }, (v: unknown) => {
    if (v === null || v === undefined) return null;
    const s = String(v);
    if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(s)) return null;
    return '0x' + BigInt(s).toString(16).padStart(16, '0');
  });
  db.function('bdf', { deterministic: true }, (v: unknown) => (typeof v === 'number' || typeof v === 'bigint' ? bdf(Number(v)) : null));

  db.exec(`
    CREATE TEMP VIEW finding_list AS
      SELECT f.trace, f.seq, f.class, f.message, f.iova, f.gpa, json_array_length(f.chain) AS chain_len, f.chain, t.name AS trace_name
      FROM findings f JOIN traces t ON t.id = f.trace AND f.seq <= t.events;
    CREATE TEMP VIEW finding_chain AS
      SELECT f.trace, f.seq AS finding, f.class, j.key AS pos, j.value AS seq
      FROM findings f, json_each(f.chain) j;
  `);
}
