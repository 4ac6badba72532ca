// Every event kind's rule, in one table typed over the schema's kinds: a kind without a rule, or a
// rule for a kind that does not exist, does not compile. `mutate` (src/engine/apply.ts) is a lookup here.
import type { Kind } from '../../events/schema.js';
import { DMA_RULES } from './dma-api.js';
import { FAULT_RULES } from './faults.js';
import { IOTLB_RULES } from './device-iotlb.js';
import { PLATFORM_RULES } from './platform.js';
import { RING_RULES } from './ring.js';
import type { Rule, Rules } from './rule.js';
import { SWIOTLB_RULES } from './swiotlb.js';
import { IOMMU_RULES } from './viommu.js';
import { QUEUE_LIFE_RULES } from './queue-life.js';
import { VIRTIO_IOMMU_RULES } from './virtio-iommu.js';

export type { Rule, Rules } from './rule.js';

/** The groups, each beside the model part whose state it changes. */
export const RULE_GROUPS = { PLATFORM_RULES, RING_RULES, IOMMU_RULES, DMA_RULES, SWIOTLB_RULES, IOTLB_RULES, FAULT_RULES, QUEUE_LIFE_RULES, VIRTIO_IOMMU_RULES } as const;

export const RULES: Rules = { ...PLATFORM_RULES, ...RING_RULES, ...IOMMU_RULES, ...DMA_RULES, ...SWIOTLB_RULES, ...IOTLB_RULES, ...FAULT_RULES, ...QUEUE_LIFE_RULES, ...VIRTIO_IOMMU_RULES };

/** The kinds whose rule never changes the world (seek steps over them without decoding). */
export function inertKinds(): Kind[] {
  return (Object.keys(RULES) as Kind[]).filter((k) => !RULES[k].evolve);
}

export function ruleOf<K extends Kind>(kind: K): Rule<K> {
  return RULES[kind] as Rule<K>;
}
