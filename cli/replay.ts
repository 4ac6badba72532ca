import type { Command } from 'commander';
import { replayTrace } from '../src/app/replay.js';
import { EXIT } from '../src/errors.js';
import { streamFindings } from '../src/app/findings.js';
import { progressBar } from './progress.js';
import { mapped, streamed } from './output.js';

const SHOWN = 5;
import { type CommonOpts, bold, dbPath, green, out, printJson, red, toJson, withCommon, yellow } from './common.js';

export function replayCommand(program: Command): void {
  withCommon(program.command('replay <trace>'))
    .description('re-execute a trace from its seed and verify every event (exit 3 at the first mismatch)')
    .action((id: string, o: CommonOpts) => {
      const bar = progressBar(o, 'replay');
      let r;
      try {
        // the findings are counted, and listed only as far as they are printed: with --json they are
        // streamed from the store into the document (a trace can hold hundreds of thousands)
        r = replayTrace(dbPath(o), id, (d, t) => bar.update(d, t), { findings: o.json ? 0 : SHOWN });
      } finally {
        bar.stop();
      }
      if (o.json) {
        const findings = r.mode === 're-execute' ? streamed(mapped(streamFindings(dbPath(o), id), (f) => ({ class: f.class, seq: f.seq, message: f.message }))) : r.findings;
        printJson({ ...r, findings });
      } else {
        if (r.incomplete) out(yellow(`trace ${r.trace} is incomplete: the recording stopped after ${r.recorded} events; verifying that prefix`));
        if (r.ok) {
          out(
            `${green('ok')}: ${r.mode === 'fold' ? 'folded' : 're-executed and verified'} ${r.events} events` +
              (r.mode === 're-execute' && r.checkpoints ? ` and ${r.checkpoints} checkpoint state hashes` : ''),
          );
          for (const f of r.findings.slice(0, SHOWN)) out(`${red(f.class)} at #${f.seq}: ${f.message}`);
          if (r.findingCount > SHOWN) out(`… ${r.findingCount - SHOWN} more findings (dmareplay log ${r.trace} --kind finding)`);
        } else {
          out(`${red('MISMATCH')} at event ${r.mismatch!.seq}: ${r.mismatch!.reason}`);
          out(`${bold('recorded:')} ${toJson(r.mismatch!.expected).replace(/\s+/g, ' ')}`);
          out(`${bold('replayed:')} ${toJson(r.mismatch!.actual).replace(/\s+/g, ' ')}`);
        }
      }
      if (!r.ok) process.exitCode = EXIT.mismatch;
    });
}
