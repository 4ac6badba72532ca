import type { Command } from 'commander';
import { stateAt } from '../src/app/state.js';
import { UsageError } from '../src/errors.js';
import { bdf } from '../src/events/format.js';
import { type CommonOpts, bold, dbPath, dim, out, parseAddr, parseCount, printJson, red, withCommon } from './common.js';

interface Opts extends CommonOpts {
  at?: string;
  prev?: string;
  next?: string;
  gpa?: string;
  iova?: string;
  len?: string;
}

export function stateCommand(program: Command): void {
  withCommon(program.command('state <trace>'))
    .description('the world after event --at: IOMMU map, device IOTLB, rings, and memory at a GPA/IOVA')
    .requiredOption('--at <seq>', 'show the state after this event (0 = before the first)')
    .option('--gpa <addr>', 'also show guest memory at this GPA')
    .option('--iova <addr>', 'also show this IOVA as the IOMMU and as the device IOTLB resolve it')
    .option('--len <n>', 'bytes of memory to show', '64')
    .option('--prev <kind>', 'go to the previous event of this kind before --at (e.g. iotlb.invalidate), from the nearest checkpoint')
    .option('--next <kind>', 'go to the next event of this kind after --at')
    .action((id: string, o: Opts) => {
      const at = parseCount('--at', o.at, 0);
      if (at === undefined) throw new UsageError('--at is required');
      if (o.prev && o.next) throw new UsageError('--prev and --next are exclusive');
      const s = stateAt(dbPath(o), id, { at, prev: o.prev, next: o.next, gpa: parseAddr('--gpa', o.gpa), iova: parseAddr('--iova', o.iova), len: parseCount('--len', o.len, 1, 65536) });
      if (o.json) {
        const { world: _w, ...rest } = s;
        return printJson(rest);
      }
      const p = s.plain;
      out(`${bold(`trace ${s.trace} after event #${s.at}`)} ${dim(`(from checkpoint #${s.fromCheckpoint}, folded ${s.folded} events; state hash ${s.stateHash.slice(0, 16)})`)}`);
      if (s.event) out(`event: ${s.event.kind} by ${s.event.actor}`);
      out(`${p.memTable.length} memory region(s), ${s.world.mem.size} guest pages touched, ${p.passes} device passes${p.protected ? ', protected guest' : ''}`);
      for (const d of p.devices) {
        out(bold(`device ${bdf(d.dev)} ${d.name}: path ${d.path}, translate ${d.translate}, ${d.useDmaApi ? 'DMA API' : 'no DMA API'}, ${d.backend}${d.probed ? '' : red(' REFUSED')}`));
        if (d.iommu.length) out(`  IOMMU mappings (${d.iommu.length} pages)`);
        for (const m of d.iommu.slice(0, 32)) out(`    iova ${m.iova} → gpa ${m.gpa} ${m.perm}  (#${m.seq})`);
        if (d.iotlb.entries.length || d.iotlb.pending.length) out(`  device IOTLB (${d.iotlb.entries.length} entries, ${d.iotlb.pending.length} pending misses)`);
        for (const e of d.iotlb.entries.slice(0, 32)) out(`    [${e.start}, ${e.last}] → hva ${e.uaddr} ${e.perm}  (UPDATE #${e.seq})`);
        for (const m of d.iotlb.pending) out(`    pending MISS iova ${m.iova} ${m.perm} (#${m.seq})`);
        if (d.dmaLive.length) out(`  live DMA mappings: ${d.dmaLive.length}`);
        for (const m of d.dmaLive.slice(0, 16)) out(`    dma ${m.dma} ← phys ${m.phys} +${m.size} ${m.dir} ${m.type} (#${m.seq})`);
      }
      for (const i of p.vmm.invals) out(`  ${red('owed INVALIDATE')} dev ${bdf(i.dev)} [${i.iova} +${i.size}] requested at #${i.req}, due after pass ${i.due}`);
      if (p.swiotlb.slots.length) out(bold(`swiotlb: ${p.swiotlb.slots.length} live bounce mappings`));
      for (const r of p.rings)
        out(
          bold(`vq ${r.q}`) +
            ` (dev ${bdf(r.dev)}, ${r.packed ? 'packed' : 'split'}, num ${r.num}): avail ${r.availIdx}, device last_avail ${r.lastAvail}, used ${r.usedIdx}, driver last_used ${r.lastUsed}, ${r.extra.length} in flight${r.parked ? red(' PARKED') : ''}${r.broken ? red(' BROKEN') : ''}${r.kicked ? ' kicked' : ''}`,
        );
      const m = s.memory as Record<string, any>;
      if (m.gpa) out(`${bold('gpa ' + m.gpa.gpa)}: ${m.gpa.bytes}`);
      for (const v of (m.iova ?? []) as any[]) {
        out(bold(`iova ${v.iova} (device ${bdf(v.dev)})`) + (v.coherent ? '' : red('  INCOHERENT')));
        out(`  IOMMU:        ${v.iommu ? `gpa ${v.iommu.gpa} (${v.iommu.perm}, #${v.iommu.mappedAt}): ${v.iommu.bytes}` : 'not mapped'}`);
        out(`  device IOTLB: ${v.deviceIotlb ? `gpa ${v.deviceIotlb.gpa} (UPDATE #${v.deviceIotlb.entry}): ${v.deviceIotlb.bytes}` : 'no entry'}`);
      }
    });
}
