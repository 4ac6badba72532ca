// merge: combine the explore results of shard databases into one. Blocks are a union (a block
// already present is kept: the runs are deterministic, so both copies hold the same counts),
// signatures keep the message of their first run, and per signature the smaller reproducer wins
// and its trace is copied over. Merging a database twice, or in another order, gives the same
// results. Every input is checked before anything is written, and the whole merge is one
// transaction.
import type Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { shellQuote } from './sim-args.js';
import { closeWritable, openDb } from '../store/db.js';
import {
  blockTotals,
  campaignParams,
  copyTrace,
  ensureExploreTables,
  hasExploreTables,
  listBlocks,
  listBlockSigs,
  listCampaigns,
  listRepros,
  listSignatures,
  offerRepro,
  putBlock,
  putCampaign,
  putSignatures,
  signatureTotals,
} from '../store/explore.js';

export interface MergeReport {
  into: string;
  inputs: { db: string; campaigns: number; blocks: number; added: number; reproducers: number }[];
  campaigns: {
    campaign: string;
    blocks: number;
    seeds: number;
    passing: number;
    runs: number;
    failing: number;
    signatures: { sig: string; class: string; count: number; firstSeed: number; repro: { trace: number; events: number; seed: number; replay: string } | null }[];
  }[];
}

export function merge(inputs: string[], into: string): MergeReport {
  if (!inputs.length) throw new UsageError('merge needs at least one database to merge');
  const target = resolve(into);
  for (const i of inputs) if (resolve(i) === target) throw new UsageError(`${i} is the --into database itself`);
  const sources: { path: string; db: Database.Database }[] = [];
  try {
    for (const path of inputs) {
      const db = openDb(path);
      sources.push({ path, db });
      if (!hasExploreTables(db)) throw new InputError(`${path} holds no explore results (run dmareplay explore --db ${path} first)`);
    }
    const dst = openDb(into, { create: true });
    try {
      ensureExploreTables(dst);
      const report: MergeReport = { into, inputs: [], campaigns: [] };
      dst.transaction(() => {
        for (const { path, db } of sources) {
          const r = { db: path, campaigns: 0, blocks: 0, added: 0, reproducers: 0 };
          for (const campaign of listCampaigns(db)) {
            r.campaigns++;
            putCampaign(dst, campaign, campaignParams(db, campaign));
            putSignatures(dst, campaign, listSignatures(db, campaign));
            for (const b of listBlocks(db, campaign)) {
              r.blocks++;
              if (putBlock(dst, campaign, b, listBlockSigs(db, campaign, b.lo), [])) r.added++;
            }
            for (const rp of listRepros(db, campaign)) {
              const { trace, ...row } = rp;
              if (offerRepro(dst, campaign, row, () => copyTrace(db, dst, trace))) r.reproducers++;
            }
          }
          report.inputs.push(r);
        }
      })();
      for (const campaign of listCampaigns(dst)) {
        const t = blockTotals(dst, campaign);
        report.campaigns.push({
          campaign,
          ...t,
          signatures: signatureTotals(dst, campaign).map((s) => ({
            sig: s.sig,
            class: s.class,
            count: s.count,
            firstSeed: s.first_seed,
            repro: s.repro ? { trace: s.repro.trace, events: s.repro.events, seed: s.repro.seed, replay: `npx dmareplay replay ${s.repro.trace} --db ${shellQuote(into)}` } : null,
          })),
        });
      }
      return report;
    } finally {
      closeWritable(dst);
    }
  } finally {
    for (const s of sources) s.db.close();
  }
}
