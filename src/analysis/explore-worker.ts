// The entry point of an explore worker thread (a piscina task function): run one block of seeds, or
// re-run one seed for the determinism self-check. Pure computation: the main thread stores results.
import { threadId } from 'node:worker_threads';
import type { FaultKind, SimConfig } from '../sim/config.js';
import { type BlockResult, type BlockTask, encodedRun, minimizeFor, runBlock } from './explore.js';

export type WorkerTask =
  | { type: 'block'; block: BlockTask }
  | { type: 'verify'; config: SimConfig; seed: string; avoid: number; selftest?: boolean }
  | { type: 'minimize'; config: SimConfig; seed: string; sig: string; sweep?: FaultKind };

export interface WorkerReply {
  /** the thread that ran the task (a verification must run on another one than the original) */
  threadId: number;
  block?: BlockResult;
  /** null: this is the thread the original ran on, ask again */
  verify?: { hash: string; bytes: Uint8Array } | null;
  /** null: the scripted form does not keep the signature */
  minimized?: { config: SimConfig; events: number } | null;
}

/**
 * The seed a verification re-runs. `--selftest-nondeterminism` makes it another one, so the re-run
 * differs the way a nondeterministic model would, and the alarm (exit 5) can be checked end to end.
 */
export function verifySeed(seed: string, selftest = false): string {
  return selftest ? `${seed}/selftest` : seed;
}

/** Runs one task on the calling thread. */
export function handleTask(task: WorkerTask): WorkerReply {
  if (task.type === 'block') return { threadId, block: runBlock(task.block) };
  if (task.type === 'minimize') return { threadId, minimized: minimizeFor(task.config, task.seed, task.sig, task.sweep) };
  if (task.avoid === threadId) return { threadId, verify: null };
  const { hash, bytes } = encodedRun(task.config, verifySeed(task.seed, task.selftest));
  return { threadId, verify: { hash, bytes } };
}

/**
 * The pool's entry: the task runs from a macrotask of its own. A worker holds two tasks (the next
 * one waiting), and piscina starts both handlers from one loop and posts a result only in a
 * microtask after its handler returns: run at once, the second task would run before the first
 * one's result is posted, so every result would reach the main thread a whole task late, and the
 * main thread would hand out the next tasks late. Deferred, each result is posted as soon as its
 * task ends.
 */
export default function handle(task: WorkerTask): Promise<WorkerReply> {
  return new Promise((resolve, reject) =>
    setImmediate(() => {
      try {
        resolve(handleTask(task));
      } catch (e) {
        reject(e);
      }
    }),
  );
}
