// Mutated real inputs for the fuzz tests (fuzz.test.ts) and the longer fuzz runs (run.ts): the
// catalog's JSONL traces, the QEMU logs and guest ftrace excerpts of traces/real, each changed by one
// operator chosen from a seed. Two families of operators:
// - targeted ones produce input that is malformed or impossible on its face (a 64-bit field of 2^64,
//   an event that is its own cause, a map wrapping past 2^64, a PCI id of 2^16, ...), and say what
//   the importer must do with it: refuse it ('reject') or count a malformed line ('malformed');
// - blind ones (bit flips, truncation, swapped/duplicated/garbage lines, huge numbers) have no
//   expected outcome beyond "a typed error or a good import, in bounded time".
// Everything is a pure function of (source, seed): a failure is reproduced from the two.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fieldsOf, KINDS, type Kind } from '../../src/events/schema.js';

export type Format = 'jsonl' | 'ftrace' | 'qemu-log';

export interface Source {
  name: string;
  format: Format;
  text: string;
}

export interface Mutant {
  source: string;
  format: Format;
  op: string;
  text: string | Buffer;
  /**
   * reject: the import must fail with a typed error; malformed: it must fail, or count more
   * malformed lines than the unmutated source; accept: it must succeed; any: no expectation.
   */
  expect: 'reject' | 'malformed' | 'accept' | 'any';
}

/** The inputs mutated: every catalog trace and every real excerpt in the repository. */
export function loadCorpus(root: string): Source[] {
  const out: Source[] = [];
  const cat = join(root, 'traces', 'catalog');
  for (const f of readdirSync(cat).sort()) if (f.endsWith('.jsonl')) out.push({ name: `catalog/${f}`, format: 'jsonl', text: readFileSync(join(cat, f), 'utf8') });
  const real = join(root, 'traces', 'real');
  for (const f of readdirSync(real).sort()) {
    if (f.startsWith('qemu-') && f.endsWith('.log')) out.push({ name: `real/${f}`, format: 'qemu-log', text: readFileSync(join(real, f), 'utf8') });
    if (f.startsWith('guest-') && f.endsWith('.txt')) out.push({ name: `real/${f}`, format: 'ftrace', text: readFileSync(join(real, f), 'utf8') });
  }
  return out;
}

/** The other side of the same run (guest ftrace ↔ QEMU log), by the run's name and part, if the corpus has it. */
export function partnerOf(src: Source, corpus: Source[]): Source | undefined {
  if (src.format === 'jsonl') return undefined;
  const key = (s: Source) => s.name.replace(/^real\/(guest|qemu)-/, '').split('.').slice(0, 2).join('.').replace(/\.(txt|log)$/, '');
  const run = (s: Source) => key(s).split('.')[0];
  const other = corpus.filter((s) => s.format !== 'jsonl' && s.format !== src.format && run(s) === run(src));
  return other.find((s) => key(s) === key(src)) ?? (other.length === 1 ? other[0] : undefined);
}

