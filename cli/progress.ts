// Progress bars for the long commands (record, replay, bisect, minimize, perturb, import, export):
// on a terminal only (stderr is a TTY), never with --json or when CI/NO_PROGRESS says otherwise.
// The bar lives here; the core only calls an optional callback with counts, so nothing in the
// deterministic code reads a clock or runs a timer. cli-progress redraws at most every 100 ms.
import cliProgress from 'cli-progress';

export interface Progress {
  /** done out of total (total may change, e.g. once a bisect knows how many probes it needs) */
  update(done: number, total: number, what?: string): void;
  stop(): void;
}

const NONE: Progress = { update() {}, stop() {} };

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
        bar = new cliProgress.SingleBar(
          { format: `${label} [{bar}] {percentage}% {value}/{total} ${unit}{what}`, stream: process.stderr, clearOnComplete: true, hideCursor: true, barsize: 30 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done, { what: what ? ` ${what}` : '' });
      } else {
        if (bar.getTotal() !== total) bar.setTotal(total);
        bar.update(done, { what: what ? ` ${what}` : '' });
      }
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}
