// Loaded into a benchmarked child process with `node --import`: when the process exits it writes its
// resource usage (CPU time of every thread, peak RSS) as JSON to the file named by
// $DMAREPLAY_BENCH_USAGE. The parent measures wall time itself; this gives it what only the child knows.
import { writeFileSync } from 'node:fs';

const file = process.env.DMAREPLAY_BENCH_USAGE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage(); // getrusage(RUSAGE_SELF): all threads, maxRSS in KiB
    writeFileSync(file, JSON.stringify({ cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000, maxRssMb: u.maxRSS / 1024 }));
  });
}
