// Checkers run after each event has been applied, on the world it produced, in record, replay and
// fold alike. Each returns findings as events; they are appended right after the event they judge.
import type { DmaEvent, NewEvent } from '../events/schema.js';
import type { World } from '../model/world.js';
import { checkDeviceAccess } from './coherence.js';

export const FINDING_CLASSES = ['stale-iotlb', 'use-after-unmap', 'vq-parked'] as const;

export function runCheckers(w: World, ev: DmaEvent): NewEvent | null {
  if (ev.kind === 'dev.access') return checkDeviceAccess(w, ev);
  return null;
}
