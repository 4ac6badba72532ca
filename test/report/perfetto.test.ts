// export --format perfetto: the output obeys the Trace Event Format's rules (trace-event-rules.ts),
// is streamed, and shows the race: the stale device-IOTLB entry outlives the remap, findings are
// instants, and flows run along each causal chain.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTrace } from '../../src/app/import.js';
import { exportPerfetto } from '../../src/app/perfetto.js';
import { record } from '../../src/app/record.js';
import { logTrace } from '../../src/app/log.js';
import { listFindings, openDb, getTrace } from '../../src/store/db.js';
import type { SimConfig } from '../../src/sim/config.js';
import { cli, ROOT, tempDir } from '../helpers.js';
import { type Ev, traceEventViolations } from './trace-event-rules.js';

async function perfetto(db: string, id: number): Promise<{ doc: { traceEvents: Ev[]; otherData: Record<string, unknown> }; writes: string[] }> {
  const writes: string[] = [];
  await exportPerfetto(db, String(id), (c) => void writes.push(c));
  return { doc: JSON.parse(writes.join('')), writes };
}

const race: SimConfig = { workload: 'remap', path: 'iommu', ops: 8, ringNum: 16, faults: [{ kind: 'delay-invalidate', arg: 1 }] };

describe('the rules checker', () => {
  it('catches each kind of violation', () => {
    const base = { pid: 1, tid: 1 };
    const cases: [Ev[], RegExp][] = [
      [[{ ph: 'X', name: 'a', ...base, ts: 1 } as Ev], /X needs dur/],
      [[{ ph: 'X', name: 'a', pid: 1, ts: 1, dur: 1 } as Ev], /no tid/],
      [[{ ph: 'B', name: 'a', ...base, ts: 1 }], /B without E/],
      [[{ ph: 'E', ...base, ts: 1 }], /E without an open B/],
      [[{ ph: 'b', cat: 'c', name: 'a', ...base, ts: 1 }], /needs an id|never ends/],
      [[{ ph: 'b', cat: 'c', id: '1', name: 'a', ...base, ts: 1 }, { ph: 'e', cat: 'c', id: '2', name: 'a', ...base, ts: 2 }], /without a begin/],
      [[{ ph: 'X', name: 'a', ...base, ts: 1, dur: 4 }, { ph: 'X', name: 'b', ...base, ts: 3, dur: 4 }], /without nesting/],
      [[{ ph: 'X', name: 'a', ...base, ts: 1, dur: 1 }, { ph: 's', cat: 'f', id: 'x', name: 'x', ...base, ts: 1.5 }, { ph: 'f', bp: 'e', cat: 'f', id: 'x', name: 'x', ...base, ts: 9 }], /no enclosing slice/],
      [[{ ph: 'X', name: 'a', ...base, ts: 1, dur: 9 }, { ph: 't', cat: 'f', id: 'x', name: 'x', ...base, ts: 1.5 }], /expected s t\* f/],
      [[{ ph: 'X', name: 'a', ...base, ts: 1, dur: 9 }, { ph: 's', cat: 'f', id: 'chain-1', name: 'x', ...base, ts: 1.5 }, { ph: 'f', bp: 'e', cat: 'f', id: 'chain-1', name: 'x', ...base, ts: 2.5 }], /id must be an integer or a hex string/],
    ];
    for (const [evs, re] of cases) expect(traceEventViolations(evs).join('\n')).toMatch(re);
    expect(traceEventViolations([{ ph: 'X', name: 'a', ...base, ts: 1, dur: 3 }, { ph: 'X', name: 'b', ...base, ts: 2, dur: 1 }])).toEqual([]);
  });
});

