// Loaded into a benchmarked child process with `node --import`: when the process exits it writes its
// resource usage (CPU time of every thread, peak RSS) as JSON to the file named by
// $DMAREPLAY_BENCH_USAGE. The parent measures wall time itself; this gives it what only the child knows.
//
// Peak RSS is VmHWM from /proc/self/status, not getrusage's ru_maxrss: Linux keeps ru_maxrss across
// fork and execve, so a child of a benchmark holding a 10M-event trace in memory would report the
// parent's high-water mark. VmHWM belongs to the address space, which execve replaces.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.DMAREPLAY_BENCH_USAGE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    writeFileSync(file, JSON.stringify({ cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000, maxRssMb: (hwm ? Number(hwm[1]) : u.maxRSS) / 1024 }));
  });
}
