// The second half of a large QEMU log's pass 1 (to-events.ts scanHostSplit): scans the file from
// byte `start` (the first line after the middle) with deferred args, and posts its part of the scan
// (line numbers counted from `start`), or the error.
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { SCAN_UNREAD, scanHostPart } from './to-events.js';

const job = (workerData as { hostScanPart?: { file: string; start: number } } | null)?.hostScanPart;
if (parentPort && job) {
  const port = parentPort;
  const stream = createReadStream(job.file, { start: job.start, highWaterMark: 1 << 16 });
  scanHostPart(stream, job.file, { xlate: false, deferArgs: true }, SCAN_UNREAD).then(
    (part) => port.postMessage({ part }),
    (e: unknown) => port.postMessage({ error: (e as Error)?.message ?? String(e), code: (e as { code?: string })?.code }),
  ).finally(() => stream.destroy());
}
