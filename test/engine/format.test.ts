// Traces written by earlier versions still read: every stored catalog trace (canonical JSONL of
// schema 1, written before the pipeline, the rule table and the world codec existed) imports through
// the JSONL path, and is judged with the findings it was recorded with, numbered as recorded.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogDir } from '../../src/app/catalog.js';
import { importTrace } from '../../src/app/import.js';
import { SCHEMA_VERSION } from '../../src/events/schema.js';
import { tempDir } from '../helpers.js';

describe('old JSONL traces still import', () => {
  const dir = catalogDir();
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  const db = join(tempDir(), 'old.db');

  it('there are stored traces to read', () => expect(files.length).toBeGreaterThanOrEqual(26));

  for (const f of files)
    it(`${f}`, async () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const header = JSON.parse(text.slice(0, text.indexOf('\n'))) as { schema: number };
      expect(header.schema).toBeLessThanOrEqual(SCHEMA_VERSION);
      const recorded = text
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => JSON.parse(l) as { seq: number; kind: string; cls?: string })
        .filter((e) => e.kind === 'finding')
        .map((e) => [e.cls, e.seq]);
      const r = await importTrace({ db, file: join(dir, f) });
      expect(r.format).toBe('jsonl');
      expect(r.events).toBe(text.trim().split('\n').length - 1);
      expect(r.findings.map((x) => [x.class, x.seq])).toEqual(recorded);
    });
});
