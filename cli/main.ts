// dmareplay command line. Each command lives in its own file and only parses, calls src/ and prints.
import { Command, CommanderError } from 'commander';
import { DmaReplayError, EXIT } from '../src/errors.js';
import { printable } from './common.js';
import { flushStdout, StdoutClosed } from './output.js';
import { minimizeCommand, perturbCommand, whyCommand } from './analyze.js';
import { bisectCommand } from './bisect.js';
import { captureCommand } from './capture.js';
import { catalogCommand } from './catalog.js';
import { demoCommand } from './demo.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { statsCommand } from './stats.js';
import { logCommand } from './log.js';
import { recordCommand } from './record.js';
import { replayCommand } from './replay.js';
import { runCommand } from './run.js';
import { stateCommand } from './state.js';
import { tracesCommand } from './traces.js';
import { exploreCommand } from './explore.js';
import { mergeCommand } from './merge.js';
import { sqlCommand } from './sql.js';
import { reportCommand } from './report.js';

const EXIT_HELP = `
Exit codes:
  0  success (findings are results, not failures)
  1  failure: unknown trace, not a dmareplay database, newer schema, corrupt trace, unwritable path
  2  usage: bad or missing arguments (e.g. --seed abc, negative numbers, --at past the end)
  3  replay mismatch: the re-executed run differs from the recording;
     bisect: the two traces do not carry the same guest intents (not comparable)
  4  bisect: a divergence was found (0: none)
  5  explore: nondeterminism (--verify-every: a re-run differs)
  130 explore: interrupted (finished blocks are saved)
  A reader that closes stdout early (dmareplay log 1 | head) ends the command quietly, exit 0.

Database: --db PATH, else $DMAREPLAY_DB, else ./dmareplay.db`;

const program = new Command('dmareplay')
  .description('deterministic record/replay of virtualized DMA: virtio rings, vIOMMU, vhost device IOTLB')
  .version('0.1.0')
  .addHelpText('after', EXIT_HELP)
  .showHelpAfterError(false)
  .exitOverride()
  .configureOutput({ outputError: () => {} });

for (const add of [demoCommand, recordCommand, replayCommand, logCommand, stateCommand, tracesCommand, catalogCommand, bisectCommand, perturbCommand, minimizeCommand, whyCommand, importCommand, exportCommand, statsCommand, exploreCommand, mergeCommand, sqlCommand, reportCommand, runCommand]) add(program);
captureCommand(program);
for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => {} }).addHelpText('after', EXIT_HELP);

// `dmareplay log 1 | head` closes the pipe early: that is not an error. Output goes through
// cli/output.ts, which sees the EPIPE at once and throws StdoutClosed: the command stops, quietly, exit 0.
process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? 0 : 1));
process.on('exit', () => {
  try {
    flushStdout(); // what a command printed before calling process.exit itself
  } catch {
    /* the reader has gone: nothing to say */
  }
});
if (process.argv.length <= 2) {
  program.outputHelp();
  process.exit(0);
}

const debug = process.argv.includes('--debug');
try {
  await program.parseAsync(process.argv);
  flushStdout();
} catch (e) {
  if (e instanceof StdoutClosed) process.exit(0);
  try {
    flushStdout(); // what the command printed before it failed comes before the error
  } catch {
    /* the reader has gone; the error still goes to stderr */
  }
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0);
    // commander puts its suggestion on a line of its own: keep it on the error's one line
    process.stderr.write(`dmareplay: ${printable(e.message.replace(/^error: /, '').replace(/\n\(Did you mean /, ' (did you mean '))}\n`);
    process.exit(EXIT.usage);
  }
  if (e instanceof DmaReplayError) {
    process.stderr.write(`dmareplay: ${printable(e.message)}\n`);
    if (debug) process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const err = e as Error;
  process.stderr.write(`dmareplay: internal error: ${printable(String(err?.message ?? e))}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug) process.stderr.write(`${err?.stack}\n`);
  process.exit(EXIT.failure);
}
