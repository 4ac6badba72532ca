// Where explore's blocks run: worker threads from a piscina pool (one per --jobs), or, when the
// compiled worker is not there (the test runner works on sources), this thread.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { handleTask, type WorkerReply, type WorkerTask } from '../analysis/explore-worker.js';

export interface TaskRunner {
  threads: number;
  run(task: WorkerTask): Promise<WorkerReply>;
  close(): Promise<void>;
}

const WORKER_URL = new URL('../analysis/explore-worker.js', import.meta.url);

export function workersAvailable(): boolean {
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

export function createRunner(jobs: number): TaskRunner {
  if (!workersAvailable()) return inlineRunner();
  const pool = new Piscina<WorkerTask, WorkerReply>({
    filename: WORKER_URL.href,
    minThreads: jobs,
    maxThreads: jobs,
    // two tasks per worker: while one runs, the next waits in the worker's port and starts as soon
    // as the first ends, without waiting for this thread to hand it over (with every core running a
    // worker, this thread may not get a core at once); the handler is synchronous, so a worker still
    // runs one task at a time
    concurrentTasksPerWorker: 2,
    idleTimeout: 60_000,
  });
  return { threads: jobs, run: (t) => pool.run(t), close: () => pool.destroy() };
}

/** Runs every task on this thread (a single "worker"). */
export function inlineRunner(): TaskRunner {
  return { threads: 1, run: async (t) => handleTask(t), close: async () => {} };
}
