// The smaller promises of issue 13: nothing injected by default, trace names and record command
// lines that say everything, --kind typos are errors, progress only on a terminal.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { progressBar } from '../../cli/progress.js';
import { simConfigOf, type SimOpts } from '../../cli/sim-options.js';
import { recordArgs, traceName } from '../../src/app/sim-args.js';
import type { SimConfig } from '../../src/sim/config.js';
import { cli, cliJson, tempDir } from '../helpers.js';

/** parse `record` arguments the way commander does for the options recordArgs emits */
function optsOf(args: string[]): SimOpts {
  const o: SimOpts = { workload: 'remap', seed: '1', fault: [], variant: [], backend: 'vhost' };
  const rec = o as unknown as Record<string, unknown>;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const key = a.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (a === '--fault' || a === '--variant') (rec[key] as string[]).push(args[++i]!);
    else if (a === '--packed' || a === '--protected') rec[key] = true;
    else if (a.startsWith('--no-')) rec[key.replace(/^no([A-Z])/, (_m, c: string) => c.toLowerCase())] = false;
    else rec[key] = args[++i];
  }
  return o;
}

const configs: [SimConfig, string][] = [
  [{ workload: 'remap', path: 'iommu', ops: 8, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }], variants: {}, packed: false, eventIdx: true, indirect: true }, '7'],
  [{ workload: 'remap', path: 'iommu', ops: 8, ringNum: 16, faults: [], variants: {}, packed: false, eventIdx: true, indirect: true }, '7'],
  [{ workload: 'remap', path: 'iommu', ops: 8, ringNum: 256, faults: [], variants: {}, packed: false, eventIdx: true, indirect: true }, '7'],
  [{ workload: 'net-rx', path: 'iommu-lazy', ops: 30, ringNum: 64, faults: [{ kind: 'evict-iotlb', arg: 0 }, { kind: 'delay-invalidate', arg: 0 }], variants: { wakeRule: 'gt', asyncInvalidate: true }, packed: true, eventIdx: false, indirect: false }, '12'],
  [{ workload: 'mixed', path: 'swiotlb', ops: 5, ringNum: 8, faults: [{ kind: 'swiotlb-full', arg: 3 }], variants: { swiotlbSlots: 64 }, packed: false, eventIdx: true, indirect: true, protected: true }, '3'],
];

describe('trace names and record command lines', () => {
  it('recordArgs gives back exactly the config (so the printed command reproduces the trace)', () => {
    for (const [c, seed] of configs) {
      const args = recordArgs(c, seed)!;
      const back = simConfigOf(optsOf(args));
      expect(back.seed).toBe(seed);
      expect(back.config, args.join(' ')).toEqual(c);
    }
  });
  it('names tell apart configs that differ in path, ring size, faults or variants', () => {
    const names = configs.map(([c, s]) => traceName(c, s));
    expect(new Set(names).size).toBe(names.length);
    expect(names[0]).toBe('remap/iommu ring=16 ops=8 seed=7 fault=delay-invalidate=1');
    expect(names[1]).toBe('remap/iommu ring=16 ops=8 seed=7 no-fault');
    expect(names[3]).toContain('fault=delay-invalidate=0');
    expect(names[3]).toContain('variant=wakeRule=gt');
  });
  it('a script workload has no command line', () => {
    expect(recordArgs({ ...configs[0]![0], workload: 'script', script: [{ dev: 0x18, what: 'tx', segs: [{ gpa: '0x1000', len: 64 }] }] }, '1')).toBeNull();
  });
});

describe('the command line', () => {
  it('record injects no fault unless asked; --help says so', () => {
    const db = join(tempDir(), 'f.db');
    const r = cliJson(['record', '--workload', 'remap', '--path', 'iommu', '--seed', '7', '--ring', '16', '--db', db]);
    expect(r.findings).toEqual([]);
    const log = cli(['log', String(r.trace), '--kind', 'fault', '--db', db]);
    expect(log.stdout).toBe('');
    expect(cli(['record', '--help']).stdout).toMatch(/default: none/);
    expect(cli(['traces', '--db', db]).stdout).toContain('no-fault');
  });
  it('log --kind: a pattern that matches no kind is a usage error naming it', () => {
    const db = join(tempDir(), 'k.db');
    const t = cliJson(['record', '--ops', '2', '--db', db]).trace;
    const bad = cli(['log', String(t), '--kind', 'iotlb.*,iommu.mapp', '--db', db]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^dmareplay: --kind "iommu\.mapp" matches no event kind \(kinds: trace\.config, .*finding\)\n$/);
    expect(bad.stdout).toBe('');
    expect(cli(['log', String(t), '--kind', 'iotlb.*,iommu.map', '--db', db]).code).toBe(0);
  });
  it('bisect --help documents exit 4 for a divergence', () => {
    expect(cli(['bisect', '--help']).stdout).toMatch(/4 divergence found/);
    expect(cli(['--help']).stdout).toMatch(/4 {2}bisect: a divergence was found/);
  });
  it('no progress output when stderr is not a terminal', () => {
    const r = cli(['record', '--ops', '300', '--db', join(tempDir(), 'p.db')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });
});

describe('progress bars', () => {
  const saved = { tty: process.stderr.isTTY, ci: process.env.CI, np: process.env.NO_PROGRESS, write: process.stderr.write };
  afterEach(() => {
    process.stderr.isTTY = saved.tty;
    process.stderr.write = saved.write;
    if (saved.ci === undefined) delete process.env.CI;
    else process.env.CI = saved.ci;
    if (saved.np === undefined) delete process.env.NO_PROGRESS;
    else process.env.NO_PROGRESS = saved.np;
  });
  const capture = () => {
    const got: string[] = [];
    process.stderr.write = ((chunk: string | Uint8Array) => (got.push(String(chunk)), true)) as typeof process.stderr.write;
    return got;
  };
  it('drawn on a terminal, from the counts the core reports', () => {
    process.stderr.isTTY = true;
    delete process.env.CI;
    delete process.env.NO_PROGRESS;
    const got = capture();
    const bar = progressBar({}, 'replay');
    bar.update(128, 512);
    bar.update(512, 512);
    bar.stop();
    expect(got.join('')).toMatch(/replay \[.*\] 100% 512\/512 events/);
  });
  it('never with --json, in CI, or off a terminal', () => {
    for (const [tty, ci, json] of [[true, '1', false], [true, undefined, true], [false, undefined, false]] as const) {
      process.stderr.isTTY = tty;
      if (ci) process.env.CI = ci;
      else delete process.env.CI;
      delete process.env.NO_PROGRESS;
      const got = capture();
      const bar = progressBar({ json }, 'record');
      bar.update(1, 2);
      bar.stop();
      expect(got).toEqual([]);
    }
  });
});
