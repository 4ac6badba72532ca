// Rules for virtio-iommu requests (src/model/virtio-iommu.ts): a request changes the world only when
// its status is S_OK.
import type { RulesFor } from './rule.js';
import { ruleViommuAttach, ruleViommuDetach, ruleViommuMap, ruleViommuUnmap } from '../virtio-iommu.js';

export const VIRTIO_IOMMU_RULES: RulesFor<'viommu.attach' | 'viommu.detach' | 'viommu.map' | 'viommu.unmap'> = {
  'viommu.attach': { models: 'hw/virtio/virtio-iommu.c virtio_iommu_attach', evolve: ruleViommuAttach },
  'viommu.detach': { models: 'hw/virtio/virtio-iommu.c virtio_iommu_detach', evolve: ruleViommuDetach },
  'viommu.map': { models: 'hw/virtio/virtio-iommu.c virtio_iommu_map', evolve: ruleViommuMap },
  'viommu.unmap': { models: 'hw/virtio/virtio-iommu.c virtio_iommu_unmap (+ virtio_iommu_notify_unmap → vhost_iommu_unmap_notify)', evolve: ruleViommuUnmap },
};
