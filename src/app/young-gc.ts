// A young-generation collection on demand, for a loop that reads many blobs but allocates little
// else. Each row better-sqlite3 reads is a Buffer whose bytes live outside the V8 heap; a thread that
// makes little other garbage (parallel replay's main thread, hashing the stored stream and checking
// every checkpoint blob while the workers re-execute) collects them only when their external bytes
// pass V8's limit, so 40-57 MB of read rows sat dead at a time. With a scavenge every 256 stream rows
// and every 4 checkpoint blobs that thread's external peak is ~10 MB, and the peak RSS of replay on
// 8.9M events with 204k findings went from 273-325 MB to 247-256 MB, at no measurable CPU cost (a
// scavenge of such a thread takes well under a millisecond). The collector is V8's own (`gc`,
// exposed at run time as --expose-gc would; where that fails, V8 keeps its own schedule).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;
let gc: Gc | null | undefined;

export function collectYoung(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as Gc;
    } catch {
      gc = null; // not available: V8 collects on its own schedule
    }
  }
  gc?.({ type: 'minor' });
}
