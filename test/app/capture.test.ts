// dmareplay capture -- QEMU…: the trace options are added, QEMU runs, the host log and the guest
// ftrace from a serial file are imported as one trace.
// - always: a fake QEMU (fake-qemu.mjs) that checks the options and writes a real log pair;
// - end to end with Debian's qemu-system-x86_64 under TCG on the kernel and initramfs make-traces.sh
//   builds, when both exist (DMAREPLAY_E2E_BUILD = its build/ directory, or
//   ../shared/traces-real/build from the repo root); CI has neither.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { serialFiles, traceArgs } from '../../src/app/capture.js';
import { cli, cliJson, ROOT, tempDir } from '../helpers.js';

const FAKE = join(fileURLToPath(new URL('.', import.meta.url)), 'fake-qemu.mjs');

describe('capture: the command line', () => {
  it('adds -trace patterns, -D and -msg timestamp=on; keeps a -D the user gave', () => {
    const a = traceArgs(['qemu-system-x86_64', '-m', '1G'], '/d');
    expect(a.hostLog).toBe('/d/qemu.log');
    expect(a.argv.slice(0, 3)).toEqual(['qemu-system-x86_64', '-m', '1G']);
    expect(a.argv.join(' ')).toContain('-trace vtd_* -trace amdvi_* -trace virtio_* -trace virtqueue_* -trace vhost_* -trace pci_cfg_write');
    expect(a.argv.slice(-4)).toEqual(['-D', '/d/qemu.log', '-msg', 'timestamp=on']);
    const b = traceArgs(['qemu-system-x86_64', '-D', 'mine.log'], '/d');
    expect(b.hostLog).toBe('mine.log');
    expect(b.argv.filter((x) => x === '-D')).toHaveLength(1);
  });

  it('finds the serial files the guest can write its ftrace to', () => {
    expect(serialFiles(['q', '-serial', 'file:a.log', '-serial', 'stdio', '-chardev', 'file,id=s1,path=b.raw', '-serial', 'chardev:s1'])).toEqual(['a.log', 'b.raw']);
  });
});

describe('capture with a fake QEMU', () => {
  it('imports the host log and the guest ftrace of the serial file as one trace', () => {
    const dir = tempDir();
    const db = join(dir, 'c.db');
    const r = cli(['capture', '--db', db, '--dir', join(dir, 'logs'), '--json', '--', process.execPath, FAKE, '-m', '1G', '-serial', `file:${join(dir, 'console.log')}`]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.qemuExit).toBe(0);
    expect(j.hostLog).toBe(join(dir, 'logs', 'qemu.log'));
    expect(j.guestLog).toBe(join(dir, 'console.log'));
    expect(j.import.format).toBe('guest+host');
    expect(j.import.findings).toEqual([]);
    // the same files imported by hand give the same trace
    const again = cliJson(['import', '--guest', j.guestLog, '--host', j.hostLog, '--db', join(dir, 'by-hand.db')]);
    expect(j.import.byKind).toEqual(again.byKind);
    expect(j.import.byKind['iommu.translate']).toBeGreaterThan(100);
  });

  it('QEMU that writes no log: exit 1 with one line; a missing binary: exit 1', () => {
    const dir = tempDir();
    const r = cli(['capture', '--db', join(dir, 'c.db'), '--', process.execPath, '-e', 'process.exit(1)']);
    expect(r.code).toBe(1);
    const errs = r.stderr.trim().split('\n').filter((l) => !l.startsWith('running: '));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^dmareplay: .* exited with status 1 and wrote no trace log/);
    const m = cli(['capture', '--db', join(dir, 'c.db'), '--', join(dir, 'no-such-qemu')]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/cannot run .*no-such-qemu: no such program/);
    expect(existsSync(join(dir, 'c.db')) ? cliJson(['traces', '--db', join(dir, 'c.db')]) : []).toEqual([]);
  });

  it('no command line: usage error (exit 2)', () => {
    expect(cli(['capture', '--db', join(tempDir(), 'c.db')]).code).toBe(2);
  });
});

// make-traces.sh's build directory: kernel (kpkg/boot/vmlinuz-*) and initramfs.cpio.gz
const BUILD = process.env.DMAREPLAY_E2E_BUILD ?? resolve(ROOT, '../shared/traces-real/build');
const kernel = existsSync(join(BUILD, 'kpkg/boot')) ? readdirSync(join(BUILD, 'kpkg/boot')).find((f) => f.startsWith('vmlinuz-')) : undefined;
const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const e2e = !!kernel && existsSync(join(BUILD, 'initramfs.cpio.gz')) && haveQemu;

describe.skipIf(!e2e)(`capture end to end with qemu-system-x86_64 (TCG) on ${BUILD}${e2e ? '' : ': skipped, no QEMU or no make-traces.sh build (set DMAREPLAY_E2E_BUILD)'}`, () => {
  it('boots the guest with the net workload, imports both sides: markers shared, translations, no finding', () => {
    const dir = tempDir();
    const db = join(dir, 'e2e.db');
    const qemu = [
      'qemu-system-x86_64', '-machine', 'q35,kernel-irqchip=split', '-accel', 'tcg', '-m', '1024', '-smp', '1',
      '-display', 'none', '-monitor', 'none', '-no-reboot', '-nic', 'none',
      '-serial', `file:${join(dir, 'console.log')}`, '-serial', `file:${join(dir, 'ttyS1.raw')}`,
      '-kernel', join(BUILD, 'kpkg/boot', kernel!), '-initrd', join(BUILD, 'initramfs.cpio.gz'),
      '-append', 'console=ttyS0 loglevel=6 panic=-1 trace_event=iommu:*,swiotlb:* trace_buf_size=32M rt.case=capture rt.work=net intel_iommu=on iommu=nopt',
      '-device', 'intel-iommu,intremap=on,device-iotlb=on,caching-mode=on',
      '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0,iommu_platform=on,disable-legacy=on,ats=on',
    ];
    const r = cli(['capture', '--db', db, '--dir', dir, '--json', '--', ...qemu]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.guestLog).toBe(join(dir, 'ttyS1.raw'));
    expect(j.import.format).toBe('guest+host');
    expect(j.import.alignment.boundaries.map((b: { n: number }) => b.n)).toEqual(expect.arrayContaining([1, 7, 8, 9]));
    expect(j.import.byKind['iommu.map']).toBeGreaterThan(50);
    expect(j.import.byKind['iommu.translate']).toBeGreaterThan(50);
    expect(j.import.findings).toEqual([]);
    expect(readFileSync(j.hostLog, 'utf8')).toMatch(/^\d+@\d+\.\d{6}:/);
  }, 300_000);
});
