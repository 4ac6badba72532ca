// The QEMU-log import row: a large log made by the generator in bench/, imported as a user does
// (`dmareplay import`), against reading the same file's lines (the baseline).
export interface ImportBench {
  linesPerSec: number;
  note: string;
}

export async function importLogBench(_dir: string, _lines: number): Promise<ImportBench | null> {
  return null;
}
