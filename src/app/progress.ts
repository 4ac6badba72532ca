// Progress reporting without a clock: the long operations call an optional callback with counts
// (done, total, what); the CLI draws a bar from them on a terminal (cli/progress.ts).
export type ProgressFn = (done: number, total: number, what?: string) => void;

/** Passes chunks through, reporting the last seq reached after each one. */
export function* counted<C extends { seq0: number; n: number }>(chunks: Iterable<C>, total: number, progress?: ProgressFn, what?: string): Generator<C> {
  for (const c of chunks) {
    yield c;
    progress?.(c.seq0 + c.n - 1, total, what);
  }
}
