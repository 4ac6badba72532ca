// What the VMM (QEMU) keeps between messages: the MISS messages it has not read yet, the
// invalidations it owes vhost, UPDATEs it holds back. Shared by the IOMMU, device-IOTLB and fault rules.
import { removeAt } from '../list.js';
import type { DeviceState, World } from '../world.js';

/** vhost_net's chardev read in QEMU (vhost_backend_handle_iotlb_msg): the MISS message was consumed. */
export function markRead(w: World, missSeq: number): void {
  const at = w.vmm.toRead.indexOf(missSeq);
  if (at >= 0) removeAt(w.vmm.toRead, at);
}

/** free_iova: the IOVA range starting at `start` may be handed out again. */
export function removeIova(d: DeviceState, start: bigint): void {
  const at = d.iovas.findIndex((r) => r.start === start);
  if (at >= 0) removeAt(d.iovas, at);
}
