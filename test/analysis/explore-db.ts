// What a database says about explore campaigns, without trace ids (they depend on insertion order).
import Database from 'better-sqlite3';

export function exploreContents(path: string) {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const q = (sql: string) => db.prepare(sql).all();
    return {
      campaigns: q(`SELECT id FROM explore_campaigns ORDER BY id`),
      blocks: q(`SELECT campaign, lo, hi, seeds, passing, runs, failing FROM explore_blocks ORDER BY campaign, lo`),
      sigs: q(`SELECT campaign, lo, sig, count, first_seed, first_point FROM explore_block_sigs ORDER BY campaign, lo, sig`),
      signatures: q(`SELECT campaign, sig, class, rule, shape, message, seed, point FROM explore_signatures ORDER BY campaign, sig`),
      repro: q(`SELECT campaign, sig, seed, point, orig_events, orig_hash, events, minimized FROM explore_repro ORDER BY campaign, sig`),
      reproTraces: q(`SELECT r.sig, t.events, t.hash, t.config FROM explore_repro r JOIN traces t ON t.id = r.trace ORDER BY r.campaign, r.sig`),
      traces: (db.prepare(`SELECT count(*) AS n FROM traces`).get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

/** Stored blocks, 0 while the file or its tables do not exist yet. */
export function storedBlocks(path: string): number {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare(`SELECT count(*) AS n FROM explore_blocks`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}
