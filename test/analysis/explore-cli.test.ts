// explore and merge as commands, on real worker threads (dist/): shard processes with the variables
// of a Kubernetes Indexed Job, --jobs, a killed shard, Ctrl-C, the printed commands, bad input.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBlock } from '../../src/analysis/explore.js';
import { BIN, cli, cliJson, tempDir } from '../helpers.js';
import { exploreContents, storedBlocks } from './explore-db.js';

const ARGS = ['--workload', 'remap', '--path', 'iommu', '--fault', 'delay-invalidate=1', '--block', '20'];

async function waitForBlocks(db: string, n: number, child: ReturnType<typeof spawn>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (storedBlocks(db) < n && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

describe('explore and merge on the command line', () => {
  it('n shard processes (Indexed Job variables), merged, equal one run, whatever --jobs is', () => {
    const dir = tempDir();
    const one = join(dir, 'one.db');
    const two = join(dir, 'two.db');
    expect(cli(['explore', ...ARGS, '--seeds', '1..90', '--jobs', '1', '--db', one]).code).toBe(0);
    expect(cli(['explore', ...ARGS, '--seeds', '1..90', '--jobs', '2', '--db', two]).code).toBe(0);
    const shards = [0, 1, 2].map((i) => join(dir, `shard-${i}.db`));
    shards.forEach((db, i) => {
      const r = cli(['explore', ...ARGS, '--seeds', '1..90', '--jobs', '1', '--db', db], { env: { JOB_COMPLETION_INDEX: String(i), JOB_COMPLETIONS: '3' } });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`shard ${i}/3`));
    });
    const all = join(dir, 'all.db');
    const m = cliJson<any>(['merge', ...shards, '--into', all]);
    expect(m.inputs.map((i: any) => i.blocks).reduce((a: number, b: number) => a + b)).toBe(5);
    // the merged reproducers replay from the merged database
    const rp = m.campaigns[0].signatures.find((s: any) => s.class === 'stale-iotlb').repro;
    const rep = cli(rp.replay.split(' ').slice(2));
    expect(rep.code).toBe(0);
    expect(rep.stdout).toMatch(/stale-iotlb/);
    const want = exploreContents(one);
    expect(want.signatures.length).toBeGreaterThan(0);
    expect(exploreContents(two)).toEqual(want);
    expect(exploreContents(all)).toEqual(want);
  });

  it('a nondeterministic re-run stops explore with exit 5, both hashes and the first differing event', () => {
    const dir = tempDir();
    for (const jobs of ['1', '2']) {
      const db = join(dir, `nd-${jobs}.db`);
      const r = cli(['explore', ...ARGS, '--seeds', '1..20', '--jobs', jobs, '--verify-every', '5', '--selftest-nondeterminism', '--db', db]);
      expect(r.code).toBe(5);
      const m = /NONDETERMINISM: seed (\d+) gave trace hash ([0-9a-f]+) on one worker and ([0-9a-f]+) on another; first differing event #(\d+)/.exec(r.stderr);
      expect(m).not.toBeNull();
      expect(Number(m![1]) % 5).toBe(0);
      expect(m![2]).not.toBe(m![3]);
      expect(Number(m![4])).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/first run: \{.*\n\s+re-run: +\{/);
    }
    // without the self-test the same run verifies its re-runs and exits 0
    const ok = cli(['explore', ...ARGS, '--seeds', '1..20', '--jobs', '2', '--verify-every', '5', '--json', '--db', join(dir, 'ok.db')]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).run.verified).toBe(4);
  });

  it('the printed record command reproduces the reproducer run (same trace hash), the replay command verifies it', () => {
    const dir = tempDir();
    const db = join(dir, 'e.db');
    const r = cliJson<any>(['explore', ...ARGS, '--seeds', '1..20', '--db', db]);
    const s = r.signatures.find((x: any) => x.class === 'stale-iotlb');
    expect(s.repro.record).toMatch(/^npx dmareplay record /);
    const args = s.repro.record.split(' ').slice(2, -2); // drop "npx dmareplay" and "--db <explore db>"
    const rec = cliJson<any>([...args, '--db', join(dir, 'r.db')]);
    expect(rec.hash).toBe(s.repro.origHash);
    expect(rec.findings.map((f: any) => f.class)).toContain('stale-iotlb');
    const rep = cli(s.repro.replay.split(' ').slice(2));
    expect(rep.code).toBe(0);
    expect(rep.stdout).toMatch(/stale-iotlb/);
  });

  it('a killed shard leaves a database that merges what it finished', async () => {
    const dir = tempDir();
    const db = join(dir, 'killed.db');
    const child = spawn(process.execPath, [BIN, 'explore', ...ARGS, '--seeds', '1..1000000', '--jobs', '1', '--no-minimize', '--db', db], { stdio: 'ignore' });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    await waitForBlocks(db, 2, child);
    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode).toBe('SIGKILL');
    const all = join(dir, 'all.db');
    expect(cli(['merge', db, '--into', all]).code).toBe(0);
    const got = exploreContents(all);
    expect(got.blocks).toEqual(exploreContents(db).blocks);
    expect(got.blocks.length).toBeGreaterThanOrEqual(2);
    // what it stored is what those seeds give
    const first = got.blocks[0] as { lo: number; hi: number; runs: number; failing: number };
    const base = { workload: 'remap' as const, path: 'iommu' as const, ops: 8, ringNum: 256, faults: [{ kind: 'delay-invalidate' as const, arg: 1 }], variants: {}, packed: false, eventIdx: true, indirect: true };
    const res = runBlock({ campaign: { base, strategy: 'random', block: 20 }, lo: first.lo, hi: first.hi, verifyEvery: 0 });
    expect({ runs: first.runs, failing: first.failing }).toEqual({ runs: res.runs, failing: res.failing });
  });

  it('Ctrl-C stops cleanly: exit 130, every finished block saved and reported', async () => {
    const db = join(tempDir(), 'int.db');
    const child = spawn(process.execPath, [BIN, 'explore', ...ARGS, '--seeds', '1..1000000', '--jobs', '1', '--no-minimize', '--db', db, '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await waitForBlocks(db, 1, child);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const r = JSON.parse(stdout);
    expect(r.stopped).toBe('interrupted');
    expect(r.total.blocks).toBe(storedBlocks(db));
    expect(r.total.seeds).toBe(r.run.seeds);
  });

  it('bad input is a one-line usage error (exit 2) or input error (exit 1), and writes nothing', () => {
    const dir = tempDir();
    const db = join(dir, 'x.db');
    for (const args of [
      ['--seeds', '5..1'],
      ['--seeds', 'abc'],
      ['--shard', '4/4'],
      ['--strategy', 'dfs'],
      ['--sweep', 'skip-sync'],
      ['--seed', '3'],
      ['--time', 'soon'],
      ['--knob', 'passChains=0'],
      ['--pct-steps', '100'],
    ]) {
      const r = cli(['explore', ...args, '--db', db]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(existsSync(db)).toBe(false);
    expect(cli(['merge', db]).code).toBe(2);
    const plain = join(dir, 'plain.db');
    expect(cli(['record', '--seed', '1', '--db', plain]).code).toBe(0);
    const into = join(dir, 'into.db');
    const r = cli(['merge', plain, '--into', into]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no explore results/);
    expect(existsSync(into)).toBe(false);
  });
});
