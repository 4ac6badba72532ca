import { out } from './common.js';

export function printFinding(f: { class: string; seq: number; message: string; chain?: number[] }, paint: (s: string) => string): void {
  out(`${paint(f.class)} at #${f.seq}: ${f.message}`);
  if (f.chain?.length) out(`  causal chain: ${f.chain.map((s) => '#' + s).join(' → ')}`);
}
