/**
 * Line streaming shared by the trace importers, over `fs.createReadStream` (or any caller-supplied
 * readable stream), plus detection of a missing final newline, which is how a log that was cut
 * mid-write (truncated) shows up.
 *
 * Lines are handed out in batches, one per chunk read (one async step per chunk instead of per line):
 * the importers parse a batch synchronously, which matters for multi-million-line logs.
 *
 * The lines are exactly those `node:readline` gives (`crlfDelay: Infinity`), which this replaced for
 * speed (readline runs a regex over every chunk and emits an event per line): a line ends at `\n`,
 * `\r\n` or a lone `\r`; bytes are decoded as UTF-8 by a StringDecoder fed chunk by chunk; a `\r` that
 * ends a chunk and a `\n` that starts the next are one line end; the unfinished last line is a line
 * when it is not empty. test/import/lines.test.ts holds the two to the same lines.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** A file path, or an already-open readable stream (bytes or text). */
export type LineSource = string | Readable | NodeJS.ReadableStream;

/** Filled in by {@link lineBatches} / {@link readLines} while reading. */
export interface LineStreamState {
  /** Lines read so far. */
  lines: number;
  /** Valid once `done`: false when the input's last byte was not `\n` (the last line is incomplete). */
  finalNewline: boolean;
  /** True once the whole input was read (false if the consumer stopped early). */
  done: boolean;
  /**
   * Set with each batch: no text read so far held `\r`, U+2028 or U+2029, so no line of the batch
   * does (a parser may skip looking for them; false is always safe).
   */
  plain?: boolean;
}

export function newLineStreamState(): LineStreamState {
  return { lines: 0, finalNewline: true, done: false };
}

/** Lines buffered before the input is paused (back-pressure). */
const HIGH_WATER = 65536;
/** Bytes per read of a file (measured: 1 MiB chunks parse slower, every line slice keeps its chunk alive longer). */
const CHUNK_BYTES = 1 << 16;

/** readline's line ending (lib/internal/readline/interface.js `lineEnding`). */
const LINE_ENDING = /\r?\n|\r(?!\n)/g;

/**
 * Splits decoded text into lines as readline's `[kNormalWrite]` does: `partial` is the unfinished
 * line carried from the previous chunk, `sawReturn` whether that chunk's text ended with `\r`.
 */
class Splitter {
  partial = '';
  sawReturn = false;

  /** The lines `chunk` completes (appended to `out`). */
  write(chunk: string, out: string[]): void {
    let s = chunk;
    if (this.sawReturn) {
      if (s.charCodeAt(0) === 10) s = s.slice(1);
      this.sawReturn = false;
    }
    const cr = s.indexOf('\r');
    const firstNl = cr < 0 ? s.indexOf('\n') : -2;
    if (firstNl === -1) {
      // no line end in it (no \r, no \n): the line goes on
      if (s) this.partial = this.partial ? this.partial + s : s;
      return;
    }
    if (this.partial) {
      s = this.partial + s;
      this.partial = '';
    }
    if (cr < 0) {
      // only \n line ends: no regex
      let from = 0;
      for (let nl = s.indexOf('\n'); nl >= 0; nl = s.indexOf('\n', from)) {
        out.push(s.slice(from, nl));
        from = nl + 1;
      }
      this.partial = s.slice(from);
      return;
    }
    LINE_ENDING.lastIndex = 0;
    let m = LINE_ENDING.exec(s);
    if (m === null) {
      this.partial = s;
      return;
    }
    this.sawReturn = s.endsWith('\r');
    let from = 0;
    while (m !== null) {
      out.push(s.slice(from, m.index));
      from = LINE_ENDING.lastIndex;
      m = LINE_ENDING.exec(s);
    }
    this.partial = s.slice(from);
  }
}

/**
 * Yields the lines of `source` (without `\n` / `\r\n`) in arrays, in order. A path is opened with
 * `fs.createReadStream` and closed when iteration ends (also on `break` or error); a stream the caller
 * gave is paused, not closed, when iteration stops early. Stream errors (e.g. ENOENT) are thrown from
 * the iteration.
 */
export async function* lineBatches(source: LineSource, state: LineStreamState = newLineStreamState()): AsyncGenerator<string[]> {
  const ownStream = typeof source === 'string';
  // 64 KiB reads on the thread pool: the next chunk is read while this one is parsed
  const input: NodeJS.ReadableStream = ownStream ? createReadStream(source, { highWaterMark: CHUNK_BYTES }) : source;
  const decoder = new StringDecoder('utf8');
  const split = new Splitter();
  let batch: string[] = [];
  let ended = false;
  let paused = false;
  let error: unknown = null;
  let wake: (() => void) | null = null;
  let lastByte = -1;
  const notify = (): void => {
    const w = wake;
    wake = null;
    if (w) w();
  };
  let plain = true;
  const onData = (chunk: Buffer | string): void => {
    if (chunk.length === 0) return;
    lastByte = typeof chunk === 'string' ? chunk.charCodeAt(chunk.length - 1) : chunk[chunk.length - 1]!;
    const had = batch.length;
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (plain && (text.indexOf('\r') >= 0 || text.indexOf('\u2028') >= 0 || text.indexOf('\u2029') >= 0)) plain = false;
    split.write(text, batch);
    if (batch.length >= HIGH_WATER && !paused) {
      paused = true;
      input.pause();
    }
    if (had === 0 && batch.length > 0) notify();
  };
  const onEnd = (): void => {
    if (split.partial.length > 0) batch.push(split.partial);
    split.partial = '';
    ended = true;
    notify();
  };
  const onError = (e: unknown): void => {
    if (error === null) error = e;
    notify();
  };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('error', onError);
  try {
    for (;;) {
      if (batch.length > 0) {
        const out = batch;
        batch = [];
        state.lines += out.length;
        state.plain = plain;
        if (paused) {
          paused = false;
          input.resume();
        }
        yield out;
        continue;
      }
      if (error !== null) throw error;
      if (ended) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    state.done = true;
    state.finalNewline = lastByte === -1 || lastByte === 10;
  } finally {
    input.removeListener('data', onData);
    input.removeListener('end', onEnd);
    input.removeListener('error', onError);
    if (ownStream) {
      input.on('error', () => {}); // closing: a late error has no one to go to
      (input as Readable).destroy();
    } else if (!ended) input.pause();
  }
}

/** Per-line convenience wrapper around {@link lineBatches}. */
export async function* readLines(source: LineSource, state: LineStreamState = newLineStreamState()): AsyncGenerator<string> {
  for await (const batch of lineBatches(source, state)) yield* batch;
}

/** Options of the log readers. */
export interface ReadOptions {
  /** also keep each record's line as read, in a `rawText` property (see {@link WithText}) */
  text?: boolean;
}

/** A record read with `{ text: true }`: the line it was parsed from (`rawText`). */
export interface WithText {
  rawText?: string;
}
