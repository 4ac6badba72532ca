// The model validates what the trace says vhost's device IOTLB did. A simulated trace computes these
// results from the model, so they always agree; an imported or hand-written trace only records them,
// and a result the kernel would not have produced is a finding that names the rule, the expected and
// the recorded value, and the events behind the model's answer.
// - iotlb-entry-gone: a device access (via the IOTLB or the vq meta cache) resolved through an entry
//   that an INVALIDATE deleted (vhost_iotlb_del_range) or that was evicted (vhost_iotlb_add_range_ctx
//   with VHOST_IOTLB_FLAG_RETIRE drops the oldest at max_iotlb_entries = 2048; the evict-iotlb fault):
//   translate_desc would have found a hole and sent a MISS (vhost_iotlb_miss);
// - iotlb-perm-mismatch: an access recorded as succeeding through an entry without the permission
//   (translate_desc: `!(map->perm & access)` → -EPERM, vq_err, no MISS);
// - iotlb-resolution-mismatch: another entry, HVA or GPA than the model's lookup
//   (vhost_iotlb_itree_first: the overlapping entry with the lowest start), or an entry the model
//   never saw filled;
// - iotlb-miss-covered: a MISS although an entry covers the address (translate_desc sends one only
//   for -EAGAIN: no overlapping entry starting at or below the address);
// - iotlb-result-mismatch: an UPDATE or INVALIDATE of size 0 whose recorded result differs from
//   vhost_chr_write_iter's size check (e2ae38cf3d91 rejected size 0, 95932ab2ea07 limited that to
//   UPDATE and INVALIDATE, ca50ec377c2e allowed INVALIDATE again; the variant `sizeZero` says which).
import type { EventOf, NewEvent } from '../events/schema.js';
import { lookup, lookupAt, retiredEntry, type IotlbEntry, type RetiredEntry } from '../model/device-iotlb.js';
import { hvaToGpa, type Region } from '../model/memtable.js';
import { toNum } from '../model/memory.js';
import { permBits } from '../model/types.js';
import type { DeviceState, World } from '../model/world.js';
import { finding, hex, NONE } from './finding.js';

/** Does the device's access go through vhost's device IOTLB (IOTLB mode, kernel vhost back-end)? */
export const isIotlbDevice = (d: DeviceState): boolean => d.translate === 'iova' && (d.backend === 'vhost' || d.backend.startsWith('vhost'));

/** A device whose accesses go through vhost's device IOTLB. */
function iotlbDevice(w: World, dev: number): DeviceState | null {
  const d = w.devices.get(dev);
  return d && isIotlbDevice(d) ? d : null;
}

const range = (e: { start: bigint; last: bigint }) => `[${hex(e.start)}, ${hex(e.last)}]`;

function goneBy(g: RetiredEntry): string {
  if (g.how === 'invalidate') return `deleted by INVALIDATE #${g.by}`;
  if (g.how === 'evict') return `evicted by UPDATE #${g.by} (the 2048-entry limit: VHOST_IOTLB_FLAG_RETIRE drops the oldest entry)`;
  return `evicted at #${g.by} (evict-iotlb fault)`;
}

/** Post-check of a dev.access: does the model's device IOTLB give what the trace recorded? */
export function validateIotlbAccess(w: World, ev: EventOf<'dev.access'>): NewEvent[] {
  if (ev.via !== 'iotlb' && ev.via !== 'meta') return NONE;
  const r = w.rings[ev.q];
  const d = r && iotlbDevice(w, r.dev);
  return d ? iotlbAccessChecks(w, d, ev) : NONE;
}

