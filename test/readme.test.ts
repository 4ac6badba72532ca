import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KIND_NAMES, KINDS } from '../src/events/schema.js';
import { FINDING_CLASSES } from '../src/check/index.js';
import { ROOT } from './helpers.js';

describe('README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  it('starts with the install-and-demo command and the test command', () => {
    const block = readme.split('```')[1]!.trim().split('\n');
    expect(block).toEqual(['npm ci && npx dmareplay demo', 'npm test']);
  });
  it('documents every event kind and finding class', () => {
    for (const k of KIND_NAMES) expect(readme).toContain('| `' + k + '` | ' + Object.keys(KINDS[k].fields).join(', ') + ' |');
    for (const c of FINDING_CLASSES) expect(readme).toContain('`' + c + '`');
  });
  it('shows the library test that npm test runs, verbatim', () => {
    const lib = readFileSync(join(ROOT, 'test', 'library.test.ts'), 'utf8');
    expect(readme).toContain('```ts\n' + lib + '```');
    expect(lib).toMatch(/from 'dmareplay'/);
  });
  it('.ci/run runs exactly the README test command after a clean install', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/\nnpm ci\nnpm test\n/);
  });
});
