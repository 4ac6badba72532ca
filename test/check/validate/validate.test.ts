// Hand-written canonical JSONL traces, one per rule the model validates (issue 8: the model judges
// what an imported or hand-written trace only records), each imported as a user would
// (`dmareplay import x.jsonl`): every `.bad` trace gives exactly its finding, naming the events
// behind the model's answer; every kernel-correct variant (`.good`, and the older kernel the
// variant names) gives none. The same traces folded in-process give the same findings.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { chunksOf } from '../../../src/engine/chunks.js';
import { fold } from '../../../src/engine/replay.js';
import { parseJsonl } from '../../../src/events/jsonl.js';
import { JUDGE } from '../../../src/check/index.js';
import { validateSetup } from '../../../src/check/validate-ring.js';
import { emptyWorld } from '../../../src/model/world.js';
import { BIN, tempDir } from '../../helpers.js';

const DIR = import.meta.dirname;

interface Expected {
  class: string;
  /** the event it is about */
  seq: number;
  /** fragments the message must contain: the rule, the expected and recorded value, the events behind it */
  says: string[];
}

const BAD: Record<string, Expected[]> = {
  'iotlb-entry-invalidated.bad.jsonl': [{ class: 'iotlb-entry-gone', seq: 16, says: ['read 512 B at IOVA 0xffffc000', 'filled by UPDATE #12', 'deleted by INVALIDATE #15', 'sends a MISS'] }],
  'iotlb-entry-evicted.bad.jsonl': [{ class: 'iotlb-entry-gone', seq: 15, says: ['filled by UPDATE #12', 'evicted at #14', 'sends a MISS'] }],
  'iotlb-lowest-start.bad.jsonl': [{ class: 'iotlb-resolution-mismatch', seq: 14, says: ['filled by UPDATE #12', 'entry #13 [0xffffb000, 0xffffcfff]', 'vhost_iotlb_itree_first'] }],
  'iotlb-miss-covered.bad.jsonl': [{ class: 'iotlb-miss-covered', seq: 14, says: ['MISS for IOVA 0xffffb800', 'entry #12 [0xffffb000, 0xffffbfff]', 'perm RO', 'no MISS'] }],
  'iotlb-write-readonly.bad.jsonl': [{ class: 'iotlb-perm-mismatch', seq: 13, says: ['wrote 64 B', 'UPDATE #12', 'perm RO', 'recorded as succeeding', '-EPERM'] }],
  'iotlb-update-size0.bad.jsonl': [{ class: 'iotlb-result-mismatch', seq: 5, says: ['UPDATE of size 0', 'recorded as ok', 'expected EINVAL', 'e2ae38cf3d91', '[0x0, 0xffffffffffffffff]'] }],
  'iotlb-invalidate-size0.bad.jsonl': [{ class: 'iotlb-result-mismatch', seq: 14, says: ['INVALIDATE of size 0', 'recorded as EINVAL', 'expected ok', 'ca50ec377c2e'] }],
  'swiotlb-sync-fromdevice-copies.bad.jsonl': [{ class: 'swiotlb-copy-mismatch', seq: 8, says: ['dma_sync_single_for_device(FROM_DEVICE) #8', 'copied orig→tlb at #9', 'expected no copy', 'bddac7c1e02b'] }],
  'swiotlb-sync-todevice-nocopy.bad.jsonl': [{ class: 'swiotlb-copy-mismatch', seq: 9, says: ['dma_sync_single_for_device(TO_DEVICE) #9', 'copied nothing', 'expected orig→tlb'] }],
  'ring-used-not-head.bad.jsonl': [{ class: 'ring-used-not-head', seq: 7, says: ['used id 3', 'outstanding heads: 0', 'is not a head!'] }],
  'ring-id-out-of-range.bad.jsonl': [{ class: 'ring-id-out-of-range', seq: 7, says: ['used id 16', '16 descriptors', 'out of range'] }],
  'iommu-double-unmap.bad.jsonl': [{ class: 'iommu-unmap-unmapped', seq: 6, says: ['[0xffffc000, 0xffffcfff]', 'maps only 0 of its 1 pages', 'unmapped at #5'] }],
  'dma-double-unmap.bad.jsonl': [{ class: 'dma-unmap-unknown', seq: 7, says: ['has not allocated', '0x10000000'] }],
  'lazy-reuse-before-flush.bad.jsonl': [{ class: 'iova-reuse-before-flush', seq: 9, says: ['IOVA 0xffffc000', 'iommu.map #9', 'unmapped at #8', 'flush queue'] }],
  'lazy-access-after-unmap.bad.jsonl': [{ class: 'use-after-unmap', seq: 16, says: ['unmapped at #15', 'lazy mode', 'flush queue', 'through silently'] }],
  'strict-access-after-unmap.bad.jsonl': [{ class: 'use-after-unmap', seq: 17, says: ['unmapped at #15', 'strict mode', 'would fault', 'requested at #16'] }],
};

const GOOD = readdirSync(DIR).filter((f) => f.endsWith('.jsonl') && !f.includes('.bad.'));