/** mulberry32: a small, fast, seeded PRNG (the fuzz runs must be reproducible from their seed). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type R = () => number;
const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: R, n: number): number => Math.floor(r() * n);

function splitLines(text: string): string[] {
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}
const joinLines = (l: string[]): string => l.join('\n') + '\n';

// --- blind operators: any format ------------------------------------------------------------------

const GARBAGE = ['\0\0\0', '\x1b[2J\x1b[H', '\u202e\u2066evil', '\ufffd\ud800', '{"', '[[[[[[[[', '}}}}', 'null', '\r\r\r', ' '.repeat(200), '\x7f\x80\x9f'];

function blind(r: R, text: string): { op: string; text: string | Buffer } {
  const lines = splitLines(text);
  const i = int(r, Math.max(1, lines.length));
  switch (int(r, 11)) {
    case 0: {
      const b = Buffer.from(text);
      for (let k = 1 + int(r, 8); k > 0 && b.length > 0; k--) {
        const at = int(r, b.length);
        b[at] = b[at]! ^ (1 << int(r, 8));
      }
      return { op: 'bit-flips', text: b };
    }
    case 1:
      return { op: 'truncate', text: text.slice(0, int(r, text.length)) };
    case 2:
      lines.splice(i, 1);
      return { op: 'delete-line', text: joinLines(lines) };
    case 3:
      lines.splice(i, 0, lines[i] ?? '');
      return { op: 'duplicate-line', text: joinLines(lines) };
    case 4: {
      const j = int(r, lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return { op: 'swap-lines', text: joinLines(lines) };
    }
    case 5:
      lines.splice(i, 0, pick(r, GARBAGE) + (r() < 0.5 ? (lines[i] ?? '') : ''));
      return { op: 'garbage-line', text: joinLines(lines) };
    case 6: {
      // a number in the line made huge, negative or hex-huge
      const l = lines[i] ?? '';
      const nums = [...l.matchAll(/0x[0-9a-fA-F]+|\d+/g)];
      if (!nums.length) return { op: 'huge-number(none)', text };
      const m = pick(r, nums);
      const v = pick(r, ['99999999999999999999999999', '-1', '0x' + 'f'.repeat(22), '18446744073709551616', '0x10000000000000000', '1e308', '0']);
      lines[i] = l.slice(0, m.index) + v + l.slice(m.index! + m[0].length);
      return { op: 'huge-number', text: joinLines(lines) };
    }
    case 7:
      return { op: 'binary', text: Buffer.from(Array.from({ length: 64 + int(r, 4000) }, () => int(r, 256))) };
    case 8:
      return { op: 'empty', text: r() < 0.5 ? '' : '\n\n\n' };
    case 9: {
      const l = lines[i] ?? '';
      lines[i] = l.slice(0, int(r, l.length + 1)) + pick(r, GARBAGE) + l.slice(int(r, l.length + 1));
      return { op: 'garbage-in-line', text: joinLines(lines) };
    }
    default:
      return { op: 'crlf', text: lines.join('\r\n') + '\r\n' };
  }
}

// --- targeted operators: JSONL ----------------------------------------------------------------------

type Obj = Record<string, unknown>;

/** events of the trace that have a field, as [line index, parsed object] */
function withField(lines: string[], f: string, kinds?: readonly string[]): [number, Obj][] {
  const out: [number, Obj][] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i]!.includes(`"${f}"`)) continue;
    const o = JSON.parse(lines[i]!) as Obj;
    if (f in o && (!kinds || kinds.includes(o.kind as string))) out.push([i, o]);
  }
  return out;
}


