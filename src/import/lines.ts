/**
 * Line streaming shared by the trace importers: `node:readline` over `fs.createReadStream` (or any
 * caller-supplied readable stream), plus detection of a missing final newline, which is how a log that
 * was cut mid-write (truncated) shows up.
 *
 * Lines are handed out in batches (one async step per batch instead of per line): the importers parse a
 * batch synchronously, which matters for multi-million-line logs.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

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
}

export function newLineStreamState(): LineStreamState {
  return { lines: 0, finalNewline: true, done: false };
}

/** Lines buffered before the input is paused (back-pressure). */
const HIGH_WATER = 8192;

/**
 * Yields the lines of `source` (without `\n` / `\r\n`) in arrays, in order. A path is opened with
 * `fs.createReadStream` and closed when iteration ends (also on `break` or error). Stream errors
 * (e.g. ENOENT) are thrown from the iteration.
 */
export async function* lineBatches(source: LineSource, state: LineStreamState = newLineStreamState()): AsyncGenerator<string[]> {
  const ownStream = typeof source === 'string';
  const input: NodeJS.ReadableStream = ownStream ? createReadStream(source) : source;
  const rl = createInterface({ input, crlfDelay: Infinity });
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
  // Observe the raw chunks alongside readline to learn whether the input ended with '\n'.
  input.on('data', (chunk: Buffer | string) => {
    if (chunk.length === 0) return;
    lastByte = typeof chunk === 'string' ? chunk.charCodeAt(chunk.length - 1) : chunk[chunk.length - 1]!;
  });
  const onError = (e: unknown): void => {
    if (error === null) error = e;
    notify();
  };
  // readline re-emits input errors on the interface (and throws if nobody listens there)
  rl.on('error', onError);
  input.on('error', onError);
  rl.on('line', (line: string) => {
    batch.push(line);
    if (batch.length >= HIGH_WATER && !paused) {
      paused = true;
      rl.pause();
    }
    if (batch.length === 1) notify();
  });
  rl.on('close', () => {
    ended = true;
    notify();
  });
  try {
    for (;;) {
      if (batch.length > 0) {
        const out = batch;
        batch = [];
        state.lines += out.length;
        if (paused) {
          paused = false;
          rl.resume();
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
    rl.close();
    if (ownStream) (input as Readable).destroy();
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