/** The 2048-entry limit: UPDATE #12 fills the buffer's entry, then `more` UPDATEs of other pages; then the device reads through #12 again. */
function evictionTrace(more: number): string {
  const base = readFileSync(join(DIR, 'iotlb-entry-invalidated.good.jsonl'), 'utf8').split('\n').slice(0, 14); // header + #1..#13
  const lines = base.slice(1);
  for (let i = 0; i < more; i++) {
    const iova = 0x1_0000_0000 + i * 0x1000;
    lines.push(JSON.stringify({ seq: lines.length + 1, kind: 'iotlb.update', actor: 'vmm', dev: 24, iova: '0x' + iova.toString(16), size: '0x1000', uaddr: '0x' + (0x7f00_2000_0000 + i * 0x1000).toString(16), perm: 'RO', result: 'ok' }));
  }
  lines.push(JSON.stringify({ ...JSON.parse(lines[12]!), seq: lines.length + 1 })); // #13 again: the read through #12
  const header = { ...JSON.parse(base[0]!), name: `the device reads through UPDATE #12 after ${more} more UPDATEs`, events: lines.length };
  return [JSON.stringify(header), ...lines].join('\n') + '\n';
}

const exec = promisify(execFile);
interface Got {
  class: string;
  /** the event the finding is about */
  cause: number;
  message: string;
}
const imported = new Map<string, { code: number; findings: Got[]; stderr: string }>();

async function importFile(dir: string, file: string): Promise<void> {
  try {
    const r = await exec(process.execPath, [BIN, 'import', file, '--db', join(dir, file.replace(/\W/g, '_') + '.db'), '--json']);
    imported.set(file, { code: 0, findings: JSON.parse(r.stdout).findings, stderr: r.stderr });
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    imported.set(file, { code: err.code ?? -1, findings: [], stderr: err.stderr ?? String(e) });
  }
}

function folded(text: string) {
  const { events } = parseJsonl(text);
  return fold(chunksOf(events), JUDGE).findings.map((f) => ({ class: f.cls, cause: f.cause, message: f.message }));
}

let evictBad = '';
let evictGood = '';

beforeAll(async () => {
  const dir = tempDir();
  evictBad = join(dir, 'iotlb-entry-evicted-2048.bad.jsonl');
  evictGood = join(dir, 'iotlb-entry-evicted-2048.good.jsonl');
  writeFileSync(evictBad, evictionTrace(2048));
  writeFileSync(evictGood, evictionTrace(2047));
  const files = [...Object.keys(BAD), 'ring-size.bad.jsonl', ...GOOD].map((f) => join(DIR, f)).concat([evictBad, evictGood]);
  // two at a time: each import is its own process and database
  for (let i = 0; i < files.length; i += 2) await Promise.all(files.slice(i, i + 2).map((f) => importFile(dir, f)));
}, 120_000);

function expectExactly(got: Got[], want: Expected[]) {
  expect(got.map((f) => [f.class, f.cause])).toEqual(want.map((f) => [f.class, f.seq]));
  want.forEach((w, i) => {
    for (const s of w.says) expect(got[i]!.message).toContain(s);
  });
}

describe('dmareplay import of a hand-written trace: exactly the right finding', () => {
  for (const [file, want] of Object.entries(BAD))
    it(file, () => {
      const r = imported.get(join(DIR, file))!;
      expect(r.code, r.stderr).toBe(0);
      expectExactly(r.findings, want);
      // the in-process fold judges the same way
      expectExactly(folded(readFileSync(join(DIR, file), 'utf8')), want);
    });

  it('the device reads through an entry the 2048-entry limit evicted (VHOST_IOTLB_FLAG_RETIRE)', () => {
    const r = imported.get(evictBad)!;
    expect(r.code, r.stderr).toBe(0);
    expectExactly(r.findings, [{ class: 'iotlb-entry-gone', seq: 2062, says: ['filled by UPDATE #12', 'evicted by UPDATE #2061', 'the 2048-entry limit', 'sends a MISS'] }]);
  });

  it('a split ring of 100 descriptors: the JSONL reader now refuses it (exit 1, naming the field)', () => {
    const r = imported.get(join(DIR, 'ring-size.bad.jsonl'))!;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('power of 2');
  });

  it('ring-size-invalid: the rule itself (vhost_vring_set_num), for a ring set up some other way', () => {
    const setup = (num: number, packed = 0) => ({ seq: 4, kind: 'vring.setup', actor: 'cpu0', cause: 0, dev: 24, q: 0, num, packed, eventIdx: 0, desc: 0n, avail: 0n, used: 0n, descGpa: 0n, availGpa: 0n, usedGpa: 0n }) as never;
    expect(validateSetup(emptyWorld(), setup(100)).map((f) => (f as { cls: string }).cls)).toEqual(['ring-size-invalid']);
    expect(validateSetup(emptyWorld(), setup(256))).toEqual([]);
    expect(validateSetup(emptyWorld(), setup(100, 1))).toEqual([]);
  });

  it('a lazy-mode access after unmap no longer says that no invalidation is pending', () => {
    const msg = imported.get(join(DIR, 'lazy-access-after-unmap.bad.jsonl'))!.findings[0]!.message;
    expect(msg).not.toContain('no invalidation for it is pending');
  });
});

describe('dmareplay import of the kernel-correct variant: no finding', () => {
  for (const file of GOOD)
    it(file, () => {
      const r = imported.get(join(DIR, file))!;
      expect(r.code, r.stderr).toBe(0);
      expect(r.findings).toEqual([]);
      expect(folded(readFileSync(join(DIR, file), 'utf8'))).toEqual([]);
    });

  it('2047 more UPDATEs: the entry is still there', () => {
    const r = imported.get(evictGood)!;
    expect(r.code, r.stderr).toBe(0);
    expect(r.findings).toEqual([]);
  });
});
