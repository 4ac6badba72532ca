// Pass 1 of a QEMU log import only peeks at most lines (peekQemuLogLine: an opaque line's event name
// and time, no record) and, for a host log alone, leaves the args of events the scan does not read to
// pass 2 (scanHost deferArgs). Both must be invisible in the result: a peeked line is a record exactly
// when the full parser says so, and a deferred scan ends (after pass 2) with the full scan's counts.
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { hostEvents } from '../../src/import/merge.js';
import { parseQemuLogLine, peekQemuLogLine, readQemuLogBatches } from '../../src/import/qemu-log.js';
import { finishHostScan, mergeHostScanParts, SCAN_UNREAD, scanHost, scanHostPart } from '../../src/import/to-events.js';
import { runLines, runLog, runLogs } from './real-runs.js';

const LINES = runLines(20);
const insert = fc.constantFrom('0', '9', 'a', 'g', 'x', '0x', ' ', ':', '.', '@', '_', '\r', '\u2028', 'é', '(nil)', 'ffffffffffffffff1', '99999999999');
const mutated = fc
  .tuple(fc.nat({ max: LINES.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), insert), { maxLength: 3 }))
  .map(([i, muts]) => muts.reduce((l, [at, del, ins]) => l.slice(0, at % (l.length + 1)) + ins + l.slice((at % (l.length + 1)) + del), LINES[i]!));

/** peekQemuLogLine's answer against parseQemuLogLine's for one line. */
function agree(l: string, unread: ReadonlySet<string> | null): void {
  const full = parseQemuLogLine(l, 7);
  const p = peekQemuLogLine(l, 7, unread);
  if (p === null || p.kind !== 'peek') {
    expect(p).toEqual(full);
    return;
  }
  const deferred = unread !== null && unread.has(p.event);
  expect(full).not.toBeNull();
  if (full!.kind === 'malformed') {
    // only a deferred event's args may be wrong behind a peek
    expect(deferred).toBe(true);
    expect(full!.malformed.startsWith(`${p.event}: `)).toBe(true);
    return;
  }
  expect(full!.kind === 'opaque' || deferred).toBe(true);
  expect({ line: p.line, event: p.event, t: p.t }).toEqual({ line: full!.line, event: full!.event, t: Number(full!.tUs) });
}

describe('pass 1 peeks', () => {
  it('a real line peeked at is the record the parser makes, with or without deferred args', () => {
    expect(LINES.length).toBeGreaterThan(500);
    for (const l of LINES) {
      agree(l, null);
      agree(l, SCAN_UNREAD);
    }
  });

  it('mutated real lines: a peek only where the parser makes an opaque record (or a deferred event)', () => {
    fc.assert(
      fc.property(mutated, fc.boolean(), (l, defer) => agree(l, defer ? SCAN_UNREAD : null)),
      { numRuns: 20000 },
    );
  });
});

describe('plain batches (no line terminator read: the parser does not look for one)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dmareplay-plain-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a file read in batches parses line by line as parseQemuLogLine does, terminators or not', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.constantFrom(...LINES), mutated), { minLength: 1, maxLength: 3000 }), async (lines) => {
        const file = join(dir, 'p.log');
        const text = lines.join('\n') + '\n';
        writeFileSync(file, text);
        const got: unknown[] = [];
        for await (const b of readQemuLogBatches(file)) for (const it of b) if (it.kind !== 'end-of-input') got.push(it);
        // readline's line ends (src/import/lines.ts)
        const want = text.slice(0, -1).split(/\r?\n|\r(?!\n)/).map((l, i) => parseQemuLogLine(l, i + 1)).filter((x) => x !== null);
        expect(got).toEqual(want);
      }),
      { numRuns: 40 },
    );
  });
});