/** validateIotlbAccess of an access via 'iotlb' or 'meta', given its ring's device, which isIotlbDevice. */
export function iotlbAccessChecks(w: World, d: DeviceState, ev: EventOf<'dev.access'>, a = toNum(ev.dma), gpaN?: number): NewEvent[] {
  // the common case, on the hot path of every simulated device access: it agrees (no strings built)
  // (a: the dma as toNum gives it, from a caller that has converted it for its own checks; gpaN too)
  const e = lookupAt(d.iotlb, ev.dma, a);
  // (bigint + - and comparisons that do not escape compile to machine arithmetic; Number() and
  // shifts of a bigint allocate)
  if (e && e.seq === ev.entry && permBits(e.perm) & (ev.dir === 'write' ? 2 : 1)) {
    // below 2^53, in doubles (the entry's derived startNum, lastNum, uaddrNum are then exact, and so
    // are differences and sums that stay below 2^53): the room, and the HVA the entry gives for dma.
    // Agreement here is agreement in bigints; anything else is decided by the bigint path below.
    if (a < EXACT && e.lastNum < EXACT && e.lastNum - a + 1 >= ev.len) {
      const h = e.uaddrNum + (a - e.startNum);
      if (h < EXACT && toNum(ev.hva) === h && hvaGivesGpa(w.memTable, ev.hva, ev.gpa, h, gpaN)) return NONE;
    }
    // room left in the entry from dma on: e.last - dma + 1 (lookup found dma <= e.last), against
    // the length as a number: exact below 2^53, and a room of 2^53 or more holds any length. (A
    // bigint-to-double conversion, toNum, costs less than BigInt(len), which allocates in the runtime.)
    const room = e.last - ev.dma;
    if ((room >= EXACT_BIG || toNum(room) + 1 >= ev.len) && ev.hva === e.uaddr + (ev.dma - e.start) && hvaGivesGpa(w.memTable, ev.hva, ev.gpa)) return NONE;
  }
  return mismatch(w, d, ev, e);
}

/** 2^53: a bigint below it converts to a double exactly */
const EXACT_BIG = 1n << 53n;
const EXACT = 2 ** 53;

/**
 * hvaToGpa(regions, hva) is null or gpa: compared without building the GPA. In doubles when hva is
 * below 2^53: a region's hvaNum and sizeNum then compare as its hva and size do (±Infinity, for a
 * value outside [0, 2^53), orders as the value does), and gpaNum + off is exact while below 2^53.
 */
export function hvaGivesGpa(regions: readonly Region[], hva: bigint, gpa: bigint, h = toNum(hva), gpaN?: number): boolean {
  if (h < EXACT) {
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i]!;
      const rh = r.hvaNum;
      // a region built without its derived fields, or (never for a u64) a negative hva, whose offset
      // -Infinity does not give
      if (rh === undefined || rh === -Infinity) return hvaGivesGpaBig(regions, hva, gpa);
      if (h < rh) continue;
      const off = h - rh;
      if (off < r.sizeNum) {
        const g = r.gpaNum + off;
        return g < EXACT ? (gpaN ?? toNum(gpa)) === g : r.gpa + (hva - r.hva) === gpa;
      }
    }
    return true;
  }
  return hvaGivesGpaBig(regions, hva, gpa);
}

function hvaGivesGpaBig(regions: readonly Region[], hva: bigint, gpa: bigint): boolean {
  for (let i = 0; i < regions.length; i++) {
    const r = regions[i]!;
    if (hva < r.hva) continue;
    const off = hva - r.hva;
    if (off < r.size) return r.gpa + off === gpa;
  }
  return true;
}

function mismatch(w: World, d: DeviceState, ev: EventOf<'dev.access'>, e: IotlbEntry | null): NewEvent[] {
  const what = `device ${ev.dir === 'read' ? 'read' : 'wrote'} ${ev.len} B at IOVA ${hex(ev.dma)} through the device-IOTLB entry filled by UPDATE #${ev.entry}`;
  // what translate_desc would have done instead, and the event behind it
  const model = e ? `the device IOTLB resolves it through entry #${e.seq} ${range(e)} (vhost_iotlb_itree_first)` : `the device IOTLB holds no entry for it: translate_desc gets -EAGAIN and vhost sends a MISS (vhost_iotlb_miss)`;
  if (!e || e.seq !== ev.entry) {
    const g = retiredEntry(d.iotlb, ev.entry);
    if (g) return [finding(ev.seq, 'iotlb-entry-gone', `${what}, ${goneBy(g)} before this access; ${model}`, [ev.entry, g.by, e?.seq ?? 0, ev.seq], ev.dma, ev.gpa)];
    const known = d.iotlb.entries.find((x) => x.seq === ev.entry);
    const where = known ? ` ${range(known)}` : ', which is not in the device IOTLB (no UPDATE filled it, or it left more than 64 removals ago)';
    return [finding(ev.seq, 'iotlb-resolution-mismatch', `${what}${where}; ${model}`, [ev.entry, e?.seq ?? 0, ev.seq], ev.dma, ev.gpa)];
  }
  if (!(permBits(e.perm) & (ev.dir === 'write' ? 2 : 1)))
    return [
      finding(
        ev.seq,
        'iotlb-perm-mismatch',
        `${what} ${range(e)} with perm ${e.perm}, recorded as succeeding; translate_desc refuses a ${ev.dir} through it (-EPERM: vq_err "Translation failure -1 in descriptor", no MISS)`,
        [ev.entry, ev.seq],
        ev.dma,
        ev.gpa,
      ),
    ];
  if (ev.len > 0 && ev.dma + BigInt(ev.len) - 1n > e.last)
    return [finding(ev.seq, 'iotlb-resolution-mismatch', `${what} ${range(e)}, but the access runs past the entry's end: translate_desc splits it at ${hex(e.last + 1n)}`, [ev.entry, ev.seq], ev.dma, ev.gpa)];
  const hva = e.uaddr + (ev.dma - e.start);
  const gpa = hvaToGpa(w.memTable, hva);
  return [
    finding(
      ev.seq,
      'iotlb-resolution-mismatch',
      `${what} ${range(e)} → uaddr ${hex(e.uaddr)}: expected HVA ${hex(hva)}${gpa !== null ? ` (GPA ${hex(gpa)})` : ''}, recorded HVA ${hex(ev.hva)} (GPA ${hex(ev.gpa)})`,
      [ev.entry, ev.seq],
      ev.dma,
      ev.gpa,
    ),
  ];
}

