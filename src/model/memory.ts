// Guest physical memory: a sparse map of 4 KiB pages keyed by page frame number. Pages are
// copy-on-write: a page in a snapshot is never written; a writer copies it first unless it already
// owns the copy (the `owned` set of the working state in a replay batch). Immer does not draft typed
// arrays, so this map is the only place guest bytes change.
export const PAGE_SHIFT = 12n;
export const PAGE = 4096;
export const PAGE_BIG = 4096n;
export const PAGE_MASK = 0xfffn;
/** ~PAGE_MASK, once: `x & PAGE_BASE` is the page base of x (a bigint `~` allocates on every use) */
export const PAGE_BASE = ~PAGE_MASK;

/**
 * Page frame number → page. Keys are numbers: a pfn of a 64-bit address is below 2^52, so it is exact
 * as a double, and a Map lookup with a number key costs less than half one with a bigint key (and
 * computing it does not allocate a bigint).
 */
export type Pages = Map<number, Uint8Array>;

/** 2^53: below it a bigint converts to a double exactly */
const EXACT = 2 ** 53;

/**
 * A 64-bit conversion register for toNum and fromNum: written and read within one call, it carries
 * nothing from one call to the next (no state; a worker has its own module instance).
 */
const REG = new BigUint64Array(1);
const REG32 = new Uint32Array(REG.buffer);
const LO = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1; // the low half's index
const HI = 1 - LO;
const U64_END = 1n << 64n;

/**
 * Number(a), exactly (the same double, rounded the same way). Number() on a bigint is a runtime call
 * on Node 20 (~15 ns; BigInt::ToNumber was ~3% of the simulation's perf samples); storing the bigint
 * into a BigUint64Array and adding its 32-bit halves is ~5 ns. For 0 <= a < 2^64, hi * 2^32 and lo
 * are exact doubles and their sum is one correctly rounded addition: Number(a). Other values take
 * Number(a) itself.
 */
export function toNum(a: bigint): number {
  if (a >= 0n && a < U64_END) {
    REG[0] = a;
    return REG32[LO]! + REG32[HI]! * 4294967296;
  }
  return Number(a);
}

/**
 * BigInt(n), exactly (and throwing as it does for a non-integer). BigInt() of a number is a runtime
 * call here that allocates its bigint in C++ (Runtime_ToBigIntConvertNumber, BigInt::FromNumber,
 * Canonicalize: ~1.5% of the simulation's perf samples, from the ring-offset, page-span and live-entry
 * arithmetic); a safe integer's 32-bit halves written to the register and read back as a u64 is
 * optimized code. n < 2^53, so the halves are n mod 2^32 and floor(n / 2^32).
 */
export function fromNum(n: number): bigint {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER && Math.floor(n) === n) {
    REG32[LO] = n >>> 0;
    REG32[HI] = (n / 4294967296) >>> 0;
    return REG[0]!;
  }
  return BigInt(n);
}

/** The page frame number of a 64-bit address (exact: below 2^52), without bigint arithmetic below 2^53. */
export function pfnOf(a: bigint): number {
  const n = toNum(a); // rounds only at or above 2^53, and never below it (2^53 is a double)
  return n >= 0 && n < EXACT ? Math.floor(n / PAGE) : Number(a >> PAGE_SHIFT);
}

/** The offset of a 64-bit address in its page, without bigint arithmetic below 2^53. */
export function pageOff(a: bigint): number {
  const n = toNum(a);
  return n >= 0 && n < EXACT ? n % PAGE : Number(a & PAGE_MASK);
}

/**
 * pfnOf and pageOff of `a` given n = toNum(a): the accessors below convert an address once for both
 * (ring reads take both).
 */
export function pfnOfNum(a: bigint, n: number): number {
  return n >= 0 && n < EXACT ? Math.floor(n / PAGE) : Number(a >> PAGE_SHIFT);
}
function offOfNum(a: bigint, n: number): number {
  return n >= 0 && n < EXACT ? n % PAGE : Number(a & PAGE_MASK);
}

/** The address of page frame pfn (exact: pfn < 2^52). */
export function pfnBase(pfn: number): bigint {
  return BigInt(pfn) << PAGE_SHIFT;
}

export function readMem(pages: Pages, gpa: bigint, len: number): Uint8Array {
  const n = toNum(gpa);
  const off0 = offOfNum(gpa, n);
  if (off0 + len <= PAGE) {
    // the common case: within one page
    const page = pages.get(pfnOfNum(gpa, n));
    const out = new Uint8Array(len);
    if (!page) return out;
    // short reads (ring indices, descriptors, headers) copy faster as a loop than via slice()
    if (len <= 32) for (let i = 0; i < len; i++) out[i] = page[off0 + i]!;
    else out.set(page.subarray(off0, off0 + len));
    return out;
  }
  const out = new Uint8Array(len);
  let done = 0;
  while (done < len) {
    const a = gpa + BigInt(done);
    const off = pageOff(a);
    const n = Math.min(PAGE - off, len - done);
    const page = pages.get(pfnOf(a));
    if (page) out.set(page.subarray(off, off + n), done);
    done += n;
  }
  return out;
}

/** Copies guest memory [gpa, gpa+len) into out at `at` (unwritten pages read as zeros). */
export function readMemInto(pages: Pages, gpa: bigint, len: number, out: Uint8Array, at: number): void {
  let done = 0;
  while (done < len) {
    const a = done ? gpa + BigInt(done) : gpa;
    const an = toNum(a);
    const off = offOfNum(a, an);
    const n = Math.min(PAGE - off, len - done);
    const page = pages.get(pfnOfNum(a, an));
    if (!page) out.fill(0, at + done, at + done + n);
    else if (n <= 32) for (let i = 0; i < n; i++) out[at + done + i] = page[off + i]!;
    else out.set(page.subarray(off, off + n), at + done);
    done += n;
  }
}

