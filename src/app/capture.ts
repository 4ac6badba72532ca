// capture: run the user's own QEMU command line with the trace options dmareplay reads, then import
// the host log (and the guest's ftrace, when the guest writes it to a serial port) as one trace.
//
// What is added to the command line (appended, so it wins over earlier settings of the same option):
//   -trace PATTERN for each of TRACE_PATTERNS (QEMU's `log` trace backend),
//   -D DIR/qemu.log (unless the command line already names a log file with -D: then that one is read),
//   -msg timestamp=on (the `TID@SEC.USEC:` prefix the merge orders host events by).
// The guest side cannot be switched on from outside the guest: its kernel must trace (trace_event=…
// on its command line) and copy the buffer to a serial port (README "Capture a trace of your own
// system"). Every `-serial file:PATH` / `-chardev file,…,path=PATH` of the command line is looked at
// after the run; the one that holds ftrace text (an `=====RT-TRACE-BEGIN` frame or a `# tracer:`
// header) is the guest log. `guest` names it explicitly instead.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { readLines } from '../import/lines.js';
import { type ImportResult, importTrace } from './import.js';

/** The QEMU trace events the importer reads (vIOMMU, virtio, vhost, and the phase markers). */
export const TRACE_PATTERNS = ['vtd_*', 'amdvi_*', 'virtio_*', 'virtqueue_*', 'vhost_*', 'pci_cfg_write'] as const;

export interface CaptureOptions {
  db: string;
  /** the user's QEMU command line: binary first */
  command: string[];
  /** where the logs go (default: a new directory under the system temp dir) */
  dir?: string;
  /** the guest's ftrace file, if not one of the command line's serial files */
  guest?: string;
  name?: string;
  /** called once QEMU has been started, with the command line actually run */
  started?: (argv: string[]) => void;
  progress?: (msg: string) => void;
}

export interface CaptureResult {
  /** the command line that was run (the user's plus the trace options) */
  argv: string[];
  dir: string;
  hostLog: string;
  guestLog: string | null;
  /** QEMU's exit status (null if a signal ended it) */
  qemuExit: number | null;
  qemuSignal: string | null;
  import: ImportResult;
}

/** The user's command line with the trace options added; `hostLog` is the file QEMU will log to. */
export function traceArgs(command: readonly string[], dir: string): { argv: string[]; hostLog: string } {
  let hostLog: string | null = null;
  for (let i = 1; i < command.length - 1; i++) if (command[i] === '-D') hostLog = command[i + 1]!;
  const argv = [...command];
  for (const p of TRACE_PATTERNS) argv.push('-trace', p);
  if (hostLog === null) {
    hostLog = join(dir, 'qemu.log');
    argv.push('-D', hostLog);
  }
  argv.push('-msg', 'timestamp=on');
  return { argv, hostLog };
}

/** Files the guest can write through a serial port: `-serial file:PATH`, `-chardev file,…,path=PATH`. */
export function serialFiles(command: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < command.length - 1; i++) {
    const opt = command[i]!.replace(/^--/, '-');
    const v = command[i + 1]!;
    if (opt === '-serial' && v.startsWith('file:')) out.push(v.slice(5));
    if (opt === '-chardev' && /^file,/.test(v)) {
      const m = /(?:^|,)path=([^,]+)/.exec(v);
      if (m) out.push(m[1]!);
    }
  }
  return out;
}

/** Does the file hold guest ftrace text (make-traces.sh framing or a tracefs `trace` dump)? */
async function holdsFtrace(file: string): Promise<boolean> {
  if (!existsSync(file) || !statSync(file).isFile()) return false;
  for await (const line of readLines(file)) if (/^=====RT-TRACE-BEGIN|^# tracer:/.test(line)) return true;
  return false;
}

function runQemu(argv: string[]): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    // Ctrl-C reaches QEMU too (same process group): let it stop the guest, then import what it logged
    const ignore = () => {};
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    const cleanup = () => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', ignore);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      fail(e.code === 'ENOENT' ? new InputError(`cannot run ${argv[0]}: no such program`) : e.code === 'EACCES' ? new InputError(`cannot run ${argv[0]}: permission denied`) : e);
    });
    child.on('exit', (code, signal) => {
      cleanup();
      done({ code, signal });
    });
  });
}

export async function capture(opts: CaptureOptions): Promise<CaptureResult> {
  if (opts.command.length === 0) throw new UsageError('capture needs a QEMU command line after --, e.g. dmareplay capture -- qemu-system-x86_64 -m 1G …');
  if (opts.command[0]!.startsWith('-')) throw new UsageError(`the command line after -- must start with the QEMU binary, got ${JSON.stringify(opts.command[0])}`);
  if (opts.dir && existsSync(opts.dir) && !statSync(opts.dir).isDirectory()) throw new UsageError(`--dir ${opts.dir} is not a directory`);
  if (opts.dir) mkdirSync(opts.dir, { recursive: true });
  const dir = resolve(opts.dir ?? mkdtempSync(join(tmpdir(), 'dmareplay-capture-')));
  const { argv, hostLog } = traceArgs(opts.command, dir);
  opts.started?.(argv);
  const { code, signal } = await runQemu(argv);
  if (!existsSync(hostLog) || statSync(hostLog).size === 0)
    throw new InputError(`${argv[0]} ${signal ? `was ended by ${signal}` : `exited with status ${code}`} and wrote no trace log to ${hostLog}`);
  let guestLog: string | null = opts.guest ?? null;
  if (guestLog !== null && !existsSync(guestLog)) throw new InputError(`the guest log ${guestLog} was not written by the run`);
  if (guestLog === null) for (const f of serialFiles(opts.command)) if (await holdsFtrace(f)) guestLog = f;
  opts.progress?.(`importing ${guestLog ? `${guestLog} + ` : ''}${hostLog}`);
  const imported = await importTrace({ db: opts.db, host: hostLog, ...(guestLog ? { guest: guestLog } : {}), name: opts.name, progress: opts.progress });
  return { argv, dir, hostLog, guestLog, qemuExit: code, qemuSignal: signal, import: imported };
}
