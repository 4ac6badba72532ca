import type { Command } from 'commander';
import { capture } from '../src/app/capture.js';
import { type CommonOpts, bold, dbPath, dim, out, printJson, red, withCommon, yellow } from './common.js';
import { printFinding } from './findings.js';

interface Opts extends CommonOpts {
  dir?: string;
  guest?: string;
  name?: string;
}

export function captureCommand(program: Command): void {
  withCommon(program.command('capture <qemu...>'))
    .usage('[options] -- qemu-system-x86_64 [QEMU options]')
    .description(
      "run your own QEMU command line with the trace options added (-trace vtd_*/amdvi_*/virtio_*/virtqueue_*/vhost_*/pci_cfg_write, -D, -msg timestamp=on), then import the host log and the guest's ftrace (a -serial file: that holds it) as one trace",
    )
    .option('--dir <dir>', 'where the host log goes (default: a new temporary directory)')
    .option('--guest <file>', "the guest's ftrace file, if the run writes it somewhere other than a -serial file:")
    .option('--name <name>', 'a name for the trace')
    .action(async (command: string[], o: Opts) => {
      const r = await capture({
        db: dbPath(o),
        command,
        dir: o.dir,
        guest: o.guest,
        name: o.name,
        started: o.json ? undefined : (argv) => process.stderr.write(dim(`running: ${argv.join(' ')}\n`)),
      });
      if (o.json) return printJson(r);
      const i = r.import;
      out(`QEMU ${r.qemuSignal ? `ended by ${r.qemuSignal}` : `exited with status ${r.qemuExit}`}; host log ${r.hostLog}${r.guestLog ? `, guest log ${r.guestLog}` : ''}`);
      if (!r.guestLog) out(yellow('  no guest ftrace found in the -serial files: host side only (README "Capture a trace of your own system")'));
      out(`${bold('trace ' + i.trace)} (${i.name}): ${i.events} events from ${i.format}${i.malformed ? `, ${i.malformed} malformed lines skipped` : ''}`);
      if (i.mode) out(`  DMA mode: ${i.mode.path} — ${i.mode.why}`);
      for (const n of i.notes) out(yellow(`  note: ${n}`));
      if (!i.findingCount) out('no findings');
      for (const f of i.findings.slice(0, 10)) printFinding(f, red);
      if (i.findingCount > 10) out(`… ${i.findingCount - 10} more (dmareplay log ${i.trace} --kind finding)`);
    });
}