describe('export --format perfetto', () => {
  let dir: string;
  let db: string;
  beforeAll(() => {
    dir = tempDir();
    db = join(dir, 't.db');
  });

  it('the race: valid, a track per actor, the stale IOTLB entry outlives the remap, a flow along each chain', async () => {
    const r = record({ db, seed: '7', config: race });
    const { doc } = await perfetto(db, r.trace);
    const evs = doc.traceEvents;
    expect(traceEventViolations(evs)).toEqual([]);
    const threads = evs.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.args!.name);
    for (const t of ['vCPU 0 (guest driver)', 'vq0 worker', 'VMM (QEMU)', 'vIOMMU', 'device IOTLB (vhost)', 'swiotlb', 'findings']) expect(threads).toContain(t);
    // every event but the scheduler's is a slice at its seq (time = seq)
    const seqs: { seq: number; kind: string }[] = [];
    logTrace(db, String(r.trace), {}, (ev) => void seqs.push({ seq: ev.seq, kind: ev.kind }));
    const xs = new Map(evs.filter((e) => e.ph === 'X').map((e) => [e.ts, e]));
    for (const s of seqs.filter((s) => !['sched', 'finding', 'dev.pass'].includes(s.kind))) expect(xs.get(s.seq)?.name).toBe(s.kind);
    // the finding's chain: the UPDATE that filled the entry, ..., the device access through it
    // (async spans of one IOVA share its track: successive entries of 0xffffa000 reuse the id)
    const f = r.findings[0]!;
    const update = f.chain[0]!;
    const access = f.chain.at(-1)!;
    // the entry's span: begun at the UPDATE, keyed by device and IOVA
    const begin = evs.find((e) => e.cat === 'iotlb' && e.ph === 'b' && e.args?.update === update)!;
    expect(begin.name).toBe(`00:03.0 iova ${begin.args!.start}`);
    expect(String(begin.id)).toMatch(/^iotlb:00:03\.0:0x[0-9a-f]+\/\d+$/);
    const end = evs.find((e) => e.cat === 'iotlb' && e.ph === 'e' && e.id === begin.id && e.ts >= begin.ts)!;
    const span = [begin, end];
    expect(span[0]!.ts).toBe(update);
    expect(span[1]!.ts).toBeGreaterThan(access); // still cached when the device used it
    const invalidate = seqs.find((s) => s.seq === span[1]!.ts);
    expect(invalidate?.kind).toBe('iotlb.invalidate'); // and removed by the (late) INVALIDATE
    // the IOMMU mapping the entry was filled from ended before the access (the guest unmapped it)
    const unmap = f.chain.find((s) => seqs.find((x) => x.seq === s)?.kind === 'iommu.unmap')!;
    const ended = evs.filter((e) => e.cat === 'iommu' && e.ph === 'e' && e.ts === unmap);
    expect(ended.length).toBeGreaterThan(0);
    // instants for findings, flows along chains
    const findings = listFindings(openDb(db), getTrace(openDb(db), r.trace));
    expect(evs.filter((e) => e.ph === 'i').map((e) => e.ts)).toEqual(findings.map((x) => x.seq));
    const flow = evs.filter((e) => e.cat === 'chain' && e.id === f.seq);
    expect(flow.map((e) => Math.floor(e.ts))).toEqual([...f.chain].sort((a, b) => a - b));
  });

  it('--from/--to: a window, with the entries and mappings alive at its start beginning there', async () => {
    const r = record({ db, seed: '7', config: race });
    const f = r.findings[0]!;
    const [update, access] = [f.chain[0]!, f.chain.at(-1)!];
    const from = update + 10;
    const to = access + 20;
    const writes: string[] = [];
    await exportPerfetto(db, String(r.trace), (c) => void writes.push(c), { from, to });
    const evs = (JSON.parse(writes.join('')) as { traceEvents: Ev[] }).traceEvents;
    expect(traceEventViolations(evs)).toEqual([]);
    const slices = evs.filter((e) => e.ph === 'X' || e.ph === 'i');
    expect(Math.min(...slices.map((e) => e.ts))).toBeGreaterThanOrEqual(from);
    expect(Math.max(...slices.map((e) => e.ts))).toBeLessThanOrEqual(to);
    // the stale entry was filled before the window: its span begins at the window's start
    const begin = evs.find((e) => e.cat === 'iotlb' && e.ph === 'b' && e.args?.update === update)!;
    expect(begin.ts).toBe(from);
    // the flow keeps the chain's steps inside the window
    expect(evs.filter((e) => e.cat === 'chain' && e.id === f.seq).map((e) => Math.floor(e.ts))).toEqual(f.chain.filter((s) => s >= from && s <= to));
    await expect(exportPerfetto(db, String(r.trace), () => {}, { from: 50, to: 10 })).rejects.toThrow(/not a range/);
  });

  it('valid for other paths, faults and ring layouts, and for an imported trace', async () => {
    const configs: SimConfig[] = [
      { workload: 'mixed', path: 'swiotlb', ops: 12, ringNum: 16, faults: [{ kind: 'skip-sync', arg: 0 }] },
      { workload: 'net-rx', path: 'iommu-lazy', ops: 12, ringNum: 8, faults: [{ kind: 'evict-iotlb', arg: 2 }], packed: true },
      { workload: 'blk-write', path: 'iommu', ops: 10, ringNum: 16, faults: [{ kind: 'drop-invalidate', arg: 2 }] },
    ];
    for (const c of configs) {
      const r = record({ db, seed: '3', config: c });
      const { doc } = await perfetto(db, r.trace);
      expect(traceEventViolations(doc.traceEvents), JSON.stringify(c)).toEqual([]);
      expect(doc.traceEvents.filter((e) => e.ph === 'X').length).toBeGreaterThan(100);
    }
    const cat = readdirSync(join(ROOT, 'traces', 'catalog')).filter((f) => f.endsWith('.buggy.jsonl'));
    for (const f of cat.slice(0, 4)) {
      const imp = await importTrace({ db, file: join(ROOT, 'traces', 'catalog', f), format: 'jsonl' });
      const { doc } = await perfetto(db, imp.trace);
      expect(traceEventViolations(doc.traceEvents), f).toEqual([]);
    }
    // a real QEMU log (traces/real: a VT-d fault run): its findings are instants too
    const real = await importTrace({ db, guest: join(ROOT, 'traces', 'real', 'guest-vtd-fault.txt'), host: join(ROOT, 'traces', 'real', 'qemu-vtd-fault.p010-fault-e1000-tx.log') });
    const { doc } = await perfetto(db, real.trace);
    expect(traceEventViolations(doc.traceEvents)).toEqual([]);
    expect(doc.traceEvents.filter((e) => e.ph === 'i').map((e) => e.name)).toContain('dmar-fault');
  });

  it('streams: a large trace is written in pieces of about 1 MiB', async () => {
    const r = record({ db, seed: '5', config: { ...race, ops: 300 } });
    const { doc, writes } = await perfetto(db, r.trace);
    expect(writes.length).toBeGreaterThan(2);
    for (const w of writes) expect(w.length).toBeLessThan(3 << 20);
    expect(doc.otherData).toMatchObject({ trace: r.trace });
    expect(traceEventViolations(doc.traceEvents)).toEqual([]);
  });

  it('streams the causal-chain flows too: with thousands of findings no piece outgrows ~32 KiB and an event', async () => {
    const r = record({ db, seed: '6', config: { ...race, ops: 1500 } });
    expect(r.findingCount).toBeGreaterThan(1000);
    const { doc, writes } = await perfetto(db, r.trace);
    for (const w of writes) expect(w.length).toBeLessThan(128 << 10);
    const flows = doc.traceEvents.filter((e) => e.ph === 's');
    expect(flows.length).toBeGreaterThan(1000);
    expect(traceEventViolations(doc.traceEvents)).toEqual([]);
  });

  it('through the CLI: JSON on stdout; an unknown format is a usage error', () => {
    const c = cli(['export', '1', '--format', 'perfetto', '--db', db]);
    expect(c.code, c.stderr).toBe(0);
    expect(traceEventViolations(JSON.parse(c.stdout).traceEvents)).toEqual([]);
    const bad = cli(['export', '1', '--format', 'ctf', '--db', db]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--format must be jsonl or perfetto/);
  });
});
