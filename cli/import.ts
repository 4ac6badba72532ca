import type { Command } from 'commander';
import { type ImportFormat, importTrace } from '../src/app/import.js';
import { type CommonOpts, bold, printable, dbPath, dim, out, parseCount, printJson, red, withCommon, yellow } from './common.js';
import { printFinding } from './findings.js';
import { progressBar } from './progress.js';

interface Opts extends CommonOpts {
  format: string;
  guest?: string;
  host?: string;
  strict?: boolean;
  name?: string;
  checkpointEvery?: string;
}

export function importCommand(program: Command): void {
  withCommon(program.command('import [file]'))
    .description('import a trace: a dmareplay JSONL export, a QEMU trace log, guest ftrace text, or a guest + host pair of one run')
    .option('--format <f>', 'format of FILE: auto | jsonl | qemu-log | ftrace', 'auto')
    .option('--guest <file>', 'guest ftrace text (iommu:*, swiotlb:*, dma:*, trace_marker) of the run')
    .option('--host <file>', 'QEMU log-backend trace of the same run (vtd_*, amdvi_*, virtio_*, pci_cfg_write)')
    .option('--strict', 'the first malformed line is an error (default: count them and go on)')
    .option('--name <name>', 'a name for the trace')
    .option('--checkpoint-every <n>', 'store a checkpoint every N events')
    .action(async (file: string | undefined, o: Opts) => {
      const bar = progressBar(o, 'import');
      const r = await importTrace({
        db: dbPath(o),
        file,
        format: o.format as ImportFormat,
        guest: o.guest,
        host: o.host,
        strict: !!o.strict,
        name: o.name,
        checkpointEvery: parseCount('--checkpoint-every', o.checkpointEvery, 1),
        progress: (msg) => bar.message(msg),
      }).finally(() => bar.stop());
      if (o.json) return printJson(r);
      out(`${bold('trace ' + r.trace)} (${r.name}): ${r.events} events from ${r.format}`);
      out(`  by kind: ${Object.entries(r.byKind).map(([k, n]) => `${k} ${n}`).join(', ')}`);
      if (r.unknown)
        out(
          `  kept as opaque (not modelled): ${r.unknown}${Object.keys(r.unknownByEvent).length ? ` — ${Object.entries(r.unknownByEvent).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ')}${Object.keys(r.unknownByEvent).length > 6 ? ', …' : ''}` : ''}`,
        );
      if (r.malformed) {
        out(yellow(`  ${r.malformed} malformed line${r.malformed === 1 ? '' : 's'} skipped (--strict makes that an error):`));
        for (const m of r.malformedLines.slice(0, 5)) out(`    ${printable(`${m.file}:${m.line}: ${m.reason}`)}`);
        if (r.malformed > 5) out(dim(`    … (--json lists the first ${r.malformedLines.length})`));
      }
      for (const t of r.truncated) out(yellow(`  truncated: ${t.file}: ${t.reason}; imported up to the break`));
      if (r.mode) out(`  DMA mode: ${r.mode.path} — ${r.mode.why}`);
      if (r.alignment) {
        const a = r.alignment;
        const some = (l: number[]) => l.slice(0, 20).join(' ') + (l.length > 20 ? ' …' : '');
        out(`  alignment: ${a.method === 'markers' ? `${a.boundaries.length} shared markers (${some(a.boundaries.map((b) => b.n))})` : 'no shared marker'}${a.guestOnly.length ? `; guest only: ${some(a.guestOnly)}` : ''}${a.hostOnly.length ? `; host only: ${some(a.hostOnly)}` : ''}`);
        for (const p of a.phases.slice(0, 40)) out(dim(`    phase ${String(p.phase).padStart(2)}${p.n !== null ? ` (marker ${p.n} ${p.name})` : ' (before the first marker)'}: ${p.guestEvents} guest, ${p.hostEvents} host events`));
        if (a.phases.length > 40) out(dim(`    … ${a.phases.length - 40} more phases (--json lists them all)`));
        out(dim(`  ${a.note}`));
      }
      const ord = r.alignment?.order;
      if (ord && ord.translations) out(`  order: ${ord.insideLiveMapping} of ${ord.translations} host translations (${((100 * ord.insideLiveMapping) / ord.translations).toFixed(1)}%) placed inside a live guest mapping; the causality repair acted ${ord.repaired} times`);
      for (const n of r.notes) out(yellow(`  note: ${n}`));
      if (!r.findingCount) out('no findings');
      for (const f of r.findings.slice(0, 10)) printFinding(f, red);
      if (r.findingCount > 10) out(`… ${r.findingCount - 10} more (dmareplay log ${r.trace} --kind finding)`);
    });
}
