// The QEMU-log import row: a large log made by the generator in bench/import-log.ts (a captured
// vtd-cm run repeated, its clock moved on), imported as a user does (`dmareplay import`), against
// reading the same file's lines (the baseline, src/import/lines.ts, in this process).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { lineBatches } from '../src/import/lines.js';
import { writeImportLog } from './import-log.js';
import { fmtRate, log, perSec, rmDb, runCli, timedAsync } from './measure.js';

export interface ImportBench {
  linesPerSec: number;
  note: string;
}

export async function importLogBench(dir: string, lines: number): Promise<ImportBench | null> {
  const file = join(dir, 'qemu-import.log');
  const w = await writeImportLog(file, lines, 'vtd-cm');
  log(`QEMU log: ${w.lines} lines (vtd-cm × ${w.copies}), ${(w.bytes / 1e6).toFixed(0)} MB`);
  const [n, read] = await timedAsync(async () => {
    let n = 0;
    for await (const b of lineBatches(file)) n += b.length;
    return n;
  });
  if (n !== w.lines) throw new Error(`read ${n} lines of ${w.lines}`);
  const db = join(dir, 'qemu-import.db');
  const imp = await runCli(['import', file, '--db', db]);
  rmDb(db);
  rmSync(file, { force: true });
  if (imp.code !== 0) throw new Error(`import of the QEMU log exited ${imp.code}: ${imp.stderr}`);
  const wall = perSec(w.lines, imp.wallMs);
  return {
    linesPerSec: wall,
    note: `${fmtRate(perSec(w.lines, imp.cpuMs), 'lines/s')} CPU, ${imp.maxRssMb.toFixed(0)} MB; reading the lines ${fmtRate(perSec(w.lines, read.cpuMs), 'lines/s')} CPU (${(imp.cpuMs / read.cpuMs).toFixed(1)}x)`,
  };
}
