// kill -9 at random instants of record and import: every database left behind opens, and every trace
// in it replays its stored prefix (a recording killed mid-run is incomplete and verifies what it
// committed; an import is one transaction: all there, or not there). KILL_POINTS sets how many
// instants (CI: 12; the run: 100), KILL_SEED which ones.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayTrace } from '../../src/app/replay.js';
import { listTraces, openDb } from '../../src/store/db.js';
import { rng } from '../fuzz/mutate.js';
import { BIN, ROOT, cliJson, tempDir } from '../helpers.js';

const POINTS = Number(process.env.KILL_POINTS ?? 10);
const SEED = Number(process.env.KILL_SEED ?? 9);

function run(args: string[]): { done: Promise<number | null>; kill: () => void; started: number } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
  const done = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { done, kill: () => child.kill('SIGKILL'), started: Date.now() };
}

/** Every trace of the database replays (re-execution or fold) its stored prefix; returns [traces, incomplete]. */
function verify(db: string): [number, number] {
  if (!existsSync(db)) return [0, 0]; // killed before the file was made
  const h = openDb(db); // opens: schema complete, versions fine
  const traces = listTraces(h);
  h.close();
  let incomplete = 0;
  for (const t of traces) {
    const r = replayTrace(db, String(t.id));
    expect(r.ok, `trace ${t.id} of ${db}`).toBe(true);
    expect(r.events).toBe(t.events);
    if (!t.complete) incomplete++;
    if (t.source === 'import') expect(t.complete).toBe(1); // one transaction: never half there
  }
  return [traces.length, incomplete];
}

describe('kill -9 at random instants', () => {
  it(`${POINTS} kills of record and import (seed ${SEED}): every database opens and replays its prefix`, async () => {
    const dir = tempDir();
    const r = rng(SEED);
    const jsonl = join(ROOT, 'traces', 'catalog', 'R1.buggy.jsonl');
    const log = join(ROOT, 'traces', 'real', 'qemu-vtd-lazy.p005-blk-write-buffered.log');
    const commands = (p: number, db: string): string[][] => [
      ['record', '--ops', '400', '--seed', String(p), '--checkpoint-every', '2000', '--db', db],
      ['import', jsonl, '--checkpoint-every', '64', '--db', db],
      ['import', '--format', 'qemu-log', log, '--db', db],
    ];
    // how long each undisturbed command takes (process start included), to spread the kills over it
    const span = commands(0, join(dir, 'timing.db')).map((args) => {
      const t0 = Date.now();
      cliJson(args);
      return Math.max(100, Date.now() - t0);
    });
    let killed = 0;
    let dbs = 0;
    let traces = 0;
    let incomplete = 0;
    for (let p = 0; p < POINTS; p++) {
      const db = join(dir, `k${p}.db`);
      // a third of the points start from a database that already holds a trace: it must survive
      if (p % 3 === 2) cliJson(['import', jsonl, '--db', db]);
      const what = p % 4 === 3 ? 0 : p % 4; // half the points record
      const args = commands(p, db)[what]!;
      const c = run(args);
      const at = Math.floor(r() * span[what]!);
      await new Promise((res) => setTimeout(res, at));
      c.kill();
      const code = await c.done;
      if (code === null) killed++;
      const [n, inc] = verify(db);
      traces += n;
      incomplete += inc;
      if (p % 3 === 2) expect(n).toBeGreaterThanOrEqual(1);
      if (existsSync(db)) dbs++;
    }
    const summary = { points: POINTS, killedMidRun: killed, databases: dbs, traces, incompleteTraces: incomplete, allOpenedAndReplayed: true };
    writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary));
    console.log(`kill -9: ${JSON.stringify(summary)}`);
    expect(killed).toBeGreaterThan(0);
  });
});
