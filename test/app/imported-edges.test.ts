// Imported traces at the edges of what the commands can do: bisect on real logs (no guest intents to
// pair operations by) is refused with one line; a QEMU log written without `-msg timestamp=on` imports
// alone in line order, and is refused with a guest log (no clock to merge by), naming that option.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson, tempDir } from '../helpers.js';

const FIX = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real');
const G7 = join(FIX, 'guest-vtd-lazy.p007-net-up.txt');
const H7 = join(FIX, 'qemu-vtd-lazy.p007-net-up.log');
const H5 = join(FIX, 'qemu-vtd-lazy.p005-blk-write-buffered.log');

let dir: string;
beforeAll(() => {
  dir = tempDir();
});

describe('bisect on imported traces', () => {
  it('two real runs: refused with one line naming why (exit 2), no crash, no "agree on all 0 operations"', () => {
    const db = join(dir, 'bisect.db');
    expect(cli(['import', '--guest', G7, '--host', H7, '--db', db]).code).toBe(0);
    expect(cli(['import', H5, '--db', db]).code).toBe(0);
    const r = cli(['bisect', '1', '2', '--db', db]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/trace 1 was imported from real logs.*no guest intents/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack
    expect(r.stdout).not.toMatch(/agree|divergence/);
  });

  it('a simulated trace against an imported one: refused the same way', () => {
    const db = join(dir, 'mixed.db');
    expect(cli(['record', '--ops', '10', '--db', db]).code).toBe(0);
    expect(cli(['import', H7, '--db', db]).code).toBe(0);
    const r = cli(['bisect', '1', '2', '--db', db]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/trace 2 was imported from real logs/);
  });
});

describe('a QEMU log without timestamps', () => {
  // the real log with the "TID@SEC.USEC:" prefix removed is exactly what QEMU writes without -msg timestamp=on
  const untimed = () => {
    const f = join(dir, 'untimed.log');
    writeFileSync(f, readFileSync(H7, 'utf8').replace(/^\d+@\d+\.\d+:/gm, ''));
    return f;
  };

  it('the stripped log really is the untimed form (every line "event args")', () => {
    const lines = readFileSync(untimed(), 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(600);
    expect(lines.every((l) => /^[a-z][a-z0-9_]* /.test(l) || /^[a-z][a-z0-9_]*$/.test(l))).toBe(true);
  });

  for (const how of [['auto', []], ['--format qemu-log', ['--format', 'qemu-log']], ['--host', null]] as const) {
    it(`alone, ${how[0]}: imported in line order, the same events as the timed log, and a note naming -msg timestamp=on`, () => {
      const f = untimed();
      const args = how[1] === null ? ['import', '--host', f] : ['import', f, ...how[1]];
      const r = cliJson([...args, '--db', join(dir, `untimed-${how[0].replace(/\W/g, '')}.db`)]);
      const timed = cliJson(['import', H7, '--db', join(dir, `timed-${how[0].replace(/\W/g, '')}.db`)]);
      expect(r.malformed).toBe(0);
      expect(r.byKind).toEqual(timed.byKind);
      expect(r.findings).toEqual(timed.findings);
      expect(r.notes.join(' ')).toMatch(/no timestamp .*-msg timestamp=on/);
    });
  }

  it('with a guest log: exit 1, one line naming -msg timestamp=on, nothing stored', () => {
    const db = join(dir, 'untimed-pair.db');
    const r = cli(['import', '--guest', G7, '--host', untimed(), '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/without timestamps.*-msg timestamp=on/);
    if (existsSync(db)) expect(cliJson(['traces', '--db', db])).toEqual([]);
  });

  it('--strict accepts it (no line is malformed)', () => {
    const r = cli(['import', untimed(), '--format', 'qemu-log', '--strict', '--db', join(dir, 'strict.db')]);
    expect(r.code, r.stderr).toBe(0);
  });
});
