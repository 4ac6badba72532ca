// Rules for the virtqueue life cycle (src/model/queue-life.ts): the base index, enable, reset.
import type { RulesFor } from './rule.js';
import { ruleVqBase, ruleVqEnable, ruleVqReset } from '../queue-life.js';

export const QUEUE_LIFE_RULES: RulesFor<'vq.base' | 'vq.enable' | 'vq.reset'> = {
  'vq.base': {
    models: 'VHOST_SET_VRING_BASE (vhost_vring_ioctl) + vhost_vq_init_access: last_avail_idx set, split last_used_idx read from used->idx',
    evolve: ruleVqBase,
  },
  'vq.enable': {
    models: 'queue_enable / VHOST_SET_VRING_ENABLE / VHOST_NET_SET_BACKEND: the device processes the queue only while enabled',
    evolve: ruleVqEnable,
  },
  'vq.reset': {
    models: 'VIRTIO_F_RING_RESET queue_reset (QEMU __virtio_queue_reset): indices and wrap counters back to their start, not enabled',
    evolve: ruleVqReset,
  },
};
