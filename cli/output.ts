// Everything the CLI prints on stdout goes through here: one writer, synchronous, buffered, that
// stops the command when the reader goes away.
//
// Why not process.stdout.write: on Linux a pipe or file stdout is written synchronously, but a write
// error (EPIPE once `head` has exited) is only reported later, as an 'error' event on the next turn
// of the event loop. A command printing 10M events in one synchronous loop never gives it that turn:
// it went on formatting and queueing writes to a dead pipe for minutes, to gigabytes. Here each write
// of the buffer is a write(2) whose EPIPE is seen at once and thrown as StdoutClosed, which unwinds
// the command (its `finally` blocks close the database) and ends the process quietly with exit 0:
// a reader that stopped reading is not a failure (as for git log or grep; `set -o pipefail` users
// see 0). Nothing is printed on stderr for it.
//
// Buffering as C stdio does it: line by line on a terminal, in 64 KiB blocks to a pipe or a file,
// written when a block fills, when the event loop turns (a long-running command's lines still come
// out as it goes) and before the process exits.
import { writeSync } from 'node:fs';

/** stdout was closed by its reader (EPIPE): the command stops, quietly, with exit 0 */
export class StdoutClosed extends Error {
  constructor() {
    super('stdout closed by its reader');
  }
}

const BLOCK = 1 << 16;
const FD = 1;

class Stdout {
  /**
   * Text is encoded straight into this one block and written from it: no Buffer per write. (A fresh
   * Buffer per flush of a 10M-event export let glibc's heap grow to gigabytes of freed, unreturned
   * blocks while the live heap stayed at a few MB.)
   */
  private readonly block = Buffer.allocUnsafe(BLOCK);
  private used = 0;
  private readonly encoder = new TextEncoder();
  private scheduled = false;
  closed = false;
  /** undefined until the first write (isatty is looked up once) */
  private tty: boolean | undefined;

  write(s: string): void {
    if (this.closed) throw new StdoutClosed();
    for (let rest = s; rest.length; ) {
      const { read, written } = this.encoder.encodeInto(rest, this.block.subarray(this.used));
      this.used += written;
      if (read === rest.length) break;
      this.flush(); // the block is full: write it, go on with the rest
      rest = rest.slice(read);
    }
    this.tty ??= !!process.stdout.isTTY;
    if (this.tty) this.flush();
    else if (this.used && !this.scheduled) {
      // a command that prints a line and then awaits something: the line is written on the next turn
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        try {
          this.flush();
        } catch (e) {
          if (e instanceof StdoutClosed) process.exit(0);
          throw e;
        }
      });
    }
  }

  /** Writes out everything buffered; throws StdoutClosed if the reader has gone. */
  flush(): void {
    if (!this.used) return;
    const n = this.used;
    this.used = 0;
    writeAll(this.block.subarray(0, n), () => {
      this.closed = true;
      throw new StdoutClosed();
    });
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeAll(data: Buffer, onClosed: () => never): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(FD, data, off, data.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE' || code === 'ECONNRESET') onClosed();
      // a non-blocking stdout (the parent's pipe) that is full: wait for the reader, without spinning
      if (code === 'EAGAIN') Atomics.wait(sleeper, 0, 0, 2);
      else throw e;
    }
  }
}

export const stdout = new Stdout();

/** Prints a string as it is (no newline added). */
export function write(s: string): void {
  stdout.write(s);
}

export function flushStdout(): void {
  stdout.flush();
}

/** An array in a JSON document that is written element by element as it is produced, never held whole. */
export class Streamed<T = unknown> {
  constructor(readonly items: Iterable<T>) {}
}

export const streamed = <T>(items: Iterable<T>) => new Streamed(items);

const replacer = (_k: string, x: unknown) => (typeof x === 'bigint' ? '0x' + x.toString(16) : x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x);

/** JSON with 64-bit values as hex strings, never as doubles; indented by 2 (the CLI's --json form). */
export function toJson(v: unknown): string {
  return JSON.stringify(v, replacer, 2);
}

const hasStream = (v: unknown): boolean => v instanceof Streamed || (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && Object.values(v).some(hasStream));

/**
 * Writes `v` through `out` as toJson(v) would print it, byte for byte, except that a Streamed value
 * inside it is written as an array one element at a time (each element formatted as toJson formats
 * an array element at that depth), so a document with millions of findings never sits in memory.
 */
export function writeJson(v: unknown, out: (s: string) => void = write, indent = ''): void {
  if (!hasStream(v)) {
    const s = toJson(v);
    out(indent ? s.replaceAll('\n', '\n' + indent) : s);
    return;
  }
  const inner = indent + '  ';
  const element = (x: unknown) => writeJson(x === undefined || typeof x === 'function' || typeof x === 'symbol' ? null : x, out, inner);
  if (v instanceof Streamed || Array.isArray(v)) {
    let n = 0;
    for (const x of v instanceof Streamed ? v.items : v) {
      out(n++ === 0 ? '[\n' + inner : ',\n' + inner);
      element(x);
    }
    out(n ? '\n' + indent + ']' : '[]');
    return;
  }
  const entries = Object.entries(v as object).filter(([, x]) => x !== undefined && typeof x !== 'function' && typeof x !== 'symbol');
  out(entries.length ? '{\n' : '{}');
  entries.forEach(([k, x], i) => {
    out((i ? ',\n' : '') + inner + JSON.stringify(k) + ': ');
    writeJson(x, out, inner);
  });
  if (entries.length) out('\n' + indent + '}');
}

/** One JSON document on stdout, streamed where it holds Streamed arrays. */
export function printJson(v: unknown): void {
  writeJson(v);
  write('\n');
}

/** `items` transformed one at a time (a lazy map for Streamed arrays). */
export function* mapped<T, U>(items: Iterable<T>, f: (x: T) => U): Generator<U> {
  for (const x of items) yield f(x);
}
