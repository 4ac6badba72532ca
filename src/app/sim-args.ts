// The command line that reproduces a simulated trace, and the trace's default name. Both are derived
// from the stored SimConfig, so what `traces`, `report` and the demo print is what the config holds:
// workload, path, ring size, ops, seed, every fault and every variant (nothing implied).
import { defaultDevices, type Fault, type SimConfig } from '../sim/config.js';

const CLI_WORKLOADS: readonly string[] = ['remap', 'net-tx', 'net-rx', 'blk-read', 'blk-write', 'mixed'];

/** A fault as `--fault` takes it (parseFault's inverse: a bare delay-invalidate means 1, so 0 is spelled out). */
export function faultSpec(f: Fault): string {
  if (f.arg) return `${f.kind}=${f.arg}`;
  return f.kind === 'delay-invalidate' ? `${f.kind}=0` : f.kind;
}

/** A word for a POSIX shell command line, quoted only when it needs to be. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_.,:=/+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The `record` arguments that produce exactly this config from this seed, or null when the config
 * is not expressible on the command line (a scripted workload, devices on different paths, a
 * device list that differs from the workload's default one in anything the options cannot say).
 */
export function recordArgs(c: SimConfig, seed: string): string[] | null {
  // only the generated workloads have a command line (a script or scenario lives in its file)
  if (!CLI_WORKLOADS.includes(c.workload) || c.script || 'scenario' in c) return null;
  const args = ['--workload', c.workload, '--path', c.path, '--seed', seed, '--ops', String(c.ops), '--ring', String(c.ringNum)];
  for (const f of c.faults) args.push('--fault', faultSpec(f));
  for (const [k, v] of Object.entries(c.variants ?? {})) args.push('--variant', `${k}=${String(v)}`);
  if (c.packed) args.push('--packed');
  if (c.eventIdx === false) args.push('--no-event-idx');
  if (c.indirect === false) args.push('--no-indirect');
  if (c.devices) {
    const def = defaultDevices(c);
    const d0 = c.devices[0];
    if (!d0 || c.devices.length !== def.length) return null;
    for (let i = 0; i < def.length; i++) {
      const d = c.devices[i]!;
      const want = { ...def[i]!, translate: d0.translate, backend: d0.backend, accessPlatform: d0.accessPlatform };
      if (JSON.stringify(d) !== JSON.stringify(want)) return null;
    }
    if (d0.translate) args.push('--translate', d0.translate);
    if (d0.backend && d0.backend !== 'vhost') args.push('--backend', d0.backend);
    if (d0.accessPlatform === false) args.push('--no-access-platform');
  }
  if (c.protected) args.push('--protected');
  for (const [k, v] of Object.entries(c.knobs ?? {})) args.push('--knob', `${k}=${String(v)}`);
  if (c.schedule) args.push('--pct-depth', String(c.schedule.depth), '--pct-steps', String(c.schedule.steps));
  return args;
}

/** `npx dmareplay record …` for a config, or null (see recordArgs). */
export function recordCommandLine(c: SimConfig, seed: string, db?: string): string | null {
  const a = recordArgs(c, seed);
  if (!a) return null;
  return ['npx dmareplay record', ...a.map(shellQuote), ...(db ? ['--db', shellQuote(db)] : [])].join(' ');
}

/**
 * The default name of a simulated trace: workload/path, ring size, ops, seed, then every fault and
 * variant and any ring feature that is not the default, e.g.
 * `remap/iommu ring=16 ops=8 seed=7 fault=delay-invalidate=1`.
 */
export function traceName(c: SimConfig, seed: string): string {
  const parts = [`${c.workload}/${c.path}`, `ring=${c.ringNum}`, `ops=${c.ops}`, `seed=${seed}`];
  parts.push(c.faults.length ? c.faults.map((f) => `fault=${faultSpec(f)}`).join(' ') : 'no-fault');
  for (const [k, v] of Object.entries(c.variants ?? {})) parts.push(`variant=${k}=${String(v)}`);
  if (c.packed) parts.push('packed');
  if (c.eventIdx === false) parts.push('no-event-idx');
  if (c.indirect === false) parts.push('no-indirect');
  const d0 = c.devices?.[0];
  if (d0?.translate) parts.push(`translate=${d0.translate}`);
  if (d0?.backend && d0.backend !== 'vhost') parts.push(`backend=${d0.backend}`);
  if (d0?.accessPlatform === false) parts.push('no-access-platform');
  if (c.protected) parts.push('protected');
  for (const [k, v] of Object.entries(c.knobs ?? {})) parts.push(`knob=${k}=${String(v)}`);
  if (c.schedule) parts.push(`pct=${c.schedule.depth}/${c.schedule.steps}`);
  return parts.join(' ');
}
