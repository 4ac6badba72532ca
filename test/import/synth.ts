// Builds small guest (ftrace) + host (QEMU log) pairs line by line, in exactly the formats of the real
// logs (NOTES.md), for testing the rules of src/check/real.ts on situations the real runs do not
// contain (a strict-mode run, a use after unmap). These are synthetic and say so; the real-trace
// tests use the excerpts in traces/real/.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const h16 = (v: bigint): string => '0x' + v.toString(16).padStart(16, '0');
const hx = (v: bigint | number): string => '0x' + v.toString(16);

export interface Dev {
  sid: number;
  domain: number;
}
export const BLK: Dev = { sid: 0x10, domain: 4 };
export const NET: Dev = { sid: 0x18, domain: 5 };

const bdf = (sid: number): string => `${(sid >> 8).toString(16).padStart(2, '0')}:${((sid >> 3) & 0x1f).toString(16).padStart(2, '0')}.${(sid & 7).toString(16).padStart(2, '0')}`;

export class Run {
  readonly guest: string[] = [];
  readonly host: string[] = [];
  private gt = 1_000_000; // guest µs since boot
  private ht = 1_700_000_000_000_000n; // host µs since the epoch

  constructor(cmdline: string) {
    this.guest.push(`=====RT-TRACE-BEGIN case=synthetic kernel=6.1.0-56-amd64 cmdline=${cmdline}=====`, '# tracer: nop', '#');
  }

  private g(event: string, args: string): this {
    this.gt += 100;
    const ts = `${Math.floor(this.gt / 1e6)}.${String(this.gt % 1e6).padStart(6, '0')}`;
    this.guest.push(`              dd-120     [000] d..1.     ${ts}: ${event}: ${args}`);
    return this;
  }

  private h(event: string, args: string): this {
    this.ht += 100n;
    const s = this.ht / 1_000_000n;
    const us = (this.ht % 1_000_000n).toString().padStart(6, '0');
    this.host.push(`8328@${s}.${us}:${event}${args ? ' ' + args : ''}`);
    return this;
  }

  /** Phase marker N on both sides (guest first, as the workload writes them). */
  mark(n: number, name: string): this {
    this.g('tracing_mark_write', `RT-MARK ${n} ${name}`);
    return this.h('pci_cfg_write', `mch 00:00.0 @0xfc <- ${hx(0x52540000 + n)}`);
  }

  map(iova: bigint, gpa: bigint, size = 4096n): this {
    return this.g('map', `IOMMU: iova=${h16(iova)} - ${h16(iova + size)} paddr=${h16(gpa)} size=${size}`);
  }

  unmap(iova: bigint, size = 4096n): this {
    return this.g('unmap', `IOMMU: iova=${h16(iova)} - ${h16(iova + size)} size=${size} unmapped_size=${size}`);
  }

  /** The device accesses iova: QEMU logs the IOTLB lookup, then vtd_dmar_translate. */
  translate(dev: Dev, iova: bigint, gpa: bigint, hit = false): this {
    this.h(`vtd_iotlb_page_${hit ? 'hit' : 'update'}`, `IOTLB page ${hit ? 'hit' : 'update'} sid ${hx(dev.sid)} iova ${hx(iova)} slpte ${hx((gpa & ~0xfffn) | 3n)} domain ${hx(dev.domain)}`);
    return this.h('vtd_dmar_translate', `dev ${bdf(dev.sid)} iova ${hx(iova & ~0xfffn)} -> gpa ${hx(gpa & ~0xfffn)} mask 0xfff`);
  }

  invPage(dev: Dev, iova: bigint, mask = 0): this {
    return this.h('vtd_inv_desc_iotlb_pages', `iotlb invalidate domain ${hx(dev.domain)} addr ${hx(iova)} mask ${hx(mask)}`);
  }

  invDomain(dev: Dev): this {
    return this.h('vtd_inv_desc_iotlb_domain', `iotlb invalidate whole domain ${hx(dev.domain)}`);
  }

  invGlobal(): this {
    return this.h('vtd_inv_desc_iotlb_global', 'iotlb invalidate global');
  }

  fault(dev: Dev, addr: bigint, reason = 6, write = false): this {
    return this.h('vtd_dmar_fault', `sid ${hx(dev.sid)} fault ${reason} addr ${hx(addr)} write ${write ? 1 : 0}`);
  }

  /** Writes g.txt and q.log into dir; drop: 0-based host line indexes to leave out. */
  write(dir: string, drop: number[] = []): { guest: string; host: string } {
    const guest = join(dir, 'g.txt');
    const host = join(dir, 'q.log');
    writeFileSync(guest, [...this.guest, '=====RT-TRACE-END====='].join('\n') + '\n');
    writeFileSync(host, this.host.filter((_, i) => !drop.includes(i)).join('\n') + '\n');
    return { guest, host };
  }

  /** Index of the last host line written so far (to drop it in a variant). */
  get lastHost(): number {
    return this.host.length - 1;
  }
}
