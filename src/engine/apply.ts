// Applying an event to the world: a lookup of the event kind's rule (src/model/rules, one per kind,
// each beside the model part whose state it changes). `mutate` changes a world it owns (a working
// copy: the pipeline's, a seek's); `apply` is the pure form: state in, new immutable state out,
// built with immer.
import { enableMapSet, freeze, produce } from 'immer';
import { type DmaEvent, KIND_NAMES } from '../events/schema.js';
import { RULES } from '../model/rules/index.js';
import type { World } from '../model/world.js';

export { ApplyError } from '../model/world.js';
export { pageSpan } from '../model/iova.js';

enableMapSet();

type Evolve = (w: World, ev: DmaEvent, owned?: Set<Uint8Array>) => void;

// by kind, in a Map: on the record path (every event) a Map lookup costs less than a keyed property
// load on the 45-kind table
const EVOLVE = new Map<string, Evolve | undefined>(KIND_NAMES.map((k) => [k, RULES[k].evolve as Evolve | undefined]));

export function mutate(w: World, ev: DmaEvent, owned?: Set<Uint8Array>): void {
  const evolve = EVOLVE.get(ev.kind);
  if (evolve) evolve(w, ev, owned);
}

/** Pure form: the world after `ev`, as a new immutable value sharing what did not change. */
export function apply(state: World, ev: DmaEvent): World {
  return produce(state, (d) => {
    mutate(d as World, ev);
  });
}

export function freezeWorld(w: World): World {
  return freeze(w, true);
}
