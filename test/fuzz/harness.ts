// Feeds mutants (mutate.ts) to the import, in process, against one database that already holds a
// trace, and judges each outcome:
// - 'internal': anything thrown that is not a typed dmareplay error (UsageError, InputError, ...);
// - 'silent-accept': a mutant that had to be refused (or to count a malformed line) was imported;
// - 'refused-good': a mutant that had to be accepted (a BOM) was refused;
// - 'changed': the pre-existing trace changed, or a refused import left something stored;
// - 'ok' otherwise ('accepted' or 'rejected').
// An accepted mutant's trace is deleted again, so the database stays small over long runs.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importTrace } from '../../src/app/import.js';
import { DmaReplayError } from '../../src/errors.js';
import type { Mutant, Source } from './mutate.js';

export type Verdict = 'accepted' | 'rejected' | 'internal' | 'silent-accept' | 'refused-good' | 'changed';

export interface Outcome {
  verdict: Verdict;
  /** the error message, or what was wrong */
  detail: string;
}

export const BAD: readonly Verdict[] = ['internal', 'silent-accept', 'refused-good', 'changed'];

const EXT: Record<Mutant['format'], string> = { jsonl: 'jsonl', ftrace: 'txt', 'qemu-log': 'log' };

export class Harness {
  readonly db: string;
  private fingerprint = '';
  /** malformed lines counted in each unmutated log */
  private readonly baseline = new Map<string, number>();
  private n = 0;

  constructor(private readonly dir: string) {
    this.db = join(dir, 'fuzz.db');
  }

  /** Stores the pre-existing trace (the first JSONL source) and learns each log's malformed count. */
  async setup(corpus: Source[]): Promise<void> {
    const first = corpus.find((s) => s.format === 'jsonl')!;
    const f = join(this.dir, 'pre.jsonl');
    writeFileSync(f, first.text);
    await importTrace({ db: this.db, file: f });
    this.fingerprint = this.print();
    for (const s of corpus) {
      if (s.format === 'jsonl') continue;
      const p = join(this.dir, `base.${EXT[s.format]}`);
      writeFileSync(p, s.text);
      const r = await importTrace({ db: this.db, file: p, format: s.format });
      this.baseline.set(s.name, r.malformed);
      this.drop();
    }
  }

  /** The pre-existing trace (its row, events, checkpoints and findings) and the number of traces. */
  private print(): string {
    const h = new Database(this.db, { readonly: true });
    try {
      const hash = createHash('sha256');
      hash.update(JSON.stringify(h.prepare(`SELECT * FROM traces WHERE id = 1`).get()));
      for (const r of h.prepare(`SELECT data FROM events WHERE trace = 1 ORDER BY id`).pluck().iterate() as Iterable<Buffer>) hash.update(r);
      for (const r of h.prepare(`SELECT state_hash FROM checkpoints WHERE trace = 1 ORDER BY seq`).pluck().iterate() as Iterable<string>) hash.update(r);
      hash.update(JSON.stringify(h.prepare(`SELECT * FROM findings WHERE trace = 1 ORDER BY seq`).all()));
      hash.update(String((h.prepare(`SELECT count(*) FROM traces`).pluck().get() as number)));
      return hash.digest('hex');
    } finally {
      h.close();
    }
  }

  /** Deletes every trace but the first. */
  private drop(): void {
    const h = new Database(this.db);
    try {
      h.transaction(() => {
        h.prepare(`DELETE FROM events WHERE trace > 1`).run();
        h.prepare(`DELETE FROM checkpoints WHERE trace > 1`).run();
        h.prepare(`DELETE FROM findings WHERE trace > 1`).run();
        h.prepare(`DELETE FROM traces WHERE id > 1`).run();
      })();
    } finally {
      h.close();
    }
  }

  /**
   * Imports one mutant: alone (its format, or auto-detected), or with `partner` (the unmutated other
   * side of the same run) as a --guest/--host pair, through the merge.
   */
  async run(m: Mutant, opts: { strict?: boolean; auto?: boolean; partner?: Source } = {}): Promise<Outcome> {
    const file = join(this.dir, `input-${this.n++ % 4}.${EXT[m.format]}`);
    writeFileSync(file, m.text);
    const partner = opts.partner && m.format !== 'jsonl' ? opts.partner : undefined;
    let other = '';
    if (partner) {
      other = join(this.dir, `partner.${EXT[partner.format]}`);
      writeFileSync(other, partner.text);
    }
    let outcome: Outcome;
    let stored = false;
    try {
      const r = partner
        ? await importTrace({ db: this.db, guest: m.format === 'ftrace' ? file : other, host: m.format === 'ftrace' ? other : file, strict: opts.strict })
        : await importTrace({ db: this.db, file, format: opts.auto ? 'auto' : m.format, strict: opts.strict });
      stored = true;
      const base = (this.baseline.get(m.source) ?? 0) + (partner ? (this.baseline.get(partner.name) ?? 0) : 0);
      if (m.expect === 'reject') outcome = { verdict: 'silent-accept', detail: `imported as trace ${r.trace} (${r.events} events)` };
      else if (m.expect === 'malformed' && r.malformed <= base) outcome = { verdict: 'silent-accept', detail: `imported with ${r.malformed} malformed lines, as many as the source (${base})` };
      else outcome = { verdict: 'accepted', detail: `${r.events} events, ${r.malformed} malformed` };
    } catch (e) {
      if (!(e instanceof DmaReplayError)) {
        outcome = { verdict: 'internal', detail: `${(e as Error)?.constructor?.name}: ${(e as Error)?.message ?? String(e)}` };
      } else if (m.expect === 'accept') outcome = { verdict: 'refused-good', detail: e.message };
      else outcome = { verdict: 'rejected', detail: e.message };
    }
    // a refused import stores nothing; an accepted one added exactly one trace (then dropped)
    const now = this.print();
    if (!stored && now !== this.fingerprint) return { verdict: 'changed', detail: `after "${outcome.detail}" the database is not as it was` };
    if (stored) {
      this.drop();
      if (this.print() !== this.fingerprint) return { verdict: 'changed', detail: 'the pre-existing trace changed' };
    }
    return outcome;
  }
}
