import type { Command } from 'commander';
import { minimizeTrace, perturbTrace, whyBytes } from '../src/app/analyze.js';
import { formatEvent } from '../src/events/format.js';
import { UsageError } from '../src/errors.js';
import { DEFAULT_POINTS } from '../src/app/analyze.js';
import { progressBar } from './progress.js';
import { type CommonOpts, bold, dbPath, dim, green, out, parseAddr, parseCount, printJson, red, withCommon } from './common.js';

export function perturbCommand(program: Command): void {
  withCommon(program.command('perturb <trace>'))
    .description('re-run a failing trace from points along it with the schedule perturbed: when did the failure become inevitable?')
    .option('--variants <n>', 'perturbed schedules per point', '8')
    .option('--every <n>', 'a point every N events', '16')
    .option('--points <n>', 'examine the last N points before the failure (from the stored checkpoint before them)', String(DEFAULT_POINTS))
    .action((id: string, o: CommonOpts & { variants: string; every: string; points: string }) => {
      const bar = progressBar(o, 'perturb', 'runs');
      let r;
      try {
        r = perturbTrace(dbPath(o), id, {
          variants: parseCount('--variants', o.variants, 1, 1000),
          every: parseCount('--every', o.every, 1),
          points: parseCount('--points', o.points, 1),
          progress: (d, t) => bar.update(d, t),
        });
      } finally {
        bar.stop();
      }
      if (o.json) return printJson({ ...r, window: r.window.map((e) => ({ seq: e.seq, kind: e.kind, text: formatEvent(e) })), owed: r.owed.map((e) => ({ seq: e.seq, text: formatEvent(e) })) });
      out(`${bold(r.signature)} (the failure at guest operation ${r.atOps}), ${r.points[0]?.variants ?? 0} perturbed schedules per point:`);
      for (const p of r.points) out(`  #${String(p.seq).padEnd(7)} ${'█'.repeat(Math.round(p.fraction * 20)).padEnd(20, '·')} ${p.failing}/${p.variants}`);
      if (r.lastAvoidableAt === null && r.examinedFrom > 0) out(`inevitable at every point examined, from #${r.inevitableAt} (the last ${r.points.length} before the failure; --points looks further back)`);
      else if (r.lastAvoidableAt === null) out(`inevitable from the start: the configuration (a fault, a variant) decides it before #${r.inevitableAt}`);
      else out(`${red('inevitable from #' + r.inevitableAt)}; still avoidable at #${r.lastAvoidableAt}. The window of the race:`);
      for (const e of r.window.slice(0, 40)) out(`  ${formatEvent(e)}`);
      if (r.windowEvents > 40) out(dim(`  … ${r.windowEvents - 40} more`));
      if (r.owed.length) out(bold('invalidations owed to the device IOTLB across the window (late):'));
      if (r.owedCount > r.owed.length) out(dim(`  … ${r.owedCount - r.owed.length} earlier ones`));
      for (const e of r.owed) out(`  ${formatEvent(e)}`);
    });
}

export function minimizeCommand(program: Command): void {
  withCommon(program.command('minimize <trace>'))
    .description('shrink a failing trace (ddmin over guest intents and faults) keeping its failure; stores and exports the result')
    .option('--out <file>', 'where to write the minimal trace as JSONL (default minimized-<trace>.jsonl)')
    .action((id: string, o: CommonOpts & { out?: string }) => {
      const bar = progressBar(o, 'minimize', 'test runs');
      let r;
      try {
        r = minimizeTrace(dbPath(o), id, o.out, (n, intents) => bar.update(n, 0, `(failing with ${intents} intents)`));
      } finally {
        bar.stop();
      }
      if (o.json) return printJson(r);
      out(`${bold(r.signature)}: ${r.before.events} events, ${r.before.intents} intents, ${r.before.faults} faults → ${green(`${r.after.events} events, ${r.after.intents} intents, ${r.after.faults} faults`)} (${r.tests} tests)`);
      out(`stored as trace ${r.minimized}; written to ${r.file}`);
    });
}

export function whyCommand(program: Command): void {
  withCommon(program.command('why <trace>'))
    .description('which event last wrote each byte at a GPA, and through which translation')
    .requiredOption('--at <seq>', 'as of this event')
    .requiredOption('--gpa <addr>', 'guest physical address')
    .option('--len <n>', 'bytes', '16')
    .action((id: string, o: CommonOpts & { at: string; gpa: string; len: string }) => {
      const at = parseCount('--at', o.at, 0)!;
      const gpa = parseAddr('--gpa', o.gpa);
      if (gpa === undefined) throw new UsageError('--gpa is required');
      const r = whyBytes(dbPath(o), id, at, gpa, parseCount('--len', o.len, 1, 65536)!);
      if (o.json) return printJson({ ...r, runs: r.runs.map((x) => ({ ...x, writer: x.writer && { seq: x.writer.seq, kind: x.writer.kind, actor: x.writer.actor }, translation: x.translation && { ...x.translation, entryEvent: x.translation.entryEvent?.seq ?? null }, finding: x.finding && { seq: x.finding.seq, class: x.finding.cls, message: x.finding.message } })) });
      for (const x of r.runs) {
        out(`${bold(`[0x${x.gpa.toString(16)}, +${x.to - x.from})`)} ${x.writer ? formatEvent(x.writer) : dim('never written')}`);
        if (x.translation) out(`    translated ${x.translation.via} dma 0x${x.translation.dma.toString(16)}${x.translation.entryEvent ? ` through ${formatEvent(x.translation.entryEvent)}` : ''}`);
        if (x.finding) out(`    ${red(x.finding.cls)}: ${x.finding.message}`);
      }
    });
}
