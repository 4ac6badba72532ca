// The failures the hardening issue found, each now a named input error (one line naming the file,
// the line and the field, exit 1, nothing stored), and the inputs that must still be accepted.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTrace } from '../../src/app/import.js';
import { InputError } from '../../src/errors.js';
import { parseJsonl } from '../../src/events/jsonl.js';
import { fieldRangeError } from '../../src/import/fields.js';
import { parseFtraceLine } from '../../src/import/ftrace.js';
import { parseQemuLogLine } from '../../src/import/qemu-log.js';
import { listTraces, openDb } from '../../src/store/db.js';
import { ROOT, cli, tempDir } from '../helpers.js';

const R1 = readFileSync(join(ROOT, 'traces', 'catalog', 'R1.buggy.jsonl'), 'utf8');
const lines = () => R1.trimEnd().split('\n');
const index = (l: string[], kind: string) => l.findIndex((x, i) => i > 0 && x.includes(`"kind":"${kind}"`));

let dir: string;
let db: string;
beforeAll(async () => {
  dir = tempDir();
  db = join(dir, 'v.db');
  writeFileSync(join(dir, 'ok.jsonl'), R1);
  await importTrace({ db, file: join(dir, 'ok.jsonl') });
});

/** Imports the edited trace: must fail with an InputError matching msg, and store nothing. */
async function refused(name: string, edit: (l: string[]) => string[] | string, msg: RegExp): Promise<void> {
  const e = edit(lines());
  const file = join(dir, name);
  writeFileSync(file, typeof e === 'string' ? e : e.join('\n') + '\n');
  const err = await importTrace({ db, file }).then(
    () => null,
    (x: unknown) => x,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: `));
  expect((err as Error).message).toMatch(msg);
  const h = openDb(db);
  expect(listTraces(h)).toHaveLength(1);
  h.close();
}

function set(l: string[], kind: string, f: (o: Record<string, unknown>) => void): string[] {
  const i = index(l, kind);
  const o = JSON.parse(l[i]!);
  f(o);
  l[i] = JSON.stringify(o);
  return l;
}

describe('JSONL: malformed or impossible on its face', () => {
  it('an unknown kind that is a property of every object', () => refused('ctor.jsonl', (l) => set(l, 'mem.table', (o) => (o.kind = 'constructor')), /field kind: unknown kind "constructor"/));
  it('a wrong-typed address', () => refused('type.jsonl', (l) => set(l, 'iommu.map', (o) => (o.iova = 4096)), /field iova: iova must be a hex string/));
  it('a field the kind does not have', () => refused('extra.jsonl', (l) => set(l, 'dev.add', (o) => (o.iova = '0x1')), /field iova: dev\.add has no field iova/));
  it('a 64-bit value of 2^64', () => refused('big.jsonl', (l) => set(l, 'iommu.map', (o) => (o.gpa = '0x10000000000000000')), /field gpa/));
  it('a mapping that wraps past 2^64', () => refused('wrap.jsonl', (l) => set(l, 'iommu.map', (o) => ((o.iova = '0xfffffffffffff000'), (o.size = '0x2000'))), /field size: iova 0xfffffffffffff000 \+ 0x2000 bytes wraps past 2\^64/));
  it('a memory write that wraps past 2^64', () => refused('wrapw.jsonl', (l) => set(l, 'mem.write', (o) => (o.gpa = '0xffffffffffffffff')), /field gpa: gpa 0xffffffffffffffff \+ 0x[0-9a-f]+ bytes wraps/));
  it('a ring of size 0', () => refused('ring.jsonl', (l) => set(l, 'vring.setup', (o) => (o.num = 0)), /field num: num 0: a virtqueue has 1\.\.32768 entries/));
  it('a device access of absurd length', () => refused('len.jsonl', (l) => set(l, 'dev.access', (o) => (o.len = 0xffffffff)), /field len: len 0xffffffff is larger than/));
  it('an access naming an unknown queue', () => refused('q.jsonl', (l) => set(l, 'dev.access', (o) => (o.q = 9)), /field q: queue 9 was never set up/));
  it('an event naming an unknown device', () => refused('dev.jsonl', (l) => set(l, 'iotlb.update', (o) => (o.dev = 0x99)), /field dev: device 0x99 was never added/));
  it('an event that is its own cause', () => refused('self.jsonl', (l) => set(l, 'iommu.unmap', (o) => (o.cause = o.seq)), /field cause: event #\d+ names itself as its cause/));
  it('a cause in the future', () => refused('future.jsonl', (l) => set(l, 'iommu.unmap', (o) => (o.cause = (o.seq as number) + 3)), /field cause: cause #\d+ is later than the event/));
  it('a finding whose chain points to the future', () => refused('chain.jsonl', (l) => set(l, 'finding', (o) => (o.chain = [o.seq])), /field chain\[0\]/));
  it('an unparseable variants JSON in trace.config', () => refused('var.jsonl', (l) => set(l, 'trace.config', (o) => (o.variants = '{"wakeRule":')), /field variants: variants is not valid JSON/));
  it('an unknown variant', () => refused('var2.jsonl', (l) => set(l, 'trace.config', (o) => (o.variants = '{"swiotlbSlots":"many"}')), /field variants: variant swiotlbSlots cannot be "many"/));
  it('a deeply nested header', () => refused('deep.jsonl', (l) => ((l[0] = l[0]!.replace('"config":', `"config":${'['.repeat(200000)}${']'.repeat(200000)},"c":`)), l), /:1: nested more than 32 levels deep/));
  it('a 16 MiB data field', () => refused('huge.jsonl', (l) => set(l, 'mem.write', (o) => (o.data = '00'.repeat(16 << 20))), /field line: line is \d+ characters long/));
  it('a newer schema', () => refused('newer.jsonl', (l) => ((l[0] = l[0]!.replace('"schema":1', '"schema":7')), l), /schema version 7 is newer .*upgrade dmareplay/));
  it('a newer engine', () => refused('engine.jsonl', (l) => ((l[0] = l[0]!.replace('"engine":"0.1.0"', '"engine":"3.0.0"')), l), /dmareplay 3\.0\.0, newer .*upgrade dmareplay/));

  it('a swiotlb allocation of more slots than one mapping can have', async () => {
    const S1 = readFileSync(join(ROOT, 'traces', 'catalog', 'S1.buggy.jsonl'), 'utf8').trimEnd().split('\n');
    const i = S1.findIndex((x) => x.includes('"kind":"swiotlb.slots"') && x.includes('"op":"alloc"'));
    const o = JSON.parse(S1[i]!);
    o.nslots = 0x7fffffff;
    S1[i] = JSON.stringify(o);
    await refused('slots.jsonl', () => S1, /field nslots: nslots 2147483647: swiotlb allocates 1\.\.128 slots/);
  });

  it('a UTF-8 BOM is accepted', async () => {
    writeFileSync(join(dir, 'bom.jsonl'), '\ufeff' + R1);
    const r = await importTrace({ db: join(dir, 'bom.db'), file: join(dir, 'bom.jsonl') });
    expect(r.events).toBe(lines().length - 1);
  });

  it('every catalog trace passes the validator', () => {
    for (const f of ['R1', 'B1', 'B1b', 'B2', 'B3', 'S1', 'S2', 'S3', 'S4', 'Q1', 'Q2', 'P1', 'P2'])
      for (const v of ['buggy', 'fixed']) expect(() => parseJsonl(readFileSync(join(ROOT, 'traces', 'catalog', `${f}.${v}.jsonl`), 'utf8'))).not.toThrow();
  });
});

describe('the CLI: one printable line, exit 1', () => {
  it('NUL and escape bytes in the input are never echoed raw', () => {
    const l = lines();
    l[3] = '{"seq":3,"kind":"\u001b[2J\u0007\\u0000x","actor":"vmm"}';
    l[3] = l[3].replace('\\u0000', '\u0000');
    writeFileSync(join(dir, 'ctl.jsonl'), l.join('\n') + '\n');
    const r = cli(['import', join(dir, 'ctl.jsonl'), '--db', join(dir, 'ctl.db')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // eslint-disable-next-line no-control-regex
    expect(r.stderr.trimEnd()).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
  });
  it('an unknown kind key with control bytes is escaped', () => {
    const l = lines();
    l[3] = JSON.stringify({ seq: 3, kind: '\u001b]0;owned\u0007', actor: 'vmm' });
    writeFileSync(join(dir, 'ctl2.jsonl'), l.join('\n') + '\n');
    const r = cli(['import', join(dir, 'ctl2.jsonl'), '--db', join(dir, 'ctl2.db')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown kind "\\\\u001b\]0;owned\\\\u0007"|unknown kind "\\u001b\]0;owned\\u0007"/);
    // eslint-disable-next-line no-control-regex
    expect(r.stderr.trimEnd()).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
  });
});

describe('log parsers: out-of-range fields are malformed lines', () => {
  const ft = (args: string) => parseFtraceLine(`            init-1       [000] .....     1.390831: ${args}`, 1);
  const qm = (args: string) => parseQemuLogLine(`8353@1795271493.109617:${args}`, 1);
  it.each([
    ['unmap size of 26 digits', () => ft('unmap: IOMMU: iova=0x00000000ffeb9000 - 0x00000000ffeba000 size=99999999999999999999999999 unmapped_size=4096'), /size 0x[0-9a-f]+ does not fit in 64 bits/],
    ['a 2^88 address', () => ft('map: IOMMU: iova=0x1000000000000000000000 - 0x00000000ffeba000 paddr=0x1000 size=4096'), /iova 0x1000000000000000000000 does not fit/],
    ['a map wrapping past 2^64', () => ft('map: IOMMU: iova=0xfffffffffffff000 - 0x0000000000001000 paddr=0x1000 size=8192'), /wraps past 2\^64/],
    ['a PCI requester id of 2^16', () => qm('vtd_iotlb_page_hit IOTLB page hit sid 0x10000 iova 0xffffb402 slpte 0x2a36a003 domain 0x5'), /sid 65536 is out of range/],
    ['a PCI requester id of 2^64', () => qm('vtd_dmar_fault sid 0x10000000000000000 fault 6 addr 0x12340000 write 0'), /sid .* (is out of range|is not a non-negative integer)/],
  ])('%s', (_n, parse, why) => {
    const r = parse() as { kind: string; malformed?: string };
    expect(r.kind).toBe('malformed');
    expect(r.malformed).toMatch(why);
  });
  it('a map ending exactly at 2^64 is fine', () => {
    expect(ft('map: IOMMU: iova=0xfffffffffffff000 - 0x0000000000000000 paddr=0x1000 size=4096')).toMatchObject({ kind: 'map', size: 4096n });
  });
  it('range checks by field name', () => {
    expect(fieldRangeError({ domain: -1 })).toMatch(/domain -1 is not a non-negative integer/);
    expect(fieldRangeError({ bus: 256 })).toMatch(/bus 256 is out of range/);
    expect(fieldRangeError({ virtStart: 5n, virtEnd: 4n })).toMatch(/lies before/);
    expect(fieldRangeError({ iova: 1n, size: 2n, sid: 0x18 })).toBeNull();
  });
});

describe('the validator, property-tested', () => {
  const TWO64 = 1n << 64n;
  it('an iommu.map is accepted exactly when its ranges fit, its size is legal and its cause is earlier', async () => {
    const { TraceValidator, ValidationError, MAX_PAGE_RANGE } = await import('../../src/events/validate.js');
    const fc = (await import('fast-check')).default;
    const u64 = fc.oneof(fc.bigInt({ min: 0n, max: TWO64 - 1n }), fc.constantFrom(0n, 1n, 0x1000n, MAX_PAGE_RANGE, MAX_PAGE_RANGE + 1n, TWO64 - 0x1000n, TWO64 - 1n));
    fc.assert(
      fc.property(u64, u64, u64, fc.nat(4), (iova, gpa, size, cause) => {
        const v = new TraceValidator();
        v.check({ seq: 1, kind: 'dev.add', actor: 'cpu0', cause: 0, dev: 0x18, name: 'n', path: 'iommu', features: 0n, useDmaApi: 1, translate: 'iova', backend: 'vhost', dmaMask: TWO64 - 1n });
        const ev = { seq: 2, kind: 'iommu.map', actor: 'cpu0', cause, dev: 0x18, iova, gpa, size, perm: 'RW' } as const;
        const ok = cause < 2 && size > 0n && size <= MAX_PAGE_RANGE && iova + size <= TWO64 && gpa + size <= TWO64;
        let accepted = true;
        try {
          v.check(ev);
        } catch (e) {
          expect(e).toBeInstanceOf(ValidationError);
          accepted = false;
        }
        return accepted === ok;
      }),
      { seed: 14, numRuns: 2000 },
    );
  });
  it('a parsed log field is out of range exactly when it does not fit what it names', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }), fc.integer({ min: -(2 ** 20), max: 2 ** 20 }), (addr, sid) => {
        const bad = fieldRangeError({ iova: addr, sid });
        const ok = addr >= 0n && addr < TWO64 && sid >= 0 && sid <= 0xffff;
        return (bad === null) === ok;
      }),
      { seed: 14, numRuns: 2000 },
    );
  });
});
