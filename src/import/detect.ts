/**
 * Format sniffing for trace files: QEMU `log` trace backend vs. Linux ftrace text.
 */
import { isFtraceEventLine } from './ftrace.js';
import { type LineSource, readLines } from './lines.js';
import { isQemuLogLine, isUntimedQemuLogLine } from './qemu-log.js';

export type TraceFormat = 'qemu-log' | 'ftrace';

/**
 * Decides the format from the first lines of a file: the first line that is decisive wins.
 * Decisive for `qemu-log`: `TID@SEC.USEC:event …`. Decisive for `ftrace`: the `=====RT-TRACE-BEGIN`
 * framing, a `# tracer:` header, or a `TASK-PID [CPU] … TIMESTAMP: EVENT:` line. Blank lines, other
 * `#` lines and unrecognised lines are skipped. Returns null if no line is decisive.
 */
export function detectFormat(firstLines: readonly string[]): TraceFormat | null {
  for (const raw of firstLines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    if (line.startsWith('=====RT-TRACE-BEGIN') || /^#\s*tracer:/.test(line)) return 'ftrace';
    if (line.startsWith('#')) continue;
    if (isQemuLogLine(line) || isUntimedQemuLogLine(line)) return 'qemu-log';
    if (isFtraceEventLine(line)) return 'ftrace';
  }
  return null;
}

/** Reads up to `maxLines` lines of a file or stream and applies {@link detectFormat}. */
export async function detectFileFormat(source: LineSource, maxLines = 64): Promise<TraceFormat | null> {
  const lines: string[] = [];
  for await (const line of readLines(source)) {
    lines.push(line);
    if (lines.length >= maxLines) break;
  }
  return detectFormat(lines);
}