describe('a deferred host scan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dmareplay-scan-peek-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ends pass 2 with the full scan\'s records, malformed count and lines, whatever lines are damaged', async () => {
    const run = runLog('qemu-vtd-cm.log.br').toString('utf8').split('\n').slice(0, 4000);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: run.length - 1 }), fc.nat(), insert), { maxLength: 12 }), fc.boolean(), async (muts, cut) => {
        const lines = [...run];
        for (const [i, at, ins] of muts) lines[i] = lines[i]!.slice(0, at % (lines[i]!.length + 1)) + ins + lines[i]!.slice(at % (lines[i]!.length + 1));
        const file = join(dir, 'log.log');
        const text = lines.join('\n');
        writeFileSync(file, cut ? text.slice(0, -5) : text);
        const full = await scanHost(file, { xlate: false });
        const scan = await scanHost(file, { xlate: false, deferArgs: true });
        expect(scan.deferred).toBe(true);
        expect(scan.malformed).toBeLessThanOrEqual(full.malformed);
        for await (const _ of hostEvents(scan, [])) void _;
        expect(scan.deferred).toBe(false);
        expect({ records: scan.records, malformed: scan.malformed, lines: scan.lines, malformedLines: scan.malformedLines, truncated: scan.truncated }).toEqual({
          records: full.records,
          malformed: full.malformed,
          lines: full.lines,
          malformedLines: full.malformedLines,
          truncated: full.truncated,
        });
        const { malformedLines: _a, records: _b, malformed: _c, deferred: _d, events: _e, firstT: _f, lastT: _g, firstLine: _h, ...rest } = scan;
        const { malformedLines: _i, records: _j, malformed: _k, deferred: _l, events: _m, firstT: _n, lastT: _o, firstLine: _p, ...fullRest } = full;
        expect(rest).toEqual(fullRest);
      }),
      { numRuns: 60 },
    );
  });

  it('SCAN_UNREAD names only events the scan does not read: on every real QEMU log, deferred equals full', async () => {
    // a kind in SCAN_UNREAD that the scan's switch does read would reach it without args, and the
    // deferred scan would end with other devices, counts or samples than the full one
    const logs = runLogs();
    expect(logs.length).toBeGreaterThanOrEqual(3);
    for (const f of logs) {
      const file = join(dir, f.replace(/\.br$/, ''));
      writeFileSync(file, runLog(f));
      const full = await scanHost(file, { xlate: false });
      const scan = await scanHost(file, { xlate: false, deferArgs: true });
      for await (const _ of hostEvents(scan, [])) void _;
      const { deferred: _d, events: _e, ...rest } = scan;
      const { deferred: _l, events: _m, ...fullRest } = full;
      expect(rest, f).toEqual(fullRest);
      expect([...scan.events.keys()].sort(), f).toEqual([...full.events.keys()].sort());
    }
  });

  it('scanned in two byte ranges split after a line end (scan-worker.ts) and merged, is the one scan of the file', async () => {
    const run = runLog('qemu-vtd-cm.log.br').toString('utf8').split('\n').slice(0, 3000);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: run.length - 1 }), fc.nat(), insert), { maxLength: 12 }), fc.nat({ max: run.length - 2 }), fc.boolean(), async (muts, at, cut) => {
        const lines = [...run];
        for (const [i, p, ins] of muts) lines[i] = lines[i]!.slice(0, p % (lines[i]!.length + 1)) + ins + lines[i]!.slice(p % (lines[i]!.length + 1));
        const file = join(dir, 'split.log');
        const text = lines.join('\n');
        const bytes = Buffer.from(cut ? text.slice(0, -5) : text);
        writeFileSync(file, bytes);
        // the first line end at or after a byte offset, as scanHostSplit picks it
        const start = bytes.indexOf(10, Math.floor((at / run.length) * bytes.length)) + 1;
        if (start <= 0 || start >= bytes.length) return;
        const opts = { xlate: false, deferArgs: true };
        const full = await scanHost(file, opts);
        const a = await scanHostPart(createReadStream(file, { end: start - 1 }), file, opts, SCAN_UNREAD);
        const b = await scanHostPart(createReadStream(file, { start }), file, opts, SCAN_UNREAD);
        if (b.s.untimed > 0) return; // not split: an untimed line's time is its line number
        expect(finishHostScan(mergeHostScanParts(a, b))).toEqual(full);
      }),
      { numRuns: 60 },
    );
  });
});