/** Post-check of an iotlb.miss: translate_desc sends a MISS only when no entry covers the address. */
export function validateMiss(w: World, ev: EventOf<'iotlb.miss'>): NewEvent[] {
  const d = iotlbDevice(w, ev.dev);
  const e = d && lookup(d.iotlb, ev.iova);
  if (!e) return NONE;
  const ok = permBits(e.perm) & permBits(ev.perm);
  const expected = ok ? 'translate_desc resolves it (no MISS)' : `translate_desc fails with -EPERM (perm ${e.perm} lacks ${ev.perm}) and sends no MISS`;
  return [finding(ev.seq, 'iotlb-miss-covered', `MISS for IOVA ${hex(ev.iova)} (${ev.perm}, vq ${ev.q}) although entry #${e.seq} ${range(e)} → uaddr ${hex(e.uaddr)} with perm ${e.perm} covers it: ${expected}`, [e.seq, ev.seq], ev.iova)];
}

/** What vhost_chr_write_iter answers a size-0 message, by kernel version (null: not judged). */
function sizeZeroResult(w: World, kind: 'UPDATE' | 'INVALIDATE'): { result: string; why: string } {
  const rule = w.variants.sizeZero;
  if (rule === 'accept') return { result: 'ok', why: 'before e2ae38cf3d91 vhost accepted size-0 messages' };
  if (kind === 'INVALIDATE' && rule === 'reject-update') return { result: 'ok', why: 'since ca50ec377c2e vhost accepts a size-0 INVALIDATE (invalidate everything)' };
  return { result: 'EINVAL', why: `vhost_chr_write_iter rejects a size-0 ${kind} with -EINVAL (e2ae38cf3d91${kind === 'UPDATE' ? ', still so after ca50ec377c2e' : ''})` };
}

export function validateUpdate(w: World, ev: EventOf<'iotlb.update'>): NewEvent[] {
  if (ev.size !== 0n || !iotlbDevice(w, ev.dev)) return NONE;
  const want = sizeZeroResult(w, 'UPDATE');
  if (ev.result === want.result) return NONE;
  const effect = ev.result === 'ok' ? `: it became the entry [${hex(ev.iova)}, ${hex((ev.iova - 1n) & ((1n << 64n) - 1n))}]` : '';
  return [finding(ev.seq, 'iotlb-result-mismatch', `UPDATE of size 0 at IOVA ${hex(ev.iova)} recorded as ${ev.result}, expected ${want.result}: ${want.why}${effect}`, [ev.seq], ev.iova)];
}

export function validateInvalidate(w: World, ev: EventOf<'iotlb.invalidate'>): NewEvent[] {
  if (ev.size !== 0n || !iotlbDevice(w, ev.dev)) return NONE;
  const want = sizeZeroResult(w, 'INVALIDATE');
  if (ev.result === want.result) return NONE;
  return [finding(ev.seq, 'iotlb-result-mismatch', `INVALIDATE of size 0 at IOVA ${hex(ev.iova)} recorded as ${ev.result}, expected ${want.result}: ${want.why}`, [ev.cause, ev.seq], ev.iova)];
}
