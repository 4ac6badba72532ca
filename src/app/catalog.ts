// The bug catalog: each scenario's buggy and fixed traces live in traces/catalog/ as canonical
// JSONL. Running the catalog folds each stored trace through every checker (as an imported trace
// would be) and compares the finding classes with what the scenario expects; it also re-simulates
// each one from its header to say whether the stored trace still matches the model.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { chunksOf } from '../engine/chunks.js';
import { fold } from '../engine/replay.js';
import { JUDGE } from '../check/index.js';
import { JsonlError, parseJsonl, toJsonl } from '../events/jsonl.js';
import type { DmaEvent } from '../events/schema.js';
import { SCENARIOS, type Scenario } from '../sim/catalog.js';
import type { SimConfig } from '../sim/config.js';
import { Sim } from '../sim/sim.js';
import { ENGINE_VERSION } from '../store/recorder.js';

export interface CatalogResult {
  id: string;
  upstream: string;
  title: string;
  expected: string;
  found: string[];
  fixedFound: string[];
  ok: boolean;
  /** the stored traces are what the model produces today */
  current: boolean;
  events: { buggy: number; fixed: number };
}

/** traces/catalog/ of this installation (works from src/ under vitest and from dist/). */
export function catalogDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'traces'))) return join(dir, 'traces', 'catalog');
    dir = dirname(dir);
  }
  throw new InputError('cannot find traces/catalog next to this dmareplay installation');
}

export function simulate(config: SimConfig, seed: string): DmaEvent[] {
  const events: DmaEvent[] = [];
  new Sim(config, seed, { event: (e) => events.push({ ...e }) }).run();
  return events;
}

export function scenarioJsonl(s: Scenario, variant: 'buggy' | 'fixed'): string {
  return toJsonl(
    { engine: ENGINE_VERSION, name: `${s.id} ${variant}: ${s.title}`, source: 'sim', seed: s.seed, config: s[variant], complete: true },
    simulate(s[variant], s.seed),
  );
}

const fileOf = (dir: string, s: Scenario, v: 'buggy' | 'fixed') => join(dir, `${s.id}.${v}.jsonl`);

/** Writes every scenario's traces (npm run catalog:update). */
export function updateCatalog(dir = catalogDir()): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const s of SCENARIOS)
    for (const v of ['buggy', 'fixed'] as const) {
      writeFileSync(fileOf(dir, s, v), scenarioJsonl(s, v));
      written.push(fileOf(dir, s, v));
    }
  const readme = [
    '# The bug catalog',
    '',
    'Each real bug as a scenario: `ID.buggy.jsonl` runs the behaviour before the fix and must show the expected finding class;',
    '`ID.fixed.jsonl` runs the same workload, seed and fault with the fixed behaviour and must not. The traces are canonical',
    'JSONL exports (see the README, "Import and export"); `dmareplay catalog` folds them through every checker, and',
    '`npm run catalog:update` regenerates them from src/sim/catalog.ts after a model change.',
    '',
    '| id | upstream | what happens | expected |',
    '|---|---|---|---|',
    ...SCENARIOS.map((s) => `| ${s.id} | ${s.upstream.replace(/\|/g, '\\|')} | ${s.story} | \`${s.expected}\` |`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'README.md'), readme);
  written.push(join(dir, 'README.md'));
  return written;
}

function classesOf(text: string, file: string): { classes: string[]; events: number } {
  let parsed;
  try {
    parsed = parseJsonl(text);
  } catch (e) {
    if (e instanceof JsonlError) throw new InputError(`${file}: ${e.message}`);
    throw e;
  }
  const r = fold(chunksOf(parsed.events), JUDGE);
  const classes = [...new Set(r.findings.map((f) => f.cls))];
  return { classes, events: parsed.events.length };
}

export function runCatalog(dir = catalogDir(), only?: string[]): CatalogResult[] {
  const out: CatalogResult[] = [];
  for (const s of SCENARIOS) {
    if (only?.length && !only.includes(s.id)) continue;
    const text = { buggy: '', fixed: '' };
    for (const v of ['buggy', 'fixed'] as const) {
      const f = fileOf(dir, s, v);
      if (!existsSync(f)) throw new InputError(`catalog trace ${f} is missing (npm run catalog:update writes it)`);
      text[v] = readFileSync(f, 'utf8');
    }
    const buggy = classesOf(text.buggy, fileOf(dir, s, 'buggy'));
    const fixed = classesOf(text.fixed, fileOf(dir, s, 'fixed'));
    const current = text.buggy === scenarioJsonl(s, 'buggy') && text.fixed === scenarioJsonl(s, 'fixed');
    out.push({
      id: s.id,
      upstream: s.upstream,
      title: s.title,
      expected: s.expected,
      found: buggy.classes,
      fixedFound: fixed.classes,
      ok: buggy.classes.includes(s.expected) && !fixed.classes.includes(s.expected),
      current,
      events: { buggy: buggy.events, fixed: fixed.events },
    });
  }
  return out;
}
