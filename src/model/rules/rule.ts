// What an event kind does to the world, declared once per kind. The table (rules/index.ts) is typed
// over every kind in src/events/schema.ts, so a kind without a rule does not compile. Each rule sits
// with the model part whose state it changes and names the kernel or QEMU function it models.
import type { EventOf, Kind } from '../../events/schema.js';
import type { World } from '../world.js';

export interface Rule<K extends Kind> {
  /** the kernel/QEMU code the event stands for */
  readonly models: string;
  /**
   * How the event changes the world (`owned`: the pages this working copy may write in place, see
   * memory.ts). Absent: the event only records an observation and changes nothing.
   */
  readonly evolve?: (w: World, ev: EventOf<K>, owned?: Set<Uint8Array>) => void;
  /** the event changes nothing when this field of it has this value (a device read) */
  readonly inertWhen?: { readonly field: string; readonly value: string };
}

export type Rules = { readonly [K in Kind]: Rule<K> };
export type RulesFor<K extends Kind> = { readonly [P in K]: Rule<P> };
