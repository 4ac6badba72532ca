// The fingerprints of the device's last writes into buffers, for the guest's read of the same bytes.
// A completed receive buffer is fingerprinted twice: when the device writes it (dev.access, from the
// bytes it writes) and when the guest reads it (cpu.read, from guest memory): FNV-1a is a serial
// multiply chain (~1.1 ns a byte), and a received packet is up to a page. When the bytes the guest
// reads are the bytes one of these writes put there (same GPA and length, and memory still holds
// them: a native compare, ~60 ns for a KiB against ~1 us to hash it), their FNV-1a is that write's sum, since
// FNV-1a is a function of the bytes alone. Derived, never state: a Sim without it (or a resumed one,
// which starts empty) gives the same sums, only by hashing; memory is compared on every use, so
// whatever wrote in between (another write, a fault) at worst costs the hash.
import { fnvMem, pageFor, pageOff, type Pages } from '../model/memory.js';

/**
 * writes remembered: a request's last writable segments (a virtio-net packet). Few: each keeps its
 * bytes' view alive longer (views that outlive a scavenge are copied), and the search is linear
 */
const SLOTS = 4;
/** below this, hashing the bytes (~1.1 ns a byte) costs less than the native compare's call (~60 ns) */
const MIN_LEN = 64;
const NO_BYTES = new Uint8Array(0);
/** Buffer.compare's ranged form (a native memcmp) works on any Uint8Array `this` */
const compareRange = Buffer.prototype.compare;

export class DeviceWrites {
  private readonly gpa: bigint[] = [-1n, -1n, -1n, -1n];
  /**
   * the bytes written: views of the Sim's slab (Sim.bytes), each range filled once, by the device,
   * before the event that carries it, and never written again (events and rules only read them)
   */
  private readonly data: Uint8Array[] = [NO_BYTES, NO_BYTES, NO_BYTES, NO_BYTES];
  private readonly sum: number[] = [0, 0, 0, 0];
  private next = 0;
  /** where the next search starts: after the last write found (the guest reads a list in the order the device wrote it) */
  private from = 0;

  /** The device wrote `data` at gpa, with FNV-1a `sum` (its dev.access). */
  remember(gpa: bigint, data: Uint8Array, sum: number): void {
    if (data.length < MIN_LEN) return; // never looked up
    const i = this.next;
    this.gpa[i] = gpa;
    this.data[i] = data;
    this.sum[i] = sum;
    this.next = i + 1 === SLOTS ? 0 : i + 1;
  }

  /** FNV-1a of guest memory [gpa, gpa+len): fnvMem's answer, taken from a remembered write when memory holds its bytes. */
  sumOf(mem: Pages, gpa: bigint, len: number): number {
    const page = pageFor(mem, gpa, len);
    if (page !== null && len >= MIN_LEN) {
      for (let k = 0, i = this.from; k < SLOTS; k++, i = i + 1 === SLOTS ? 0 : i + 1) {
        const d = this.data[i]!;
        if (d.length !== len || this.gpa[i] !== gpa) continue;
        const off = pageOff(gpa);
        if (compareRange.call(page, d, 0, len, off, off + len) !== 0) continue;
        this.from = i + 1 === SLOTS ? 0 : i + 1;
        return this.sum[i]!;
      }
    }
    return fnvMem(mem, gpa, len);
  }
}
