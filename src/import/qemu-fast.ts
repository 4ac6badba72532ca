/**
 * Field scanners for the events a QEMU log is mostly made of (qemu-log.ts parses every line): the
 * same records as the regex builders there, without a regex, its match array and the substrings
 * parseInt/BigInt read. A scanner accepts only the plain shape QEMU prints (no trailing blanks, at
 * most 13 hex digits in a number field, at most 16 in a 64-bit one, a `%s` of printable ASCII);
 * anything else returns null and the regex builder decides. test/import/qemu-log-fast.test.ts holds
 * the two to the same results.
 */
import type { AmdviIotlbHit, AmdviTranslationResult, QemuBase, QemuTypedKind, QemuTypedRecord, VtdIotlbPageHit, VtdIotlbPageUpdate } from './qemu-log.js';

/** SLPTE address bits 12..51 (VT-d MGAW is at most 52 bits). */
export const VTD_SLPTE_ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** text[from, from + s.length) is s (a loop: startsWith with a position is much slower) */
export function sameChars(text: string, from: number, s: string): boolean {
  for (let j = 0; j < s.length; j++) if (text.charCodeAt(from + j) !== s.charCodeAt(j)) return false;
  return true;
}

/** the scanner's state: the position in the args, and the value of the last number scanned */
const sc = { at: 0, num: 0 };

/** `lit` at the scan position: step over it */
function lit(a: string, s: string): boolean {
  if (!sameChars(a, sc.at, s)) return false;
  sc.at += s.length;
  return true;
}

/** the value of hex digit `c`, or -1 */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** 1–13 hex digits (exact in a double) into `sc.num` */
function hex(a: string): boolean {
  const from = sc.at;
  let v = 0;
  for (let d = hexDigit(a.charCodeAt(sc.at)); d >= 0; d = hexDigit(a.charCodeAt(++sc.at))) v = v * 16 + d;
  sc.num = v;
  return sc.at > from && sc.at - from <= 13;
}

/** 1–16 hex digits as a bigint (exact), or null */
function hex64(a: string): bigint | null {
  const from = sc.at;
  if (!hex(a)) {
    const n = sc.at - from;
    return n > 13 && n <= 16 ? BigInt('0x' + a.slice(from, sc.at)) : null;
  }
  return BigInt(sc.num);
}

/** 1–15 decimal digits into `sc.num` */
function dec(a: string): boolean {
  const from = sc.at;
  let v = 0;
  for (let c = a.charCodeAt(sc.at); c >= 48 && c <= 57; c = a.charCodeAt(++sc.at)) v = v * 10 + (c - 48);
  sc.num = v;
  return sc.at > from && sc.at - from <= 15;
}

/** `%02x:%02x.%x` (bus, device, function), into the three numbers of `bdf` */
const bdf = [0, 0, 0];
function scanBdf(a: string): boolean {
  if (!hex(a) || a.charCodeAt(sc.at) !== 58) return false;
  bdf[0] = sc.num;
  sc.at++;
  if (!hex(a) || a.charCodeAt(sc.at) !== 46) return false;
  bdf[1] = sc.num;
  sc.at++;
  if (!hex(a)) return false;
  bdf[2] = sc.num;
  return true;
}

export type FastBuilder = (a: string, h: QemuBase) => QemuTypedRecord | null;

