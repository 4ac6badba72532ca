// import of real logs through the CLI: formats, --guest/--host, --json, malformed and truncated
// input, --strict, stats, and the JSONL round trip of an imported log.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson, tempDir } from '../helpers.js';

const FIX = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real');
const G7 = join(FIX, 'guest-vtd-lazy.p007-net-up.txt');
const H7 = join(FIX, 'qemu-vtd-lazy.p007-net-up.log');

let dir: string;
beforeAll(() => {
  dir = tempDir();
});

describe('import --guest --host', () => {
  it('--json prints {trace, events, byKind, unknown, malformed, findings} and the alignment', () => {
    const db = join(dir, 'pair.db');
    const r = cli(['import', '--guest', G7, '--host', H7, '--db', db, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no progress output when stderr is not a terminal
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(expect.arrayContaining(['trace', 'events', 'byKind', 'unknown', 'malformed', 'findings']));
    expect(j).toMatchObject({ trace: 1, format: 'guest+host', malformed: 0, findings: [], truncated: [] });
    expect(Object.values(j.byKind as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(j.events);
    expect(j.unknown).toBe(j.byKind.opaque);
    expect(j.unknownByEvent.vtd_ir_remap).toBe(33); // counted by event name, kept verbatim
    expect(j.alignment.boundaries).toEqual([{ n: 7, name: 'net-up' }]);
    expect(j.alignment.phases.map((p: { phase: number }) => p.phase)).toEqual([0, 1]);
    const opaque = cliJson(['log', '1', '--kind', 'opaque', '--db', db]) as { event: string; text: string }[];
    const line = readFileSync(H7, 'utf8').split('\n').find((l) => l.includes(':vtd_ir_remap '))!;
    expect(opaque.find((e) => e.event === 'vtd_ir_remap')!.text).toBe(line);
  });

  it('the human output states the alignment and its uncertainty', () => {
    const r = cli(['import', '--guest', G7, '--host', H7, '--db', join(dir, 'human.db')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/alignment: 1 shared markers \(7\)/);
    expect(r.stdout).toMatch(/phase {2}1 \(marker 7 net-up\): 341 guest, \d+ host events/);
    expect(r.stdout).toMatch(/cross-side order .* (estimate|corrected)/);
    expect(r.stdout).toMatch(/DMA mode: iommu-lazy/);
    expect(r.stdout).toMatch(/no findings/);
  });
});

describe('import FILE --format', () => {
  it('auto-detects a QEMU log and an ftrace file; --format forces one', () => {
    const db = join(dir, 'fmt.db');
    expect(cliJson(['import', H7, '--db', db]).format).toBe('qemu-log');
    expect(cliJson(['import', G7, '--db', db]).format).toBe('ftrace');
    expect(cliJson(['import', H7, '--format', 'qemu-log', '--db', db]).format).toBe('qemu-log');
    // the wrong format: every line is malformed for that parser, so nothing is imported (exit 1, one line)
    const before = cliJson(['traces', '--db', db]).length;
    const wrong = cli(['import', H7, '--format', 'ftrace', '--db', db]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toMatch(/no ftrace trace line in it \(671 lines, 671 malformed; line 1: /);
    expect(cliJson(['traces', '--db', db])).toHaveLength(before);
  });

  it('a file in no known format: exit 1, one line', () => {
    writeFileSync(join(dir, 'x.txt'), 'hello\nworld\n');
    const r = cli(['import', join(dir, 'x.txt'), '--db', join(dir, 'none.db')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dmareplay: cannot tell the format of .*x\.txt/);
  });

  it('usage errors exit 2; a missing file exits 1', () => {
    const db = join(dir, 'usage.db');
    expect(cli(['import', '--db', db]).code).toBe(2);
    expect(cli(['import', H7, '--guest', G7, '--db', db]).code).toBe(2);
    expect(cli(['import', H7, '--format', 'pcap', '--db', db]).code).toBe(2);
    const r = cli(['import', join(dir, 'missing.log'), '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dmareplay: cannot read .*missing\.log: no such file$/);
  });
});

describe('malformed and truncated logs', () => {
  let bad: string;
  let pop = -1;
  beforeAll(() => {
    const lines = readFileSync(H7, 'utf8').split('\n');
    lines.splice(100, 0, 'this is not a trace line');
    pop = lines.findIndex((l, i) => i > 100 && l.includes(':virtqueue_pop '));
    lines[pop] = lines[pop]!.replace(/in_num \d+/, 'in_num x'); // a known event whose args do not parse
    bad = join(dir, 'bad.log');
    writeFileSync(bad, lines.join('\n'));
  });

  it('are counted with their line numbers, and the rest is imported', () => {
    const j = cliJson(['import', bad, '--db', join(dir, 'bad.db')]);
    expect(j.malformed).toBe(2);
    expect(j.malformedLines.map((m: { line: number }) => m.line)).toEqual([101, pop + 1]);
    expect(j.malformedLines[1].reason).toMatch(/virtqueue_pop: args do not match/);
    expect(j.malformedLines[0].reason).toMatch(/not a QEMU log-backend trace line/);
    const good = cliJson(['import', H7, '--db', join(dir, 'good.db')]);
    expect(j.events).toBe(good.events - 1);
  });

  it('--strict: the first one is an error (exit 1, file and line), the database untouched', () => {
    const db = join(dir, 'strict.db');
    copyFileSync(join(dir, 'good.db'), db);
    const before = readFileSync(db);
    const r = cli(['import', bad, '--strict', '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dmareplay: .*bad\.log:101: malformed line \(--strict\): not a QEMU log-backend trace line/);
    expect(readFileSync(db).equals(before)).toBe(true);
    expect(cliJson(['traces', '--db', db])).toHaveLength(1);
  });

  it('mostly malformed in args only pass 2 reads (virtqueue_pop): refused with the whole file\'s counts, stored traces unchanged', () => {
    // the scan takes such lines for records (their args are checked once, while the trace is being
    // written in its one transaction): the refusal comes at the end and rolls it all back
    const lines = readFileSync(H7, 'utf8').split('\n').filter((l) => l !== '');
    const pop = lines.find((l) => l.includes(':virtqueue_pop '))!.replace(/in_num \d+/, 'in_num x');
    const many = join(dir, 'many.log');
    writeFileSync(many, [...lines, ...Array<string>(lines.length + 1).fill(pop)].join('\n') + '\n');
    const db = join(dir, 'many.db');
    copyFileSync(join(dir, 'good.db'), db);
    const before = cli(['log', '1', '--db', db]).stdout;
    const r = cli(['import', many, '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `dmareplay: ${many}: ${lines.length + 1} of ${2 * lines.length + 1} lines are malformed (is it a QEMU log?; line ${lines.length + 1}: virtqueue_pop: args do not match "vq %p elem %p in_num %u out_num %u"); nothing imported`,
    );
    expect(cliJson(['traces', '--db', db])).toHaveLength(1);
    expect(cli(['log', '1', '--db', db]).stdout).toBe(before);
  });

  it('a log cut mid-line imports up to the break and says so', () => {
    const text = readFileSync(H7, 'utf8');
    const cut = join(dir, 'cut.log');
    writeFileSync(cut, text.slice(0, text.indexOf('\n', 30_000) + 25));
    const j = cliJson(['import', cut, '--db', join(dir, 'cut.db')]);
    expect(j.truncated).toEqual([{ file: cut, reason: expect.stringMatching(/no newline: the log was cut off mid-line/) }]);
    expect(j.malformed).toBe(1);
    const human = cli(['import', cut, '--db', join(dir, 'cut.db')]);
    expect(human.stdout).toMatch(/truncated: .*cut\.log: .*imported up to the break/);
  });

  it('a guest trace with no RT-TRACE-END imports what is there and says it was cut off', () => {
    const j = cliJson(['import', join(FIX, 'guest-vtd-lazy.p005-blk-write-buffered.txt'), '--db', join(dir, 'g5.db')]);
    expect(j.truncated[0].reason).toMatch(/no RT-TRACE-END/);
    expect(j.byKind['iommu.map']).toBe(69);
  });
});

describe('stats, replay and export of an imported log', () => {
  let db: string;
  beforeAll(() => {
    db = join(dir, 'stats.db');
    cliJson(['import', '--guest', G7, '--host', H7, '--db', db]);
  });

  it('stats --json: counts by kind, IOMMU and translation counts, markers', () => {
    const s = cliJson(['stats', '1', '--db', db]);
    expect(s).toMatchObject({ trace: 1, source: 'import', complete: true });
    expect(s.iommu).toMatchObject({ maps: 298, unmaps: 42, translations: 163, invalidations: { domain: 4 } });
    expect(s.iommu.translationsByCache).toEqual({ hit: 115, miss: 48 });
    expect(s.iommu.translationsByDevice).toEqual({ '00:03.0': 163 });
    expect(s.markers.filter((m: { n: number }) => m.n === 7).map((m: { side: string }) => m.side)).toEqual(['guest', 'host']);
    const human = cli(['stats', '1', '--db', db]).stdout;
    expect(human).toMatch(/IOMMU: 298 maps .* 42 unmaps, 163 translations \(hit 115, miss 48\)/);
  });

  it('replay folds it and finds what import found', () => {
    expect(cliJson(['replay', '1', '--db', db])).toMatchObject({ mode: 'fold', ok: true, findings: [] });
  });

  it('export → import → export is byte-identical for an imported log too', () => {
    const a = cli(['export', '1', '--db', db]).stdout;
    expect(JSON.parse(a.split('\n')[0]!)).toMatchObject({ source: 'import', seed: null, config: { import: { format: 'guest+host', mode: 'iommu-lazy' } } });
    writeFileSync(join(dir, 'l.jsonl'), a);
    const db2 = join(dir, 'l.db');
    cliJson(['import', join(dir, 'l.jsonl'), '--db', db2]);
    expect(cli(['export', '1', '--db', db2]).stdout).toBe(a);
  });
});
