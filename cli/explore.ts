import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { type Campaign, DEFAULT_BLOCK, STRATEGIES, type Strategy, SWEEPABLE } from '../src/analysis/explore-plan.js';
import { actorCount, EXIT_NONDETERMINISM, explore, type ExploreReport, type Progress, shardOf } from '../src/app/explore.js';
import { UsageError } from '../src/errors.js';
import type { FaultKind } from '../src/sim/config.js';
import { pctBound, pctStepsFor } from '../src/sim/schedule.js';
import { bold, type CommonOpts, dbPath, dim, out, parseCount, printJson, red, withCommon, yellow } from './common.js';
import { progressBar, progressEnabled } from './progress.js';
import { addSimOptions, type SimOpts, simConfigOf } from './sim-options.js';

interface Opts extends CommonOpts, SimOpts {
  seeds?: string;
  time?: string;
  jobs?: string;
  shard?: string;
  strategy: string;
  sweep?: string;
  verifyEvery?: string;
  selftestNondeterminism?: boolean;
  block?: string;
  minimize?: boolean;
}

export const EXIT_INTERRUPTED = 130;

function parseSeeds(v: string | undefined, timed: boolean): { from: number; to: number } {
  if (v === undefined) return timed ? { from: 1, to: Number.MAX_SAFE_INTEGER } : { from: 1, to: 1000 };
  const m = /^([0-9]{1,15})\.\.([0-9]{0,15})$/.exec(v);
  if (!m) throw new UsageError(`--seeds must be A..B (or A.. with --time), got ${JSON.stringify(v)}`);
  const from = Number(m[1]);
  const to = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  if (m[2] === '' && !timed) throw new UsageError('--seeds A.. (no end) needs --time');
  if (to < from) throw new UsageError(`--seeds ${v}: the range is empty`);
  return { from, to };
}

/** 90, 90s, 10m, 2h → milliseconds */
export function parseDuration(v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(s|m|h)?$/.exec(v);
  if (!m || Number(m[1]) <= 0) throw new UsageError(`--time must be a duration like 90s, 10m or 2h, got ${JSON.stringify(v)}`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

const secs = (ms: number) => (ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`);

/** Progress: a bar on a terminal (cli/progress.ts), else one line a minute on stderr. */
function progressPrinter(o: { json?: boolean }): { update(p: Progress): void; end(): void } {
  const bar = progressBar(o, 'explore', 'seeds');
  const tty = progressEnabled(o);
  let last = Date.now();
  return {
    update(p) {
      const rate = p.seeds / Math.max(p.elapsedMs / 1000, 1e-3);
      const left = p.budgetMs !== null ? Math.max(0, p.budgetMs - p.elapsedMs) : p.seedsLeft !== null && rate > 0 ? (p.seedsLeft / rate) * 1000 : null;
      const what = `${rate.toFixed(0)} seeds/s, ${p.failing} failing runs, ${p.signatures} signatures${left !== null ? `, ETA ${secs(left)}` : ''}`;
      if (tty) return bar.update(p.seeds, p.seedsLeft !== null ? p.seeds + p.seedsLeft : 0, `(${what})`);
      if (Date.now() - last < 60_000) return;
      last = Date.now();
      process.stderr.write(`explore: ${p.seeds} seeds, ${what}\n`);
    },
    end: () => bar.stop(),
  };
}

export function exploreCommand(program: Command): void {
  const cmd = addSimOptions(withCommon(program.command('explore')))
    .description('search seeds, schedules and faults for DMA races; store each failing run minimized, grouped by signature')
    .option('--seeds <A..B>', 'the seeds to run (default 1..1000; with --time, 1.. until the time is up)')
    .option('--time <duration>', 'time budget: 90s, 10m, 2h (no new block starts after it)')
    .option('--jobs <n>', 'worker threads (default: the cores)')
    .option('--shard <i/n>', 'run shard i of n (0-based) of the seed space; default from JOB_COMPLETION_INDEX/JOB_COMPLETIONS or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT')
    .option('--strategy <s>', `schedule: ${STRATEGIES.join(' | ')} (swarm also switches faults, variants and knobs per seed)`, 'random')
    .option('--sweep <fault>', `run every injection point of a fault per seed (fail_nth): ${SWEEPABLE.join(', ')}`)
    .option('--verify-every <k>', 'determinism self-check: re-run every seed divisible by k on another worker and compare trace hashes (0: off)', '0')
    .option('--selftest-nondeterminism', 'check the self-check itself: the --verify-every re-runs use another seed, so explore must stop with exit 5')
    .option('--block <n>', `seeds per block (the unit of work, storage and minimization; part of the campaign)`, String(DEFAULT_BLOCK))
    .option('--no-minimize', 'store reproducers as they ran, without minimizing them')
    .action(async (o: Opts) => {
      if (cmd.getOptionValueSource('seed') === 'cli') throw new UsageError('explore takes --seeds A..B, not --seed');
      const strategy = o.strategy as Strategy;
      if (!(STRATEGIES as readonly string[]).includes(strategy)) throw new UsageError(`unknown strategy ${JSON.stringify(o.strategy)} (known: ${STRATEGIES.join(', ')})`);
      if ((o.pctDepth !== undefined || o.pctSteps !== undefined) && strategy !== 'pct') throw new UsageError('--pct-depth and --pct-steps need --strategy pct');
      const { config } = simConfigOf({ ...o, seed: '0', pctDepth: undefined, pctSteps: undefined });
      if (o.sweep !== undefined && !(SWEEPABLE as readonly string[]).includes(o.sweep))
        throw new UsageError(`--sweep: ${JSON.stringify(o.sweep)} has no injection points to walk (sweepable: ${SWEEPABLE.join(', ')})`);
      const budgetMs = o.time !== undefined ? parseDuration(o.time) : undefined;
      const { from, to } = parseSeeds(o.seeds, budgetMs !== undefined);
      const jobs = parseCount('--jobs', o.jobs, 1, 256) ?? availableParallelism();
      const campaign: Campaign = { base: config, strategy, block: parseCount('--block', o.block, 1, 1_000_000)! };
      if (strategy === 'pct') campaign.pct = { depth: parseCount('--pct-depth', o.pctDepth, 1, 16) ?? 3, steps: parseCount('--pct-steps', o.pctSteps, 1, 1e9) ?? pctStepsFor(config.ops) };
      if (o.sweep) campaign.sweep = o.sweep as FaultKind;
      const shard = shardOf(o.shard, process.env);
      const verifyEvery = parseCount('--verify-every', o.verifyEvery, 0)!;
      const db = dbPath(o);

      if (campaign.pct && !o.json) {
        const { depth, steps } = campaign.pct;
        const n = actorCount(config);
        out(dim(`PCT: n = ${n} actors, k = ${steps} steps, depth d = ${depth}: a bug of depth ≤ ${depth} is hit with probability ≥ 1/(n·k^(d-1)) = ${pctBound(n, steps, depth).toExponential(2)} per run`));
      }
      const stop = { requested: false };
      const onSignal = () => {
        if (stop.requested) process.exit(EXIT_INTERRUPTED); // a second Ctrl-C: now
        stop.requested = true;
        process.stderr.write('\nexplore: stopping after the running blocks (Ctrl-C again to quit now)\n');
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const progress = progressPrinter(o);
      let report: ExploreReport;
      try {
        report = await explore({ db, campaign, from, to, shard, jobs, verifyEvery, selftest: o.selftestNondeterminism === true, minimize: o.minimize !== false, budgetMs, stop, onProgress: (p) => progress.update(p) });
      } finally {
        progress.end();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      if (o.json) printJson(report);
      else printReport(report);
      if (report.mismatch) {
        const m = report.mismatch;
        process.stderr.write(
          red(`dmareplay: NONDETERMINISM: seed ${m.seed}${m.point ? ` point ${m.point}` : ''} gave trace hash ${m.hash} on one worker and ${m.rerunHash} on another; first differing event #${m.seq}:\n`) +
            `  first run: ${JSON.stringify(m.recorded, (_k, x) => (typeof x === 'bigint' ? '0x' + x.toString(16) : x))}\n` +
            `  re-run:    ${JSON.stringify(m.rerun, (_k, x) => (typeof x === 'bigint' ? '0x' + x.toString(16) : x))}\n`,
        );
        process.exitCode = EXIT_NONDETERMINISM;
      } else if (report.stopped === 'interrupted') process.exitCode = EXIT_INTERRUPTED;
    });
}

