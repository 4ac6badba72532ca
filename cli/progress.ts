// Progress bars for the long commands (record, replay, bisect, minimize, perturb, import, export):
// on a terminal only (stderr is a TTY), never with --json or when CI/NO_PROGRESS says otherwise.
// The bar lives here; the core only calls an optional callback with counts, so nothing in the
// deterministic code reads a clock or runs a timer. cli-progress redraws at most every 100 ms.
import cliProgress from 'cli-progress';

export interface Progress {
  /** done out of total (0: not known in advance, only the count is shown) */
  update(done: number, total: number, what?: string): void;
  /** a progress line with no count (e.g. the importer's phase and line count) */
  message(text: string): void;
  stop(): void;
}

const NONE: Progress = { update() {}, message() {}, stop() {} };

export function progressEnabled(o: { json?: boolean }): boolean {
  return !o.json && !!process.stderr.isTTY && !process.env.CI && !process.env.NO_PROGRESS;
}

/** A bar on stderr when enabled, else a no-op. `unit` names what is counted (events, ops, runs). */
export function progressBar(o: { json?: boolean }, label: string, unit = 'events'): Progress {
  if (!progressEnabled(o)) return NONE;
  let bar: cliProgress.SingleBar | null = null;
  return {
    update(done, total, what) {
      if (!bar) {
        const format = total > 0 ? `${label} [{bar}] {percentage}% {value}/{total} ${unit}{what}` : `${label} {value} ${unit}{what}`;
        bar = new cliProgress.SingleBar(
          { format, stream: process.stderr, clearOnComplete: true, hideCursor: true, barsize: 30 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done, { what: what ? ` ${what}` : '' });
      } else {
        if (total > 0 && bar.getTotal() !== total) bar.setTotal(total);
        bar.update(done, { what: what ? ` ${what}` : '' });
      }
    },
    message(text) {
      if (!bar) {
        bar = new cliProgress.SingleBar({ format: `${label}: {what}`, stream: process.stderr, clearOnComplete: true, hideCursor: true }, cliProgress.Presets.shades_classic);
        bar.start(0, 0, { what: text });
      } else bar.update(0, { what: text });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}
