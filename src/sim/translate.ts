// How the device turns a dma address into memory: through the vhost memory table on the direct
// path (desc.addr is a GPA), through the device IOTLB in IOTLB mode (desc.addr is an IOVA). One
// request may resolve to several pieces, like translate_desc's iovecs.
import { translate } from '../model/device-iotlb.js';
import { gpaToHva, hvaToGpa } from '../model/memtable.js';
import type { World } from '../model/world.js';

export interface Piece {
  dma: bigint;
  len: number;
  gpa: bigint;
  hva: bigint;
  /** seq of the UPDATE whose entry resolved it; 0 on the direct path */
  entry: number;
}

export type Resolution = { ok: true; pieces: Piece[] } | { ok: false; err: 'EAGAIN' | 'EPERM' | 'EFAULT'; addr: bigint };

export function resolve(w: World, addr: bigint, len: number, access: 'RO' | 'WO'): Resolution {
  const pieces: Piece[] = [];
  let done = 0;
  while (done < len || (len === 0 && pieces.length === 0)) {
    const a = addr + BigInt(done);
    if (w.path === 'direct') {
      const h = gpaToHva(w.memTable, a);
      if (!h) return { ok: false, err: 'EFAULT', addr: a };
      const n = h.left < BigInt(len - done) ? Number(h.left) : len - done;
      pieces.push({ dma: a, len: n, gpa: a, hva: h.hva, entry: 0 });
      done += n;
    } else {
      const t = translate(w.iotlb, a, len - done, access);
      if (!t.ok) return { ok: false, err: t.err, addr: t.addr };
      const gpa = hvaToGpa(w.memTable, t.hva);
      if (gpa === null) return { ok: false, err: 'EFAULT', addr: a };
      pieces.push({ dma: a, len: t.len, gpa, hva: t.hva, entry: t.entry.seq });
      done += t.len;
    }
    if (len === 0) break;
  }
  return { ok: true, pieces };
}