function jsonlTargeted(r: R, text: string): { op: string; text: string; expect: Mutant['expect'] } | null {
  const lines = splitLines(text);
  const edit = (i: number, o: Obj, op: string, expect: Mutant['expect'] = 'reject') => {
    lines[i] = JSON.stringify(o);
    return { op, text: joinLines(lines), expect };
  };
  const one = (f: string, kinds?: readonly string[]) => {
    const c = withField(lines, f, kinds);
    return c.length ? pick(r, c) : null;
  };
  switch (int(r, 18)) {
    case 0:
    case 1: {
      // a field that is 64-bit in its kind's schema: made 2^64 or more, or given another type
      const cands = lines.map((l, i) => [i, l] as const).filter(([i]) => i > 0);
      const [i, l] = pick(r, cands);
      const o = JSON.parse(l) as Obj;
      const u64 = Object.hasOwn(KINDS, o.kind as string) ? fieldsOf(o.kind as Kind).filter(([, spec]) => spec === 'u64').map(([n]) => n) : [];
      if (!u64.length) return null;
      const f = pick(r, u64);
      const tooBig = r() < 0.5;
      o[f] = tooBig ? pick(r, ['0x10000000000000000', '0x' + 'f'.repeat(22)]) : pick(r, [12345, -1, true, null, ['0x1'], { v: 1 }, '0xg1', '', '4096']);
      return edit(i, o, tooBig ? 'u64-too-big' : 'u64-wrong-type');
    }
    case 2: {
      const i = 1 + int(r, lines.length - 1);
      const o = JSON.parse(lines[i]!) as Obj;
      o.kind = pick(r, ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'bogus.kind', '', 42]);
      return edit(i, o, 'unknown-kind');
    }
    case 3: {
      const i = 2 + int(r, lines.length - 2);
      if (i >= lines.length) return null;
      const o = JSON.parse(lines[i]!) as Obj;
      o.cause = r() < 0.5 ? o.seq : (o.seq as number) + 1 + int(r, 5);
      return edit(i, o, 'cause-self-or-future');
    }
    case 4: {
      const c = one('dev', ['iommu.map', 'iommu.unmap', 'dma.map', 'dma.unmap', 'iotlb.update', 'iotlb.miss', 'cpu.read', 'dev.teardown', 'vring.setup']);
      if (!c) return null;
      c[1].dev = 0x77;
      return edit(c[0], c[1], 'unknown-device');
    }
    case 5: {
      const c = one('q', ['dev.access', 'vring.post', 'vring.used', 'vring.kick', 'vring.getbuf', 'dev.pass']);
      if (!c) return null;
      c[1].q = 200;
      return edit(c[0], c[1], 'unknown-queue');
    }
    case 6: {
      const c = one('size', ['iommu.map', 'mem.table', 'iommu.unmap']);
      if (!c) return null;
      c[1].size = '0x0';
      return edit(c[0], c[1], 'zero-size');
    }
    case 7: {
      const c = one('iova', ['iommu.map', 'iommu.unmap', 'iotlb.update']) ?? one('gpa', ['mem.write']);
      if (!c) return null;
      if ('iova' in c[1]) {
        c[1].iova = '0xfffffffffffff000';
        c[1].size = '0x2000';
      } else c[1].gpa = '0xffffffffffffffff';
      return edit(c[0], c[1], 'wraps-past-2^64');
    }
    case 8: {
      const c = one('num', ['vring.setup']);
      if (!c) return null;
      c[1].num = pick(r, [0, 3, 100, 40000]);
      return edit(c[0], c[1], 'bad-ring-size');
    }
    case 9: {
      const c = one('variants', ['trace.config']);
      if (!c) return null;
      c[1].variants = pick(r, ['{bad', '[1,2]', '{"wakeRule":"sideways"}', '{"noSuchVariant":1}', '"x"']);
      return edit(c[0], c[1], 'bad-variants');
    }
    case 10: {
      const c = one('len', ['dev.access']);
      if (!c) return null;
      c[1].len = 0xffffffff;
      return edit(c[0], c[1], 'absurd-access-length');
    }
    case 11: {
      // built as text: JSON.stringify itself would overflow the stack on 100000 levels
      const n = 40 + int(r, 100000);
      lines[0] = lines[0]!.replace('"config":', `"config":${'['.repeat(n)}1${']'.repeat(n)},"config0":`);
      return { op: 'deep-nesting', text: joinLines(lines), expect: 'reject' };
    }
    case 12: {
      const i = 1 + int(r, lines.length - 1);
      const o = JSON.parse(lines[i]!) as Obj;
      o[pick(r, ['extra', 'Iova', 'sizee'])] = '0x1';
      return edit(i, o, 'unknown-field');
    }
    case 13: {
      const h = JSON.parse(lines[0]!) as Obj;
      h.events = (h.events as number) + 1 + int(r, 3);
      lines[0] = JSON.stringify(h);
      return { op: 'event-count', text: joinLines(lines), expect: 'reject' };
    }
    case 14: {
      const c = one('chain', ['finding']);
      if (!c) return null;
      c[1].chain = [...(c[1].chain as number[]), (c[1].seq as number) + int(r, 3)];
      return edit(c[0], c[1], 'chain-to-the-future');
    }
    case 15: {
      const h = JSON.parse(lines[0]!) as Obj;
      if (r() < 0.5) h.schema = 2 + int(r, 50);
      else h.engine = `${1 + int(r, 9)}.0.0`;
      lines[0] = JSON.stringify(h);
      return { op: 'newer-version', text: joinLines(lines), expect: 'reject' };
    }
    case 16:
      // a byte order mark changes nothing
      return { op: 'utf8-bom', text: '\ufeff' + text, expect: 'accept' };
    default: {
      const c = one('data', ['mem.write', 'dev.access']);
      if (!c) return null;
      // rarely a line past the length limit; mostly an odd-length or non-hex data string
      c[1].data = r() < 0.02 ? '00'.repeat((8 << 20) + 16) : pick(r, ['0', 'zz', '0x00', 'ab'.repeat(3) + 'g']);
      return edit(c[0], c[1], 'bad-data');
    }
  }
}

