/**
 * Range checks of the fields the log parsers read (ftrace.ts, qemu-log.ts), applied to every parsed
 * record: a field that is out of range for what it names makes its line malformed (counted, listed,
 * fatal with --strict), instead of reaching the events as a wrapped, rounded or impossible value.
 *
 * The checks go by field name, so every record kind gets them without a table per kind:
 * - a bigint (address, size, pointer, timestamp) must be 0 ≤ v < 2^64;
 * - a number must be an exact non-negative integer (the parsers use parseInt, which gives a double:
 *   a 2^64 PCI id or a negative domain would otherwise pass), at most 2^32-1, and within the width of
 *   what it names (requester id 16 bits, bus 8, device 5, function 3, ...);
 * - an address range must not wrap past 2^64 (start + size, or an end before its start).
 */

const TWO64 = 1n << 64n;
const U32 = 0xffff_ffff;

/** the widest value of a numeric field, by name (PCI, VT-d and virtio widths); others: U32 */
const NUMBER_MAX: Readonly<Record<string, number>> = {
  sid: 0xffff, // PCI requester id: bus << 8 | devfn
  rid: 0xffff,
  bus: 0xff,
  dev: 0x1f,
  fn: 7,
  devfn: 0xff,
  domid: 0xffff, // AMD-Vi domain id
  mask: 63, // VT-d invalidation address mask (AM)
  perm: 3,
  usec: 999_999,
  n: 0xffff, // virtqueue index
  inNum: 0xffff,
  outNum: 0xffff,
  offset: 0xfff, // PCI config space offset
};

/** (start, length) pairs whose sum must stay below 2^64 */
const RANGES: readonly (readonly [string, string])[] = [
  ['iova', 'size'],
  ['paddr', 'size'],
  ['addr', 'size'],
  ['dmaAddr', 'size'],
  ['devAddr', 'size'],
  ['gpa', 'size'],
  ['host', 'size'],
];
/**
 * (start, inclusive end) pairs: the end must not lie before the start. (The iommu:map/unmap `end` is
 * exclusive and printed modulo 2^64, so a range ending at 2^64 shows end 0: their size is checked.)
 */
const SPANS: readonly (readonly [string, string])[] = [['virtStart', 'virtEnd']];

/** the smallest of NUMBER_MAX: a number up to it passes every field's check */
const SMALLEST_MAX = Math.min(...Object.values(NUMBER_MAX));

function checkValue(name: string, v: unknown): string | null {
  if (typeof v === 'bigint') {
    if (v < 0n) return `${name} is negative`;
    if (v >= TWO64) return `${name} 0x${v.toString(16)} does not fit in 64 bits`;
  } else if (typeof v === 'number' && name !== 'line') {
    if (!Number.isSafeInteger(v) || v < 0) return `${name} ${v} is not a non-negative integer`;
    const max = NUMBER_MAX[name] ?? U32;
    if (v > max) return `${name} ${v} is out of range (at most ${max})`;
  }
  return null;
}

/**
 * Why a parsed record's fields are out of range, or null if they are all fine. Looks at the
 * record's own fields and one level of nested objects (the QEMU timestamp); lists are left alone.
 */
export function fieldRangeError(rec: object): string | null {
  const r = rec as Record<string, unknown>;
  for (const k in r) {
    const v = r[k];
    // the common cases first, without a lookup: a bigint in range, a small exact number
    if (typeof v === 'bigint') {
      if (v >= 0n && v < TWO64) continue;
    } else if (typeof v === 'number') {
      if (v >= 0 && v <= SMALLEST_MAX && Number.isInteger(v)) continue;
    } else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const inner = v as Record<string, unknown>;
      for (const k2 in inner) {
        const bad = checkValue(k2, inner[k2]);
        if (bad) return `${k}.${bad}`;
      }
      continue;
    } else continue;
    const bad = checkValue(k, v);
    if (bad) return bad;
  }
  // every RANGES pair ends in a size; SPANS has one pair
  if (typeof r.size === 'bigint')
    for (const [a, n] of RANGES) {
      const x = r[a];
      const len = r[n];
      if (typeof x === 'bigint' && typeof len === 'bigint' && x + len > TWO64) return `${a} 0x${x.toString(16)} + ${n} 0x${len.toString(16)} wraps past 2^64`;
    }
  if (r.virtEnd !== undefined)
    for (const [a, b] of SPANS) {
      const x = r[a];
      const y = r[b];
      if (typeof x === 'bigint' && typeof y === 'bigint' && y < x) return `${b} 0x${y.toString(16)} lies before ${a} 0x${x.toString(16)}`;
    }
  return null;
}

/** An exact decimal or hex (0x…) integer as a bigint, or null when it is not one or has more than 64 bits. */
export function parseU64(text: string): bigint | null {
  if (!/^(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(text)) return null;
  const v = BigInt(text);
  return v < TWO64 ? v : null;
}
