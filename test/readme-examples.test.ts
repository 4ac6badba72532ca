// Every README example is run and its output compared, so the README cannot drift from the
// program. An example is a fenced block whose first line starts with `$ npx dmareplay`; in it each
// `$ ` line is a command and the lines up to the next `$ ` line are what it prints (stdout and
// stderr, in order), followed by `[exit N]` when it exits non-zero. The blocks run in README order in
// one fresh directory (so the database is ./dmareplay.db, as for a newcomer after `npm ci`), with
// `npx dmareplay` standing for this checkout's bin/dmareplay.js.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, tempDir } from './helpers.js';

interface Example {
  block: number;
  cmd: string;
  expected: string;
}

export function readmeExamples(readme: string): Example[] {
  const out: { block: number; cmd: string; lines: string[] }[] = [];
  const blocks = [...readme.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  blocks.forEach((b, block) => {
    const lines = b.replace(/\n$/, '').split('\n');
    if (!lines[0]!.startsWith('$ npx dmareplay')) return;
    for (const l of lines) {
      if (l.startsWith('$ ')) out.push({ block, cmd: l.slice(2), lines: [] });
      else out.at(-1)!.lines.push(l);
    }
  });
  return out.map(({ block, cmd, lines }) => ({ block, cmd, expected: lines.join('\n') }));
}

function run(cmd: string, cwd: string): string {
  if (!cmd.startsWith('npx dmareplay')) throw new Error(`not a dmareplay command: ${cmd}`);
  const line = `node ${JSON.stringify(BIN)}${cmd.slice('npx dmareplay'.length)}`;
  const env: Record<string, string> = { ...process.env, NO_COLOR: '1', NO_PROGRESS: '1' } as Record<string, string>;
  delete env.DMAREPLAY_DB;
  const r = spawnSync('bash', ['-c', `{ ${line} ; } 2>&1`], { cwd, env, encoding: 'utf8' });
  const text = r.stdout.replace(/\n$/, '');
  return r.status ? `${text}${text ? '\n' : ''}[exit ${r.status}]` : text;
}

describe('README examples', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const examples = readmeExamples(readme);

  it('the parser finds the examples (command lines with their output)', () => {
    expect(examples.length).toBeGreaterThanOrEqual(10);
    expect(examples[0]!.cmd).toBe('npx dmareplay demo');
    expect(examples[0]!.expected).toMatch(/^dmareplay demo: /);
    expect(readmeExamples('```\n$ npx dmareplay a\nx\ny\n$ npx dmareplay b\n```\n\n```\nnpx dmareplay c\n```\n')).toEqual([
      { block: 0, cmd: 'npx dmareplay a', expected: 'x\ny' },
      { block: 0, cmd: 'npx dmareplay b', expected: '' },
    ]);
  });

  it('every example prints exactly what the README shows', () => {
    const cwd = tempDir();
    // the scenario examples name files of the repository (examples/), as a newcomer in the checkout would
    cpSync(join(ROOT, 'examples'), join(cwd, 'examples'), { recursive: true });
    for (const e of examples) expect(run(e.cmd, cwd), `$ ${e.cmd}`).toBe(e.expected);
    // and the two commands from the demo to a timeline and a report left their files
    expect(existsSync(join(cwd, 'race.json'))).toBe(true);
    expect(existsSync(join(cwd, 'race.html'))).toBe(true);
  });

  it('the record command lines the demo prints give the same traces (same hash): nothing hidden', () => {
    const cwd = tempDir();
    const demo = JSON.parse(run('npx dmareplay demo --json', cwd)) as { race: { hash: string }; prompt: { hash: string }; direct: { hash: string }; commands: Record<string, string> };
    for (const k of ['race', 'prompt', 'direct'] as const) {
      const again = JSON.parse(run(`${demo.commands[k]} --json`, cwd)) as { hash: string };
      expect(again.hash, demo.commands[k]).toBe(demo[k].hash);
    }
    expect(demo.commands.race).toContain('--fault delay-invalidate=1');
    expect(demo.commands.prompt).not.toContain('--fault');
  });
});
