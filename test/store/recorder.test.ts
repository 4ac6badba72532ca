import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { record } from '../../src/app/record.js';
import { encodeCheckpoint, stateHash } from '../../src/engine/snapshot.js';
import { Sim } from '../../src/sim/sim.js';
import { checkpointHashes, getTrace, openDb, readChunks } from '../../src/store/db.js';
import { checkpointHash } from '../../src/store/record-worker.js';
import { encodeCheckpointRow } from '../../src/store/recorder.js';
import { cliJson, tempDir } from '../helpers.js';

describe('recorder', () => {
  it('encodes a checkpoint once: the blob is encodeCheckpoint(world, sim), the hash is stateHash(world)', () => {
    let seen = 0;
    const sink = {
      event() {},
      checkpoint(seq: number, world: Parameters<typeof stateHash>[0], sim: Parameters<typeof encodeCheckpoint>[1]) {
        for (const s of [sim, null]) {
          const row = encodeCheckpointRow(seq, world, s);
          expect(Buffer.from(row.blob).equals(encodeCheckpoint(world, s))).toBe(true);
          expect(checkpointHash(row)).toBe(stateHash(world));
        }
        seen++;
      },
    };
    new Sim({ workload: 'mixed', path: 'swiotlb', ops: 60, ringNum: 16, faults: [{ kind: 'skip-sync', arg: 0 }] }, '3', sink, 300).run();
    expect(seen).toBeGreaterThan(3);
  });

  // The built CLI hands a long recording to its writer thread; written here (from sources) the same
  // recording stays on one thread. Both must store the same trace.
  it('a recording written by the writer thread equals one written inline', () => {
    const dir = tempDir();
    const viaCli = join(dir, 'cli.db');
    const r = cliJson<{ trace: number; events: number; hash: string }>(['record', '--ops', '700', '--ring', '16', '--fault', 'delay-invalidate=1', '--checkpoint-every', '3000', '--db', viaCli]);
    expect(r.events).toBeGreaterThan(64 * 256 * 1.5); // well past the hand-over
    const h = openDb(viaCli);
    const t = getTrace(h, r.trace);
    const inline = join(dir, 'inline.db');
    const again = record({ db: inline, config: JSON.parse(t.config), seed: t.seed!, checkpointEvery: 3000 });
    expect(again.hash).toBe(r.hash);
    expect(again.events).toBe(r.events);
    const h2 = openDb(inline);
    const t2 = getTrace(h2, again.trace);
    expect(t2.complete).toBe(1);
    expect(t2.events).toBe(t.events);
    expect(t2.findings).toBe(t.findings);
    expect([...checkpointHashes(h2, t2)]).toEqual([...checkpointHashes(h, t)]);
    const a = [...readChunks(h, t)].map((c) => c.data.toString('base64')).join('');
    const b = [...readChunks(h2, t2)].map((c) => c.data.toString('base64')).join('');
    expect(a === b).toBe(true);
    h.close();
    h2.close();
  });
});
