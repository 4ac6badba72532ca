import type { Command } from 'commander';
import { traceStats } from '../src/app/stats.js';
import { type CommonOpts, bold, dbPath, dim, out, printJson, withCommon } from './common.js';

const list = (r: Record<string, number>): string =>
  Object.entries(r)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '-';

export function statsCommand(program: Command): void {
  withCommon(program.command('stats <trace>'))
    .description('summarize a trace: counts by kind; IOMMU maps/unmaps/translations, invalidations, faults, swiotlb bounces per device and size')
    .action((id: string, o: CommonOpts) => {
      const s = traceStats(dbPath(o), id);
      if (o.json) return printJson(s);
      out(`${bold('trace ' + s.trace)} (${s.name}, ${s.source}${s.complete ? '' : ', incomplete'}): ${s.events} events`);
      out(`  by kind: ${list(s.byKind)}`);
      const m = s.iommu;
      if (m.maps || m.unmaps || m.translations || Object.keys(m.invalidations).length) {
        out(`  IOMMU: ${m.maps} maps (${BigInt(m.mappedBytes)} bytes), ${m.unmaps} unmaps, ${m.translations} translations (${list(m.translationsByCache)})`);
        if (m.translations) out(`    translations by device: ${list(m.translationsByDevice)}`);
        out(`    invalidations: ${list(m.invalidations)}`);
      }
      for (const f of s.faults) out(`  faults: ${f.count} × ${f.write ? 'write' : 'read'} by ${f.device}, reason ${f.reason} (first #${f.firstSeq} at ${f.firstIova})`);
      if (s.swiotlb.bounces) {
        out(`  swiotlb: ${s.swiotlb.bounces} bounces, ${BigInt(s.swiotlb.bytes)} bytes`);
        for (const d of s.swiotlb.byDevice) out(`    ${d.device}: ${d.bounces} bounces, ${BigInt(d.bytes)} bytes; by size: ${list(d.bySize)}`);
      }
      const t = s.deviceIotlb;
      if (t.misses || t.invalidations || Object.keys(t.updates).length)
        out(`  device IOTLB (vhost): ${t.misses} misses (${list(t.byDevice)}), UPDATEs ${list(t.updates)}, ${t.invalidations} INVALIDATEs`);
      if (s.order) out(`  order: ${s.order.insideLiveMapping} of ${s.order.translations} host translations (${(s.order.share * 100).toFixed(1)}%) placed inside a live guest mapping of their IOVA and GPA`);
      if (Object.keys(s.blocked).length) out(`  blocked (no mapping, no fault raised): ${list(s.blocked)}`);
      for (const n of s.notes) out(yellowNote(n));
      const phases = s.markers.filter((x) => x.side === 'host' || s.markers.every((y) => y.side === 'guest'));
      if (phases.length) out(`  markers: ${phases.map((x) => (x.name ? `${x.n} ${x.name}` : String(x.n))).join(', ')}`);
      if (Object.keys(s.opaqueByEvent).length) out(dim(`  opaque: ${list(s.opaqueByEvent)}`));
      out(`  findings: ${list(s.findingsByClass)}`);
    });
}

const yellowNote = (n: string): string => `  note: ${n}`;
