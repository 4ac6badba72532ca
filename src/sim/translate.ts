// How a device turns a dma address into memory, by what it does with desc.addr:
// - gpa: vhost's memory table (no IOMMU in the path: desc.addr is a GPA);
// - iova through kernel vhost: the device IOTLB (a hole is a MISS, a permission mismatch EPERM);
// - iova in QEMU itself: the vIOMMU's page tables directly (address_space_rw through the IOMMU MR);
// - shadow: a vfio device's host IOMMU, programmed from MAP/UNMAP notifications.
// One request may resolve to several pieces, like translate_desc's iovecs.
import { translate } from '../model/device-iotlb.js';
import { gpaToHva, hvaToGpa } from '../model/memtable.js';
import { PAGE_MASK } from '../model/memory.js';
import { PERM_BITS } from '../model/types.js';
import { iommuTranslate } from '../model/viommu.js';
import type { DeviceState, World } from '../model/world.js';
import type { VIA } from '../events/schema.js';

export interface Piece {
  dma: bigint;
  len: number;
  gpa: bigint;
  hva: bigint;
  via: (typeof VIA)[number];
  /** seq of the UPDATE (or IOMMU map / shadow MAP) whose translation resolved it; 0 on the GPA path */
  entry: number;
}

export type Resolution = { ok: true; pieces: Piece[] } | { ok: false; err: 'EAGAIN' | 'EPERM' | 'EFAULT' | 'FAULT'; addr: bigint };

export function resolve(w: World, d: DeviceState, addr: bigint, len: number, access: 'RO' | 'WO'): Resolution {
  const pieces: Piece[] = [];
  if (len === 0) return { ok: true, pieces }; // translate_desc: nothing to translate, no iovec
  let done = 0;
  do {
    const a = addr + BigInt(done);
    const want = len - done;
    let piece: Piece;
    if (d.translate === 'gpa') {
      const h = gpaToHva(w.memTable, a);
      if (!h) return { ok: false, err: 'EFAULT', addr: a };
      piece = { dma: a, len: h.left < BigInt(want) ? Number(h.left) : want, gpa: a, hva: h.hva, via: 'gpa', entry: 0 };
    } else if (d.translate === 'iova' && d.backend.startsWith('vhost')) {
      const t = translate(d.iotlb, a, want, access);
      if (!t.ok) return { ok: false, err: t.err, addr: t.addr };
      const gpa = hvaToGpa(w.memTable, t.hva);
      if (gpa === null) return { ok: false, err: 'EFAULT', addr: a };
      piece = { dma: a, len: t.len, gpa, hva: t.hva, via: 'iotlb', entry: t.entry.seq };
    } else {
      const t =
        d.translate === 'shadow'
          ? (() => {
              const s = d.shadow.get(a >> 12n);
              return s ? { gpa: s.gpa | (a & PAGE_MASK), perm: 'RW' as const, seq: s.seq } : null;
            })()
          : iommuTranslate(d.iommu, a);
      if (!t || !(PERM_BITS[t.perm] & PERM_BITS[access])) return { ok: false, err: 'FAULT', addr: a };
      const h = gpaToHva(w.memTable, t.gpa);
      if (!h) return { ok: false, err: 'EFAULT', addr: a };
      const inPage = 4096 - Number(a & PAGE_MASK);
      piece = { dma: a, len: Math.min(inPage, want), gpa: t.gpa, hva: h.hva, via: d.translate === 'shadow' ? 'shadow' : 'iommu', entry: t.seq };
    }
    pieces.push(piece);
    done += piece.len;
  } while (done < len);
  return { ok: true, pieces };
}