// --- targeted operators: QEMU log and ftrace lines ---------------------------------------------------

/** one line matching re, with a field replaced: the line must become malformed */
function lineTargeted(r: R, text: string, format: Format): { op: string; text: string; expect: Mutant['expect'] } | null {
  const lines = splitLines(text);
  const rules: [RegExp, RegExp, string[], string][] =
    format === 'qemu-log'
      ? [
          [/vtd_iotlb_page_(hit|update)|vtd_dmar_fault/, /sid 0x[0-9a-f]+/, ['sid 0x10000', 'sid 0x10000000000000000', 'sid -1'], 'pci-id-out-of-range'],
          [/vtd_iotlb_page_(hit|update)/, /domain 0x[0-9a-f]+/, ['domain -1', 'domain -0x5'], 'negative-domain'],
          [/vtd_iotlb_page_(hit|update)|vtd_dmar_translate|vtd_dmar_fault/, /(iova|addr) 0x[0-9a-f]+/, ['iova 0x' + '1' + '0'.repeat(22), 'addr 0x' + 'f'.repeat(22)], 'address-2^88'],
          [/@\d+\.\d+:/, /@\d+\./, ['@99999999999999999999999.'], 'timestamp-2^64'],
        ]
      : [
          [/ (map|unmap): /, /size=\d+/, ['size=99999999999999999999999999', 'size=18446744073709551616'], 'size-past-2^64'],
          [/ (map|unmap): /, /iova=0x[0-9a-f]+/, ['iova=0x' + '1' + '0'.repeat(22), 'iova=0xffffffffffffffff'], 'address-2^88-or-wrap'],
          [/swiotlb_bounced/, /dev_addr=[0-9a-f]+/, ['dev_addr=' + 'f'.repeat(22)], 'address-2^88'],
          [/ map: .*size=[1-9]/, /paddr=0x[0-9a-f]+/, ['paddr=0xffffffffffffffff'], 'paddr-wraps'],
          [/\[\d+\]/, /\[\d+\]/, ['[99999999999]'], 'cpu-out-of-range'],
        ];
  const usable = rules.filter(([line]) => lines.some((l) => line.test(l)));
  if (!usable.length) return null;
  const [lineRe, fieldRe, values, op] = pick(r, usable);
  const idx = lines.map((l, i) => (lineRe.test(l) && fieldRe.test(l) ? i : -1)).filter((i) => i >= 0);
  if (!idx.length) return null;
  const i = pick(r, idx);
  let v = pick(r, values);
  // iova=0xffffffffffffffff only wraps with a size: make it wrap
  if (v === 'iova=0xffffffffffffffff' && !/size=[1-9]/.test(lines[i]!)) v = 'iova=0x' + '1' + '0'.repeat(22);
  lines[i] = lines[i]!.replace(fieldRe, v);
  return { op, text: joinLines(lines), expect: 'malformed' };
}

/** One mutant of a source, a pure function of (source, seed). */
export function mutate(src: Source, seed: number): Mutant {
  const r = rng(seed);
  if (r() < 0.5) {
    const t = src.format === 'jsonl' ? jsonlTargeted(r, src.text) : lineTargeted(r, src.text, src.format);
    if (t) return { source: src.name, format: src.format, ...t };
  }
  const b = blind(r, src.text);
  return { source: src.name, format: src.format, op: b.op, text: b.text, expect: 'any' };
}
