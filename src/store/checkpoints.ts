// Checkpoints, stored content-addressed (store version 2). A checkpoint is the world after an event:
// its JSON header (the plain world and the simulation state) and its guest pages. Between two
// checkpoints only a few pages change (ring pages and the buffers in flight), so each page content
// is stored once, in `pages`, under the SHA-256 of its bytes, whichever checkpoint or trace holds it
// (without its trailing zeros: buffers are written from their start); a checkpoint row keeps its
// header (deflated) and the list of (pfn, page id) in the map's order.
// `trace_pages` says which traces use a page, so deleting a trace deletes the pages only it used.
//
// Reads put the checkpoint back together in the one blob layout engine/snapshot.ts decodes and the
// state hash covers (u32 header length, header, then u64 pfn + 4096 bytes per page), so the state
// hashes of every recording, old or new, keep their values. A row whose `pages` is NULL is a
// checkpoint written before version 2 (the whole blob in `state`): it reads as it always did.
import type Database from 'better-sqlite3';
import { createHash, type Hash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { IntegrityError, InputError } from '../errors.js';

export const PAGE_BYTES = 4096;
/** bytes per page reference: u64 pfn, u48 page id */
const REF = 14;

/** The stored form of a checkpoint, as the readers get it (state: the whole blob, see above). */
export interface StoredCheckpoint {
  seq: number;
  state: Buffer;
  state_hash: string;
}

interface Row {
  seq: number;
  state: unknown;
  state_hash: unknown;
  pages: unknown;
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/**
 * Writes the checkpoints of one trace. A page whose pfn and bytes equal what this writer stored at the
 * same place (index in the map's order) last time reuses that page id without hashing (pages are only
 * ever added to a world, at the end of its map); a changed page is hashed and stored unless a page
 * with the same content is already there (from this trace or another). One writer per trace and
 * connection; its memory of the last checkpoint is only a shortcut, every id it reuses is in the
 * database (it is used only inside the recording's transactions, and a recording that fails is dropped).
 */
export class CheckpointWriter {
  private readonly used = new Set<number>();
  private readonly insPage: Database.Statement;
  private readonly pageByHash: Database.Statement;
  private readonly insUse: Database.Statement;
  private readonly insCk: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly trace: number,
    opts: { replace?: boolean } = {},
  ) {
    this.insPage = db.prepare(`INSERT OR IGNORE INTO pages (hash, data) VALUES (?, ?)`);
    this.pageByHash = db.prepare(`SELECT id FROM pages WHERE hash = ?`).pluck();
    this.insUse = db.prepare(`INSERT OR IGNORE INTO trace_pages (trace, page) VALUES (?, ?)`);
    this.insCk = db.prepare(`INSERT ${opts.replace ? 'OR REPLACE ' : ''}INTO checkpoints (trace, seq, state_hash, state, pages) VALUES (?, ?, ?, ?, ?)`);
  }

  /**
   * Stores the checkpoint after event seq: `blob` in the layout above (header with the simulation
   * state), `stateHash` its state hash (computed by the caller, who may have it already).
   */
  write(seq: number, stateHash: string, blob: Uint8Array): void {
    const b = asBuffer(blob);
    const split = splitBlob(b);
    if (!split) throw new Error(`checkpoint after #${seq}: not a checkpoint blob`);
    const pages = b.subarray(split.pagesAt);
    this.store({ seq, head: split.head, count: pages.length / (8 + PAGE_BYTES), at: null, pages }, () => stateHash);
  }

  /**
   * The recorder's pages (writeRow): every page of the last checkpoint written, in the blob's pages
   * layout (u64 pfn + 4096 bytes each, in the map's order), and each one's page id. A row lists only
   * the pages that may have changed; the others are these, as they were.
   */
  private region = Buffer.alloc(0);
  private count = 0;
  private ids: number[] = [];

  /**
   * Stores a checkpoint the recorder sent as a {@link CheckpointRowParts} (only the pages that may
   * have changed since the last one written here: see recorder.ts) and returns its state hash. The
   * stored rows are those write() stores for the whole blob: the same header, the same page ids (a
   * page's id is its content's, whichever way it was found), the same state hash.
   */
  writeRow(row: CheckpointRowParts): string {
    return this.store(row, (region) => createHash('sha256').update(row.hashHead).update(region).digest('hex'));
  }

  /** Stores a row whose state hash is `hashOf` the pages region (write: the caller's; writeRow: computed). */
  private store(row: Omit<CheckpointRowParts, 'hashHead'>, hashOf: (region: Buffer) => string): string {
    const S = 8 + PAGE_BYTES;
    const listed = row.at ? row.at.length : row.count;
    if (row.pages.length !== listed * S) throw new Error(`checkpoint after #${row.seq}: ${row.pages.length} page bytes for ${listed} pages`);
    if (row.at && row.count < this.count) throw new Error(`checkpoint after #${row.seq}: ${row.count} pages, fewer than the ${this.count} it follows`);
    if (this.region.length < row.count * S) {
      const grown = Buffer.allocUnsafe(Math.max(row.count * S, 2 * this.region.length));
      this.region.copy(grown, 0, 0, this.count * S);
      this.region = grown;
    }
    const pages = asBuffer(row.pages);
    let next = 0; // with `at`: every index from this.count on must be listed, in order
    for (let k = 0; k < listed; k++) {
      const i = row.at ? row.at[k]! : k;
      if (i >= row.count || (i >= this.count && i !== Math.max(next, this.count))) throw new Error(`checkpoint after #${row.seq}: page ${i} out of order`);
      if (i >= this.count) next = i + 1;
      this.place(i, pages, k * S);
    }
    if (row.at && row.count > this.count && next !== row.count) throw new Error(`checkpoint after #${row.seq}: pages ${next}..${row.count - 1} missing`);
    this.count = row.count;
    const region = this.region.subarray(0, row.count * S);
    const stateHash = hashOf(region);
    const refs = Buffer.allocUnsafe(row.count * REF);
    for (let i = 0; i < row.count; i++) {
      region.copy(refs, i * REF, i * S, i * S + 8);
      refs.writeUIntLE(this.ids[i]!, i * REF + 8, 6);
    }
    this.insCk.run(this.trace, row.seq, stateHash, deflateRawSync(row.head, { level: 1 }), deflateRawSync(refs, { level: 1 }));
    return stateHash;
  }

  /** Page i of the region becomes the page at pages[off] (u64 pfn + bytes): its id kept if nothing changed, else found or stored. */
  private place(i: number, pages: Buffer, off: number): void {
    const S = 8 + PAGE_BYTES;
    const at = i * S;
    if (i < this.count && pages.compare(this.region, at, at + S, off, off + S) === 0) return; // same pfn, same bytes
    pages.copy(this.region, at, off, off + S);
    const id = this.pageId(this.region.subarray(at + 8, at + S));
    this.ids[i] = id;
    if (!this.used.has(id)) {
      this.insUse.run(this.trace, id);
      this.used.add(id);
    }
  }

  private pageId(page: Buffer): number {
    const hash = createHash('sha256').update(page).digest();
    // stored without its trailing zeros (a buffer is mostly written from its start): free to undo, and about 40% less
    let end = PAGE_BYTES;
    while (end > 0 && page[end - 1] === 0) end--;
    const ins = this.insPage.run(hash, page.subarray(0, end));
    const id = ins.changes === 1 ? Number(ins.lastInsertRowid) : (this.pageByHash.get(hash) as number);
    if (!Number.isSafeInteger(id) || id < 1 || id >= 2 ** 48) throw new Error(`page id ${id} out of range`);
    return id;
  }
}

/**
 * A checkpoint as the recorder hands it to {@link CheckpointWriter.writeRow}: its header, and its
 * pages, all of them or only those that may have changed since the last row of the same writer.
 */
export interface CheckpointRowParts {
  seq: number;
  /** the JSON header with the simulation state (stored deflated) */
  head: Uint8Array;
  /** what the state hash starts with: u32 length + the header with "sim" null (see checkpointStateHash) */
  hashHead: Uint8Array;
  /** pages in the checkpoint */
  count: number;
  /**
   * The index (in the map's order) of each page in `pages`, increasing; the pages not listed are
   * those of the last row at the same index, unchanged. null: every page is listed.
   */
  at: Uint32Array | null;
  /** u64 pfn (little-endian) + 4096 bytes per listed page */
  pages: Uint8Array;
}

/** The JSON header and where the pages start, or null if the blob is not a checkpoint. */
function splitBlob(b: Buffer): { head: Buffer; pagesAt: number } | null {
  if (b.length < 4) return null;
  const n = b.readUInt32LE(0);
  const pagesAt = 4 + n;
  if (pagesAt > b.length || (b.length - pagesAt) % (8 + PAGE_BYTES) !== 0) return null;
  return { head: b.subarray(4, pagesAt), pagesAt };
}

const SELECT = `SELECT seq, state, state_hash, pages FROM checkpoints`;
const SELECT_V1 = `SELECT seq, state, state_hash, NULL AS pages FROM checkpoints`;

/** The column list a reader can ask for: a version-1 file (opened read-only, not migrated) has no `pages` column. */
export function checkpointSelect(db: Database.Database): string {
  const cols = db.prepare(`SELECT name FROM pragma_table_info('checkpoints')`).pluck().all() as string[];
  return cols.includes('pages') ? SELECT : SELECT_V1;
}

/**
 * Page contents by id, fetched in one statement per checkpoint and laid out as the pages part of the
 * checkpoint blob (u64 pfn + 4096 bytes per page): one buffer per checkpoint instead of one per page
 * (a page stored without its trailing zeros is padded in place), hashed in one piece. `keep` carries
 * the last checkpoint's pages to the next (storedCheckpoints: most pages repeat).
 */
export class PageReader {
  private readonly many: Database.Statement;
  private cache = new Map<number, Uint8Array>();

  constructor(
    db: Database.Database,
    private readonly keep = false,
  ) {
    this.many = db.prepare(`SELECT id, data FROM pages WHERE id IN (SELECT value FROM json_each(?))`).raw();
  }

  /**
   * The pages named by `refs` (the stored page list: u64 pfn, u48 page id each), in that order, as
   * the blob's pages part; `where` names the checkpoint in the error for a page that is missing or
   * damaged. Written with typed-array builtins (set, fill, DataView) rather than Buffer's methods:
   * the same bytes, and much less code for V8 to compile when this loop gets hot in a process that
   * seeks (it ran to a 13-26 ms compile, landing on one seek).
   */
  read(refs: Buffer, where: string): { region: Buffer; pfns: bigint[]; pages: Uint8Array[] } {
    const count = refs.length / REF;
    const region = Buffer.allocUnsafe(count * (8 + PAGE_BYTES));
    const bytes = new Uint8Array(region.buffer, region.byteOffset, region.length);
    const view = new DataView(region.buffer, region.byteOffset, region.length);
    const pfns: bigint[] = new Array(count);
    const pages: Uint8Array[] = new Array(count);
    const ids: number[] = new Array(count);
    const want: number[] = [];
    for (let i = 0; i < count; i++) {
      const r = i * REF + 8;
      // u48 little-endian: exact as a number
      const id = refs[r]! + refs[r + 1]! * 0x100 + refs[r + 2]! * 0x10000 + refs[r + 3]! * 0x1000000 + (refs[r + 4]! + refs[r + 5]! * 0x100) * 0x100000000;
      ids[i] = id;
      if (!this.cache.has(id)) want.push(id);
    }
    const got = new Map<number, Uint8Array>();
    const damaged = new Set<number>();
    if (want.length)
      for (const [id, data] of this.many.all(JSON.stringify(want)) as [number, unknown][]) {
        if (!Buffer.isBuffer(data) || data.length > PAGE_BYTES) damaged.add(id);
        else got.set(id, data);
      }
    const next = this.keep ? new Map<number, Uint8Array>() : null;
    for (let i = 0; i < count; i++) {
      const id = ids[i]!;
      const data = got.get(id) ?? this.cache.get(id);
      if (!data) throw new IntegrityError(`${where} names page ${id}, which is ${damaged.has(id) ? 'damaged' : 'missing'}`);
      const at = i * (8 + PAGE_BYTES);
      for (let k = 0; k < 8; k++) bytes[at + k] = refs[i * REF + k]!;
      pfns[i] = view.getBigUint64(at, true);
      bytes.set(data, at + 8);
      // the trailing zeros it was stored without
      if (data.length < PAGE_BYTES) bytes.fill(0, at + 8 + data.length, at + 8 + PAGE_BYTES);
      const page = new Uint8Array(region.buffer, region.byteOffset + at + 8, PAGE_BYTES);
      pages[i] = page;
      next?.set(id, page);
    }
    if (next) this.cache = next;
    return { region, pfns, pages };
  }
}

/** A checkpoint row taken apart: its header (with the simulation state), and its pages as pfn and bytes. */
export interface CheckpointParts {
  seq: number;
  stateHash: string;
  head: Buffer;
  pfns: bigint[];
  pages: Uint8Array[];
  /** the pages part of the blob (u64 pfn + the 4096 bytes of each page, in order): `pages` are views of it */
  region: Buffer;
}

/**
 * A stored checkpoint's parts, its state checked against its stored hash before use. Throws an error
 * naming the checkpoint when a part is missing, damaged or not what it was stored as.
 */
export function readParts(trace: number, row: Row, pages: PageReader | null): CheckpointParts {
  const where = `trace ${trace} is corrupt: the checkpoint after #${row.seq}`;
  if (!Buffer.isBuffer(row.state)) throw new InputError(`${where} is stored as ${typeof row.state === 'string' ? 'TEXT' : typeof row.state}, not a blob`);
  let parts: CheckpointParts;
  if (row.pages === null || row.pages === undefined) {
    // a version-1 row: the whole blob
    const split = splitBlob(row.state);
    if (!split) throw new IntegrityError(`${where} is not a checkpoint (its header is damaged)`);
    parts = { seq: row.seq, stateHash: String(row.state_hash), head: split.head, pfns: [], pages: [], region: row.state.subarray(split.pagesAt) };
    for (let p = split.pagesAt; p < row.state.length; p += 8 + PAGE_BYTES) {
      parts.pfns.push(row.state.readBigUInt64LE(p));
      parts.pages.push(row.state.subarray(p + 8, p + 8 + PAGE_BYTES));
    }
  } else {
    if (!Buffer.isBuffer(row.pages) || !pages) throw new InputError(`${where} has its page list stored as ${typeof row.pages}, not a blob`);
    let head: Buffer, refs: Buffer;
    try {
      head = inflateRawSync(row.state);
      refs = inflateRawSync(row.pages);
    } catch {
      throw new IntegrityError(`${where} is not a checkpoint (its header is damaged)`);
    }
    if (refs.length % REF !== 0) throw new IntegrityError(`${where} is not a checkpoint (its page list is damaged)`);
    parts = { seq: row.seq, stateHash: String(row.state_hash), head, ...pages.read(refs, where) };
  }
  const got = partsStateHash(parts);
  if (got === null) throw new IntegrityError(`${where} is not a checkpoint (its header is damaged)`);
  if (got !== row.state_hash) throw new IntegrityError(`${where} hashes to ${got.slice(0, 16)}…, not to its stored state hash ${String(row.state_hash).slice(0, 16)}…`);
  return parts;
}

/** The parts as the one blob layout (engine/snapshot.ts decodeCheckpoint reads it). */
export function partsToBlob(c: CheckpointParts): Buffer {
  const blob = Buffer.allocUnsafe(4 + c.head.length + c.region.length);
  blob.writeUInt32LE(c.head.length, 0);
  c.head.copy(blob, 4);
  c.region.copy(blob, 4 + c.head.length);
  return blob;
}

/** The state hash of a checkpoint's parts: checkpointStateHash of its blob, without making the blob. */
function partsStateHash(c: CheckpointParts): string | null {
  // the pages part in one piece: one update instead of two per page
  return stateHashOfHead(c.head)?.update(c.region).digest('hex') ?? null;
}

/** A SHA-256 fed with the hashed form of the header (its "sim" member replaced by null), or null if it is not a header. */
function stateHashOfHead(head: Buffer): Hash | null {
  const at = head.lastIndexOf(',"sim":');
  if (at < 0 || head[head.length - 1] !== 0x7d) return null;
  const nullHead = Buffer.concat([head.subarray(0, at), Buffer.from(',"sim":null}')]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(nullHead.length, 0);
  return createHash('sha256').update(len).update(nullHead);
}

/**
 * SHA-256 of a checkpoint blob's state: what recorder.ts encodeCheckpointRow hashes, i.e. the blob
 * with the JSON header's last member ("sim", the simulation state) replaced by null.
 */
export function checkpointStateHash(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const n = blob.readUInt32LE(0);
  if (4 + n > blob.length) return null;
  return stateHashOfHead(blob.subarray(4, 4 + n))?.update(blob.subarray(4 + n)).digest('hex') ?? null;
}

/** The parts of the checkpoints of a trace in seq order (up to `last`), each checked; read one at a time (the caller may write meanwhile). */
export function* storedCheckpoints(db: Database.Database, trace: number, last: number): Generator<CheckpointParts> {
  const select = checkpointSelect(db);
  const seqs = db.prepare(`SELECT seq FROM checkpoints WHERE trace = ? AND seq <= ? ORDER BY seq`).pluck().all(trace, last) as number[];
  const one = db.prepare(`${select} WHERE trace = ? AND seq = ?`);
  const pages = select === SELECT ? new PageReader(db, true) : null;
  for (const seq of seqs) yield readParts(trace, one.get(trace, seq) as Row, pages);
}

/** The nearest checkpoint of a trace at or before seq (and at or before `last`), checked, or null. */
export function partsBefore(db: Database.Database, trace: number, seq: number, last: number): CheckpointParts | null {
  // the version-2 statement first (a seek's every statement counts): a version-1 file has no `pages`
  // column, which SQLite says when it prepares the statement
  const where = ` WHERE trace = ? AND seq <= ? AND seq <= ? ORDER BY seq DESC LIMIT 1`;
  let stmt: Database.Statement;
  let v2 = true;
  try {
    stmt = db.prepare(SELECT + where);
  } catch (e) {
    if (checkpointSelect(db) !== SELECT_V1) throw e;
    stmt = db.prepare(SELECT_V1 + where);
    v2 = false;
  }
  const row = stmt.get(trace, seq, last) as Row | undefined;
  return row ? readParts(trace, row, v2 ? new PageReader(db) : null) : null;
}

/** Deletes a trace's checkpoints and the pages no other trace uses (inside the caller's transaction). */
export function deleteCheckpoints(db: Database.Database, trace: number): void {
  db.prepare(`DELETE FROM checkpoints WHERE trace = ?`).run(trace);
  if (!hasTable(db, 'trace_pages')) return;
  db.prepare(
    `DELETE FROM pages WHERE id IN (SELECT page FROM trace_pages WHERE trace = @trace)
       AND NOT EXISTS (SELECT 1 FROM trace_pages u WHERE u.page = pages.id AND u.trace != @trace)`,
  ).run({ trace });
  db.prepare(`DELETE FROM trace_pages WHERE trace = ?`).run(trace);
}

/** Copies the checkpoints of trace `from` in `src` to trace `to` in `dst` (pages deduplicated there). */
export function copyCheckpoints(src: Database.Database, dst: Database.Database, from: number, to: number): void {
  const w = new CheckpointWriter(dst, to);
  for (const c of storedCheckpoints(src, from, Number.MAX_SAFE_INTEGER)) w.write(c.seq, c.stateHash, partsToBlob(c));
}

function hasTable(db: Database.Database, name: string): boolean {
  return !!db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name);
}

/**
 * Store version 1 → 2: every checkpoint blob is split into its header and its pages, each page stored
 * once. The state hashes do not change (the blob a reader puts back together is the same bytes). A
 * row whose blob is not a checkpoint is left as it is, for the reader to report as it did before.
 */
export function migrateCheckpointsToPages(db: Database.Database): void {
  const cols = db.prepare(`SELECT name FROM pragma_table_info('checkpoints')`).pluck().all() as string[];
  if (!cols.includes('pages')) db.exec(`ALTER TABLE checkpoints ADD COLUMN pages BLOB`);
  const traces = db.prepare(`SELECT DISTINCT trace FROM checkpoints WHERE pages IS NULL ORDER BY trace`).pluck().all() as number[];
  const one = db.prepare(`SELECT state, state_hash FROM checkpoints WHERE trace = ? AND seq = ?`);
  for (const trace of traces) {
    const w = new CheckpointWriter(db, trace, { replace: true });
    const seqs = db.prepare(`SELECT seq FROM checkpoints WHERE trace = ? AND pages IS NULL ORDER BY seq`).pluck().all(trace) as number[];
    for (const seq of seqs) {
      const row = one.get(trace, seq) as { state: unknown; state_hash: unknown };
      if (!Buffer.isBuffer(row.state) || typeof row.state_hash !== 'string' || !splitBlob(row.state)) continue;
      w.write(seq, row.state_hash, row.state);
    }
  }
}
