// lineBatches (src/import/lines.ts) splits input into lines itself, for speed; node:readline (which it
// replaced) is the reference: for any bytes in any chunking, the same lines, and the same verdict on
// the final newline.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lineBatches, newLineStreamState, readLines } from '../../src/import/lines.js';

async function viaReadline(chunks: (Buffer | string)[]): Promise<string[]> {
  const out: string[] = [];
  const rl = createInterface({ input: Readable.from(chunks, { objectMode: false }), crlfDelay: Infinity });
  for await (const line of rl) out.push(line);
  return out;
}

async function viaLineBatches(chunks: (Buffer | string)[]): Promise<{ lines: string[]; finalNewline: boolean; count: number }> {
  const state = newLineStreamState();
  const lines: string[] = [];
  for await (const b of lineBatches(Readable.from(chunks, { objectMode: false }), state)) lines.push(...b);
  return { lines, finalNewline: state.finalNewline, count: state.lines };
}

/** Bytes rich in what line splitting cares about: \r, \n, multi-byte and broken UTF-8. */
const piece = fc.oneof(
  fc.constantFrom('\n', '\r', '\r\n', '\n\r', 'a', 'é', '€', '😀', '\u2028', ' ', '8385@1.000001:vtd_x a'),
  fc.string({ maxLength: 6 }),
);
const bytesArb = fc.oneof(
  fc.array(piece, { maxLength: 40 }).map((p) => Buffer.from(p.join(''), 'utf8')),
  fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)),
  fc.array(fc.oneof(piece.map((s) => Buffer.from(s, 'utf8')), fc.uint8Array({ maxLength: 4 }).map((u) => Buffer.from(u))), { maxLength: 30 }).map((l) => Buffer.concat(l)),
);

/** `buf` cut at the given points (any byte offset, so inside a multi-byte character too). */
function chunked(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    if (c > from) out.push(buf.subarray(from, c));
    from = Math.max(from, c);
  }
  if (from < buf.length) out.push(buf.subarray(from));
  return out;
}

describe('lineBatches', () => {
  it('gives the lines readline gives, for any bytes in any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(bytesArb, fc.array(fc.nat(), { maxLength: 8 }), async (buf, cuts) => {
        const chunks = chunked(buf, cuts);
        const got = await viaLineBatches(chunks);
        expect(got.lines).toEqual(await viaReadline(chunks));
        expect(got.count).toBe(got.lines.length);
        expect(got.finalNewline).toBe(buf.length === 0 || buf[buf.length - 1] === 10);
      }),
      { numRuns: 600 },
    );
  });

  it('gives the lines readline gives for text streams too', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(piece, { maxLength: 8 }).map((p) => p.join('')), { maxLength: 8 }), async (strings) => {
        const chunks = strings.filter((s) => s.length > 0);
        expect((await viaLineBatches(chunks)).lines).toEqual(await viaReadline(chunks));
      }),
      { numRuns: 300 },
    );
  });

  it('splits \\r\\n across a chunk boundary once, and keeps a last line without newline', async () => {
    const got = await viaLineBatches([Buffer.from('a\r'), Buffer.from('\nb\r\rc')]);
    expect(got.lines).toEqual(['a', 'b', '', 'c']);
    expect(got.finalNewline).toBe(false);
  });

  it('throws the stream error of a missing file, and stops early on break', async () => {
    await expect(async () => {
      for await (const _ of readLines('/nonexistent/dmareplay/lines-test')) void _;
    }).rejects.toMatchObject({ code: 'ENOENT' });
    const first: string[] = [];
    for await (const l of readLines(Readable.from([Buffer.from('x\ny\nz\n')]))) {
      first.push(l);
      break;
    }
    expect(first).toEqual(['x']);
  });

  it('reads a file as readline reads it, across its 64 KiB reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dmareplay-lines-'));
    try {
      const file = join(dir, 'x.log');
      const check = async (buf: Buffer): Promise<void> => {
        writeFileSync(file, buf);
        const state = newLineStreamState();
        const lines: string[] = [];
        for await (const b of lineBatches(file, state)) lines.push(...b);
        expect(lines).toEqual(await viaReadline([buf]));
        expect(state.lines).toBe(lines.length);
        expect(state.done).toBe(true);
        expect(state.finalNewline).toBe(buf.length === 0 || buf[buf.length - 1] === 10);
      };
      // a \r\n, a 3-byte character and a 4-byte one split by each read boundary
      for (const tail of ['\r\nz\n', '€x\n', '😀\r', 'ab']) {
        const head = Buffer.from('l\n'.repeat(32767) + 'q'.repeat(65536 - 2 * 32767 - 1) + '\r', 'utf8');
        await check(Buffer.concat([head, Buffer.from(tail, 'utf8'), head, Buffer.from(tail, 'utf8')]));
        await check(Buffer.concat([head.subarray(0, 65535), Buffer.from(tail, 'utf8')]));
      }
      await fc.assert(
        fc.asyncProperty(bytesArb, async (buf) => check(buf)),
        { numRuns: 100 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