/**
 * The page holding all of [gpa, gpa+len), for reading in place: null if the range crosses a page
 * boundary or the page was never written (callers then take the general path). Never write to it.
 */
export function pageFor(pages: Pages, gpa: bigint, len: number): Uint8Array | null {
  const n = toNum(gpa);
  if (offOfNum(gpa, n) + len > PAGE) return null;
  return pages.get(pfnOfNum(gpa, n)) ?? null;
}

export function writeMem(pages: Pages, gpa: bigint, data: Uint8Array, owned?: Set<Uint8Array>): void {
  const n = toNum(gpa);
  const off0 = offOfNum(gpa, n);
  if (off0 + data.length <= PAGE) {
    ownedPage(pages, pfnOfNum(gpa, n), owned).set(data, off0);
    return;
  }
  let done = 0;
  while (done < data.length) {
    const a = gpa + BigInt(done);
    const pfn = pfnOf(a);
    const off = pageOff(a);
    const n = Math.min(PAGE - off, data.length - done);
    ownedPage(pages, pfn, owned).set(data.subarray(done, done + n), off);
    done += n;
  }
}

/** The page at pfn, copied first unless this writer already owns it. */
function ownedPage(pages: Pages, pfn: number, owned?: Set<Uint8Array>): Uint8Array {
  let page = pages.get(pfn);
  if (!page || !owned?.has(page)) {
    page = page ? new Uint8Array(page) : new Uint8Array(PAGE);
    owned?.add(page);
    pages.set(pfn, page);
  }
  return page;
}

/** Little-endian store of a 16/32-bit value without allocating. */
export function writeUint(pages: Pages, gpa: bigint, bytes: 2 | 4, v: number, owned?: Set<Uint8Array>): void {
  const n = toNum(gpa);
  const off = offOfNum(gpa, n);
  if (off + bytes > PAGE) {
    writeMem(pages, gpa, bytes === 2 ? le16(v) : le32(v), owned);
    return;
  }
  const page = ownedPage(pages, pfnOfNum(gpa, n), owned);
  page[off] = v & 0xff;
  page[off + 1] = (v >>> 8) & 0xff;
  if (bytes === 4) {
    page[off + 2] = (v >>> 16) & 0xff;
    page[off + 3] = (v >>> 24) & 0xff;
  }
}

export function readU16(pages: Pages, gpa: bigint): number {
  const n = toNum(gpa);
  const off = offOfNum(gpa, n);
  if (off + 2 <= PAGE) {
    const page = pages.get(pfnOfNum(gpa, n));
    return page ? page[off]! | (page[off + 1]! << 8) : 0;
  }
  const b = readMem(pages, gpa, 2);
  return b[0]! | (b[1]! << 8);
}

/**
 * readU16(pages, gpa + off) for an offset 0 <= off < 2^32 (a ring field's offset from the ring's
 * base), without building the bigint sum: the driver asks for the used index on every scheduler
 * step, and a bigint addition allocates its result. Below 2^53 the sum is exact in doubles; at or
 * above it, or for a read that crosses a page, readU16 of the bigint sum.
 */
export function readU16Off(pages: Pages, gpa: bigint, off: number): number {
  const n = toNum(gpa) + off;
  if (n >= 0 && n < EXACT) {
    const o = n % PAGE;
    if (o + 2 <= PAGE) {
      const page = pages.get(Math.floor(n / PAGE));
      return page ? page[o]! | (page[o + 1]! << 8) : 0;
    }
  }
  return readU16(pages, gpa + fromNum(off));
}

export function readU32(pages: Pages, gpa: bigint): number {
  const n = toNum(gpa);
  const off = offOfNum(gpa, n);
  if (off + 4 <= PAGE) {
    const page = pages.get(pfnOfNum(gpa, n));
    return page ? (page[off]! | (page[off + 1]! << 8) | (page[off + 2]! << 16)) + page[off + 3]! * 0x1000000 : 0;
  }
  const b = readMem(pages, gpa, 4);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 0x1000000;
}

export function le16(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >> 8) & 0xff]);
}

export function le32(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]);
}

export function le64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

/** FNV-1a of a byte range: a cheap fingerprint of what a device read, stored in dev.access. */
export function fnv1a(data: Uint8Array): number {
  return fnv1aAt(data, 0, data.length);
}

/** FNV-1a of data[off, off+len), without a copy. */
export function fnv1aAt(data: Uint8Array, off: number, len: number): number {
  // kept as a signed 32-bit value in the loop (Math.imul keeps the low 32 bits either way), four
  // bytes a round: the device's reads of every buffer go through here
  let h = 0x811c9dc5 | 0;
  const end = off + len;
  let i = off;
  for (; i + 4 <= end; i += 4) {
    h = Math.imul(h ^ data[i]!, 0x01000193);
    h = Math.imul(h ^ data[i + 1]!, 0x01000193);
    h = Math.imul(h ^ data[i + 2]!, 0x01000193);
    h = Math.imul(h ^ data[i + 3]!, 0x01000193);
  }
  for (; i < end; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return h >>> 0;
}

/** FNV-1a of guest memory [gpa, gpa+len) (unwritten pages read as zeros), without a copy when in one page. */
export function fnvMem(pages: Pages, gpa: bigint, len: number): number {
  const page = pageFor(pages, gpa, len);
  return page ? fnv1aAt(page, pageOff(gpa), len) : fnv1a(readMem(pages, gpa, len));
}
