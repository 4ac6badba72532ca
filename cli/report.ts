import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { buildReport } from '../src/app/report.js';
import { reportHtml } from '../src/app/report-html.js';
import { InputError } from '../src/errors.js';
import { type CommonOpts, dbPath, out, parseCount, printJson, withCommon } from './common.js';

export function reportCommand(program: Command): void {
  withCommon(program.command('report <trace>'))
    .description('write one self-contained HTML page (no network): the findings, each causal chain on the actors\' lanes, the state at --at, and the commands that reproduce it')
    .option('--at <seq>', 'show the IOMMU map, device IOTLB and rings after this event (default: the first finding)')
    .option('-o, --out <file>', 'the HTML file to write', 'race.html')
    .action((id: string, o: CommonOpts & { at?: string; out: string }) => {
      const data = buildReport(dbPath(o), id, { at: parseCount('--at', o.at, 0), dbArg: o.db, out: o.out });
      try {
        writeFileSync(o.out, reportHtml(data));
      } catch (e) {
        throw new InputError(`cannot write ${o.out}: ${(e as Error).message}`);
      }
      if (o.json) return printJson({ file: o.out, trace: data.trace.id, at: data.at, findings: data.findings.length + data.more });
      out(`wrote ${o.out}: trace ${data.trace.id}, ${data.findings.length + data.more} finding(s), state after #${data.at}`);
    });
}
