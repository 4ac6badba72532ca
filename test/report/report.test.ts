// report without a browser: what the page holds (report-browser.test.ts opens it in Chromium).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReport } from '../../src/app/report.js';
import { reportHtml } from '../../src/app/report-html.js';
import { importTrace } from '../../src/app/import.js';
import { record } from '../../src/app/record.js';
import { cli, cliJson, ROOT, tempDir } from '../helpers.js';

describe('report', () => {
  it('the record command line it prints reproduces the trace (same hash)', () => {
    const dir = tempDir();
    const db = join(dir, 'a.db');
    const r = cliJson(['record', '--workload', 'net-rx', '--path', 'iommu-lazy', '--seed', '4', '--ops', '6', '--ring', '32', '--fault', 'evict-iotlb=2', '--variant', 'wakeRule=gt', '--packed', '--db', db]);
    const d = buildReport(db, String(r.trace));
    const rec = d.commands[0]!.cmd;
    expect(rec).toMatch(/^npx dmareplay record /);
    const args = rec.replace(/^npx dmareplay /, '').split(' ');
    const again = cliJson([...args, '--db', join(dir, 'b.db')]);
    expect(again.hash).toBe(r.hash);
  });

  it('an imported real trace: its finding, and the import command it came from', async () => {
    const db = join(tempDir(), 'r.db');
    const guest = join(ROOT, 'traces', 'real', 'guest-vtd-fault.txt');
    const host = join(ROOT, 'traces', 'real', 'qemu-vtd-fault.p010-fault-e1000-tx.log');
    const t = (await importTrace({ db, guest, host })).trace;
    const d = buildReport(db, String(t), { dbArg: db });
    expect(d.findings.map((f) => f.class)).toEqual(['dmar-fault']);
    expect(d.commands.map((c) => c.cmd)).toContain(`npx dmareplay import --guest ${guest} --host ${host} --db ${db}`);
    const html = reportHtml(d);
    expect(html).toContain('dmar-fault');
    expect(html).toContain('00:02.0');
  });

  it('escapes what comes from the trace, and says when there is no finding', () => {
    const db = join(tempDir(), 'c.db');
    const r = record({ db, seed: '1', config: { workload: 'remap', path: 'direct', ops: 2, ringNum: 16, faults: [] }, name: '<script>alert(1)</script>' });
    const html = reportHtml(buildReport(db, String(r.trace)));
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('no findings');
  });

  it('bad input: --at past the end is exit 2, an unwritable file exit 1, and nothing is written', () => {
    const dir = tempDir();
    const db = join(dir, 'd.db');
    const t = cliJson(['record', '--ops', '2', '--db', db]).trace;
    const past = cli(['report', String(t), '--at', '99999', '--db', db, '-o', join(dir, 'x.html')]);
    expect(past.code).toBe(2);
    expect(past.stderr).toMatch(/^dmareplay: --at 99999 is past the end/);
    const nowhere = cli(['report', String(t), '--db', db, '-o', join(dir, 'no', 'such', 'x.html')]);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/^dmareplay: cannot write /);
  });
});
