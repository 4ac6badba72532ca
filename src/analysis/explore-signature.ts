// What makes two findings "the same bug" for explore: the class, the checker rule that fired (its
// message with the run's numbers and addresses taken out) and the shape of the causal chain (the
// kinds of the events that explain it, in order, repeats folded). Two seeds that hit the same race
// through the same steps get one signature whatever addresses and sizes they drew.
import { createHash } from 'node:crypto';
import type { EventOf } from '../events/schema.js';

export interface Signature {
  /** 12 hex digits of SHA-256 over class, rule and shape */
  id: string;
  cls: string;
  rule: string;
  shape: string;
}

/** The rule of a finding message: its template, with hex values, #seqs and decimal numbers replaced. */
export function ruleOf(message: string): string {
  return message
    .replace(/0x[0-9a-f]+/gi, '0x…')
    .replace(/#[0-9]+/g, '#…')
    .replace(/\b[0-9]+\b/g, 'N');
}

/** The chain's event kinds in order, consecutive repeats folded into one. */
export function shapeOf(chain: readonly number[], kindAt: (seq: number) => string | undefined): string {
  const kinds: string[] = [];
  for (const s of chain) {
    const k = kindAt(s) ?? '?';
    if (kinds[kinds.length - 1] !== k) kinds.push(k);
  }
  return kinds.join('>');
}

export function signatureOf(f: Pick<EventOf<'finding'>, 'cls' | 'message' | 'chain'>, kindAt: (seq: number) => string | undefined): Signature {
  const rule = ruleOf(f.message);
  const shape = shapeOf(f.chain, kindAt);
  const id = createHash('sha256').update(`${f.cls}\n${rule}\n${shape}`).digest('hex').slice(0, 12);
  return { id, cls: f.cls, rule, shape };
}