export const FAST: { readonly [K in QemuTypedKind]?: FastBuilder } = {
  // 'dev %02x:%02x.%02x iova 0x%x -> gpa 0x%x mask 0x%x'
  vtd_dmar_translate: (a, h) => {
    sc.at = 0;
    if (!lit(a, 'dev ') || !scanBdf(a) || !lit(a, ' iova 0x')) return null;
    const iova = hex64(a);
    if (iova === null || !lit(a, ' -> gpa 0x')) return null;
    const gpa = hex64(a);
    if (gpa === null || !lit(a, ' mask 0x')) return null;
    const mask = hex64(a);
    if (mask === null || sc.at !== a.length) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_dmar_translate', event: 'vtd_dmar_translate',
      bus: bdf[0]!, dev: bdf[1]!, fn: bdf[2]!, iova, gpa, mask,
    };
  },
  // 'IOTLB page hit|update sid 0x%x iova 0x%x slpte 0x%x domain 0x%x'
  vtd_iotlb_page_hit: (a, h) => pageLookup(a, h, 'IOTLB page hit sid 0x', 'vtd_iotlb_page_hit'),
  vtd_iotlb_page_update: (a, h) => pageLookup(a, h, 'IOTLB page update sid 0x', 'vtd_iotlb_page_update'),
  // 'IOTLB context hit bus 0x%x devfn 0x%x high 0x%x low 0x%x gen %u'
  vtd_iotlb_cc_hit: (a, h) => {
    sc.at = 0;
    if (!lit(a, 'IOTLB context hit bus 0x') || !hex(a)) return null;
    const bus = sc.num;
    if (!lit(a, ' devfn 0x') || !hex(a)) return null;
    const devfn = sc.num;
    if (!lit(a, ' high 0x')) return null;
    const high = hex64(a);
    if (high === null || !lit(a, ' low 0x')) return null;
    const low = hex64(a);
    if (low === null || !lit(a, ' gen ') || !dec(a) || sc.at !== a.length) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_iotlb_cc_hit', event: 'vtd_iotlb_cc_hit',
      bus, devfn, high, low, gen: sc.num,
    };
  },
  // 'invalidate desc type %s high 0x%x low 0x%x'
  vtd_inv_desc: (a, h) => {
    sc.at = 0;
    if (!lit(a, 'invalidate desc type ')) return null;
    const t0 = sc.at;
    for (let c = a.charCodeAt(sc.at); c > 32 && c < 127; c = a.charCodeAt(++sc.at));
    if (sc.at === t0 || !lit(a, ' high 0x')) return null;
    const type = a.slice(t0, sc.at - 8);
    const hi = hex64(a);
    if (hi === null || !lit(a, ' low 0x')) return null;
    const lo = hex64(a);
    if (lo === null || sc.at !== a.length) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc', event: 'vtd_inv_desc',
      type, hi, lo,
    };
  },
  // 'iotlb invalidate domain 0x%x addr 0x%x mask 0x%x'
  vtd_inv_desc_iotlb_pages: (a, h) => {
    sc.at = 0;
    if (!lit(a, 'iotlb invalidate domain 0x') || !hex(a)) return null;
    const domain = sc.num;
    if (!lit(a, ' addr 0x')) return null;
    const addr = hex64(a);
    if (addr === null || !lit(a, ' mask 0x') || !hex(a) || sc.num > 63 || sc.at !== a.length) return null;
    const mask = sc.num;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_iotlb_pages', event: 'vtd_inv_desc_iotlb_pages',
      domain, addr, mask, size: 4096n << BigInt(mask),
    };
  },
  // 'wait invalidate status write addr 0x%x data 0x%x'
  vtd_inv_desc_wait_sw: (a, h) => {
    sc.at = 0;
    if (!lit(a, 'wait invalidate status write addr 0x')) return null;
    const addr = hex64(a);
    if (addr === null || !lit(a, ' data 0x') || !hex(a) || sc.at !== a.length) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'vtd_inv_desc_wait_sw', event: 'vtd_inv_desc_wait_sw',
      addr, data: sc.num,
    };
  },
  // 'devid: %02x:%02x.%x gpa 0x%x hpa 0x%x'
  amdvi_translation_result: (a, h) => amdLookup(a, h, 'devid: ', 'amdvi_translation_result'),
  // 'hit iotlb devid %02x:%02x.%x gpa 0x%x hpa 0x%x'
  amdvi_iotlb_hit: (a, h) => amdLookup(a, h, 'hit iotlb devid ', 'amdvi_iotlb_hit'),
  // ' update iotlb domid 0x%x devid: %02x:%02x.%x gpa 0x%x hpa 0x%x' (the log shows the leading space
  // as a second space after the name: the args start with 'update')
  amdvi_cache_update: (a, h) => {
    sc.at = a.charCodeAt(0) === 32 ? 1 : 0;
    if (!lit(a, 'update iotlb domid 0x') || !hex(a)) return null;
    const domid = sc.num;
    if (!lit(a, ' devid: ') || !scanBdf(a) || !lit(a, ' gpa 0x')) return null;
    const iova = hex64(a);
    if (iova === null || !lit(a, ' hpa 0x')) return null;
    const gpa = hex64(a);
    if (gpa === null || sc.at !== a.length) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_cache_update', event: 'amdvi_cache_update',
      domid, bus: bdf[0]!, dev: bdf[1]!, fn: bdf[2]!, iova, gpa,
    };
  },
  // 'AMD-Vi pages for domain 0x%x invalidated'
  amdvi_pages_inval: (a, h) => {
    sc.at = 0;
    if (!lit(a, 'AMD-Vi pages for domain 0x') || !hex(a) || !lit(a, ' invalidated') || sc.at !== a.length) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_pages_inval', event: 'amdvi_pages_inval',
      domid: sc.num,
    };
  },
  // 'completion wait requested with store address 0x%x and store data 0x%x'
  amdvi_completion_wait: (a, h) => {
    sc.at = 0;
    if (!lit(a, 'completion wait requested with store address 0x')) return null;
    const addr = hex64(a);
    if (addr === null || !lit(a, ' and store data 0x')) return null;
    const data = hex64(a);
    if (data === null || sc.at !== a.length) return null;
    return {
      line: h.line, tid: h.tid, time: h.time, tUs: h.tUs,
      kind: 'amdvi_completion_wait', event: 'amdvi_completion_wait',
      addr, data,
    };
  },
};

function pageLookup(a: string, h: QemuBase, head: string, kind: 'vtd_iotlb_page_hit' | 'vtd_iotlb_page_update'): QemuTypedRecord | null {
  sc.at = 0;
  if (!lit(a, head) || !hex(a)) return null;
  const sid = sc.num;
  if (!lit(a, ' iova 0x')) return null;
  const iova = hex64(a);
  if (iova === null || !lit(a, ' slpte 0x')) return null;
  const slpte = hex64(a);
  if (slpte === null || !lit(a, ' domain 0x') || !hex(a) || sc.at !== a.length) return null;
  return {
    line: h.line, tid: h.tid, time: h.time, tUs: h.tUs, kind, event: kind,
    sid, iova, slpte, domain: sc.num, gpa: slpte & VTD_SLPTE_ADDR_MASK, perm: Number(slpte & 3n),
  } as VtdIotlbPageHit | VtdIotlbPageUpdate;
}

function amdLookup(a: string, h: QemuBase, head: string, kind: 'amdvi_translation_result' | 'amdvi_iotlb_hit'): QemuTypedRecord | null {
  sc.at = 0;
  if (!lit(a, head) || !scanBdf(a) || !lit(a, ' gpa 0x')) return null;
  const iova = hex64(a);
  if (iova === null || !lit(a, ' hpa 0x')) return null;
  const gpa = hex64(a);
  if (gpa === null || sc.at !== a.length) return null;
  return {
    line: h.line, tid: h.tid, time: h.time, tUs: h.tUs, kind, event: kind,
    bus: bdf[0]!, dev: bdf[1]!, fn: bdf[2]!, iova, gpa,
  } as AmdviTranslationResult | AmdviIotlbHit;
}