function printReport(r: ExploreReport): void {
  const rate = r.run.seeds / Math.max(r.elapsedMs / 1000, 1e-3);
  out(
    `${bold('campaign ' + r.campaign)} (${r.strategy}${r.sweep ? `, sweep ${r.sweep}` : ''}), shard ${r.shard.index}/${r.shard.count}: ` +
      `this run ${r.run.seeds} seeds (${r.run.runs} runs, ${r.run.failing} failing) in ${secs(r.elapsedMs)}, ${rate.toFixed(0)} seeds/s on ${r.jobs} worker${r.jobs > 1 ? 's' : ''}` +
      (r.run.skipped ? `, ${r.run.skipped} blocks already stored` : '') +
      (r.run.verified ? `, ${r.run.verified} re-runs verified` : '') +
      (r.stopped === 'interrupted' ? yellow(' — interrupted') : r.stopped === 'time' ? ' — time budget used' : ''),
  );
  out(`stored for this campaign: ${r.total.seeds} seeds (${r.total.passing} passing), ${r.total.runs} runs (${r.total.failing} failing)`);
  if (r.pct) out(`PCT: n = ${r.pct.actors} actors, k = ${r.pct.steps} steps, d = ${r.pct.depth}: each depth-${r.pct.depth} bug is hit with probability ≥ ${r.pct.bound.toExponential(2)} per run`);
  if (!r.signatures.length) return out('no findings');
  out('');
  out(bold(['signature   ', 'class'.padEnd(24), 'count'.padStart(7), 'first seed'.padStart(11), '  smallest trace'].join(' ')));
  for (const s of r.signatures) {
    const first = s.firstPoint ? `${s.firstSeed}/${s.firstPoint}` : String(s.firstSeed);
    const repro = s.repro ? `#${s.repro.trace} (${s.repro.events} events, seed ${s.repro.seed}${s.repro.point ? ` point ${s.repro.point}` : ''})` : '-';
    out([s.sig, s.class.padEnd(24), String(s.count).padStart(7), first.padStart(11), ' ', repro].join(' '));
    out(dim(`    rule:   ${s.rule}`));
    out(dim(`    chain:  ${s.shape}`));
    if (s.repro) {
      out(`    replay: ${s.repro.replay}`);
      out(`    record: ${s.repro.record}`);
    }
  }
}
