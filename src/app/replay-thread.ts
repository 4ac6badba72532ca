// The entry point of a parallel replay's worker thread (src/app/replay-parallel.ts segmentRunner):
// one segment, given at the thread's creation, re-executed and verified (replay-worker.ts
// runSegment), its reply posted back. The task comes with the thread, not as a message: the joining
// thread re-executes a segment of its own right after starting this one and answers no message
// until it is done, so a task that had to be handed over once the thread is up (a pool's) would wait
// for it.
import { parentPort, workerData } from 'node:worker_threads';
import runSegment, { type SegmentTask } from './replay-worker.js';

parentPort!.postMessage(runSegment(workerData as SegmentTask));
