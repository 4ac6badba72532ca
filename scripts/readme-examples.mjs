#!/usr/bin/env node
// Rewrites the output of every README example block (a fenced block whose first line starts with
// `$ npx dmareplay`) with what the program prints now: the blocks run in README order in a fresh
// directory, as test/readme-examples.test.ts runs them (stdout and stderr in order, `[exit N]` for a
// non-zero exit). Run it (npm run readme:update) after changing what a command prints, then read
// the diff: the test only says that the README and the program disagree, this says how.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'dmareplay.js');
const cwd = mkdtempSync(join(tmpdir(), 'dmareplay-readme-'));
// as the test does: the scenario examples name files of the repository (examples/)
cpSync(join(ROOT, 'examples'), join(cwd, 'examples'), { recursive: true });

function run(cmd) {
  const line = `node ${JSON.stringify(BIN)}${cmd.slice('npx dmareplay'.length)}`;
  const env = { ...process.env, NO_COLOR: '1', NO_PROGRESS: '1' };
  delete env.DMAREPLAY_DB;
  const r = spawnSync('bash', ['-c', `{ ${line} ; } 2>&1`], { cwd, env, encoding: 'utf8' });
  const text = r.stdout.replace(/\n$/, '');
  return r.status ? `${text}${text ? '\n' : ''}[exit ${r.status}]` : text;
}

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const updated = readme.replace(/^```\n(\$ npx dmareplay[\s\S]*?)^```$/gm, (_m, body) => {
  const out = [];
  for (const l of body.replace(/\n$/, '').split('\n')) {
    if (!l.startsWith('$ ')) continue;
    out.push(l);
    const o = run(l.slice(2));
    if (o) out.push(o);
  }
  return '```\n' + out.join('\n') + '\n```';
});
writeFileSync(join(ROOT, 'README.md'), updated);
process.stdout.write(updated === readme ? 'README examples are up to date\n' : 'README examples rewritten: review git diff README.md\n');
