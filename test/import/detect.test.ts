import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { detectFileFormat, detectFormat } from '../../src/import/detect.js';

const FIX = join(fileURLToPath(new URL('.', import.meta.url)), '../../traces/real');

describe('detectFormat', () => {
  it('recognises QEMU log-backend lines', () => {
    expect(detectFormat(['8385@1795271543.814772:pci_cfg_write mch 00:00.0 @0xfc <- 0x5254000a'])).toBe('qemu-log');
    expect(detectFormat(['', '8365@1795271512.378958:vtd_context_cache_reset '])).toBe('qemu-log');
  });

  it('recognises ftrace by framing, header or event line', () => {
    expect(detectFormat(['=====RT-TRACE-BEGIN case=vtd-pt kernel=6.1.0-56-amd64 cmdline=x=====', '# tracer: nop'])).toBe('ftrace');
    expect(detectFormat(['# tracer: nop', '#'])).toBe('ftrace');
    expect(detectFormat(['#', '# entries-in-buffer/entries-written: 17/17   #P:1'])).toBeNull();
    expect(
      detectFormat(['            init-1       [000] .....     1.386050: add_device_to_group: IOMMU: groupID=0 device=0000:00:00.0']),
    ).toBe('ftrace');
  });

  it('returns null for other text', () => {
    expect(detectFormat([])).toBeNull();
    expect(detectFormat(['', '   '])).toBeNull();
    expect(detectFormat(['[    3.759565] DMAR: DRHD: handling fault status reg 2'])).toBeNull();
    expect(detectFormat(['hello', 'world'])).toBeNull();
  });

  it('skips undecidable lines until a decisive one', () => {
    expect(detectFormat(['some banner', '8328@1795271462.168891:virtqueue_flush vq 0x7ff7c1838010 count 1'])).toBe('qemu-log');
  });
});

describe('detectFileFormat on the real excerpts', () => {
  it.each([
    ['qemu-vtd-fault.p010-fault-e1000-tx.log', 'qemu-log'],
    ['qemu-vtd-lazy.p005-blk-write-buffered.log', 'qemu-log'],
    ['qemu-vtd-pt.boot-dmar-enable.log', 'qemu-log'],
    ['qemu-swiotlb.p006-blk-read-small-direct.log', 'qemu-log'],
    ['guest-vtd-fault.txt', 'ftrace'],
    ['guest-vtd-pt.txt', 'ftrace'],
    ['guest-vtd-lazy.p005-blk-write-buffered.txt', 'ftrace'],
    ['guest-swiotlb.p006-blk-read-small-direct.txt', 'ftrace'],
    ['stats-vtd-fault.txt', null],
  ])('%s → %s', async (file, want) => {
    expect(await detectFileFormat(join(FIX, file))).toBe(want);
  });

  it('accepts a stream', async () => {
    expect(await detectFileFormat(Readable.from(['# tracer: nop\n']))).toBe('ftrace');
  });
});
