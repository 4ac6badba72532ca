import type { NewEvent } from '../events/schema.js';

/** A finding event: class, message, the address it is about, and its causal chain in the order things happened. */
export function finding(cause: number, cls: string, message: string, chain: number[], iova = 0n, gpa = 0n): NewEvent {
  return { kind: 'finding', actor: 'check', cause, cls, message, iova, gpa, chain: [...new Set(chain.filter((s) => s > 0))].sort((a, b) => a - b) };
}

export const hex = (v: bigint) => '0x' + v.toString(16);

/** The common "nothing found" result of the validators on the hot path: shared, frozen (callers only read it). */
export const NONE: NewEvent[] = Object.freeze([]) as unknown as NewEvent[];
