// The report as one self-contained HTML file: inline CSS, inline SVG timelines, a few lines of
// inline JS (hover highlighting), no external resource of any kind, so it opens offline and can be
// attached to a bug report. Every text from the trace is HTML-escaped.
import { bdf } from '../events/format.js';
import { TRACKS } from './perfetto.js';
import type { ReportData, ReportFinding } from './report.js';

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const LANE_ORDER = TRACKS.map((t) => t.name as string);
const COLORS = ['#2563eb', '#059669', '#0d9488', '#0891b2', '#0284c7', '#7c3aed', '#c026d3', '#b45309', '#65a30d', '#dc2626'];
const laneColor = (lane: string) => COLORS[Math.max(0, LANE_ORDER.indexOf(lane)) % COLORS.length]!;

const CSS = `
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937; background: #fff; }
body { margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #e5e7eb; padding-bottom: .3rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: .2rem 0; }
.sub { color: #6b7280; margin: 0; }
code, pre, .mono, td { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .82rem; }
.finding { border: 1px solid #fecaca; border-left: 4px solid #dc2626; border-radius: 6px; padding: .8rem 1rem; margin: 1rem 0; background: #fffafa; }
.cls { color: #b91c1c; font-weight: 700; }
.msg { margin: .4rem 0 .8rem; line-height: 1.4; }
.timeline { display: block; max-width: 100%; background: #fafafa; border: 1px solid #e5e7eb; border-radius: 4px; }
.timeline text { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px; fill: #374151; }
.timeline .lane-label { font-family: system-ui, sans-serif; font-size: 12px; fill: #111827; }
.timeline .step { cursor: pointer; }
.timeline .step.hl circle, .timeline .step.hl rect { stroke: #111827; stroke-width: 3; }
table { border-collapse: collapse; margin: .5rem 0; width: 100%; }
th, td { text-align: left; padding: .2rem .5rem; border-bottom: 1px solid #f3f4f6; vertical-align: top; }
th { font-family: system-ui, sans-serif; font-size: .8rem; color: #6b7280; font-weight: 600; }
tr.hl td { background: #fef3c7; }
tr.focus td { background: #fee2e2; font-weight: 600; }
tr.after td { color: #92400e; }
.bad { color: #b91c1c; font-weight: 700; } .ok { color: #047857; }
pre.cmd { background: #111827; color: #f9fafb; padding: .7rem 1rem; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; }
.dev { margin: .8rem 0 1.2rem; }
.legend span { display: inline-block; margin-right: 1rem; font-size: .8rem; }
`;

// hover a step (circle or row) to highlight it in both the timeline and the table
const JS = `
document.querySelectorAll('[data-seq]').forEach(function (el) {
  var scope = el.closest('.finding');
  if (!scope) return;
  el.addEventListener('mouseenter', function () { scope.querySelectorAll('[data-seq="' + el.dataset.seq + '"]').forEach(function (x) { x.classList.add('hl'); }); });
  el.addEventListener('mouseleave', function () { scope.querySelectorAll('.hl').forEach(function (x) { x.classList.remove('hl'); }); });
});
document.documentElement.dataset.ready = 'yes';
`;

/** One causal chain on the actors' lanes: an event per column in seq order, arrows along the chain. */
export function timelineSvg(f: ReportFinding): string {
  const chain = f.steps.filter((s) => !s.after);
  const after = f.steps.filter((s) => s.after);
  const points = [...chain, { seq: f.seq, kind: f.class, actor: 'check', lane: 'findings', text: f.message, finding: true as const }, ...after].sort((a, b) => a.seq - b.seq);
  const lanes = [...new Set(points.map((p) => p.lane))].sort((a, b) => LANE_ORDER.indexOf(a) - LANE_ORDER.indexOf(b));
  const LEFT = 190, COL = 120, ROW = 44, TOP = 24;
  const width = LEFT + COL * points.length + 20;
  const height = TOP + ROW * lanes.length + 10;
  const x = (i: number) => LEFT + COL * i + COL / 2;
  const y = (lane: string) => TOP + ROW * lanes.indexOf(lane) + ROW / 2;
  const out: string[] = [];
  out.push(`<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="causal chain of ${esc(f.class)} at #${f.seq}">`);
  out.push(`<defs><marker id="arrow-${f.seq}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4b5563"/></marker></defs>`);
  lanes.forEach((l, i) => {
    const ly = TOP + ROW * i;
    out.push(`<rect x="0" y="${ly}" width="${width}" height="${ROW}" fill="${i % 2 ? '#f3f4f6' : '#ffffff'}"/>`);
    out.push(`<text class="lane-label" x="8" y="${ly + ROW / 2 + 4}">${esc(l)}</text>`);
  });
  out.push(`<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${height - 10}" stroke="#d1d5db"/>`);
  const idx = new Map(points.map((p, i) => [p, i]));
  const seqLine = [...chain, { seq: f.seq, lane: 'findings' }].sort((a, b) => a.seq - b.seq);
  const posOf = (p: { seq: number; lane: string }) => points.findIndex((q) => q.seq === p.seq && q.lane === p.lane);
  for (let i = 1; i < seqLine.length; i++) {
    const a = posOf(seqLine[i - 1]!), b = posOf(seqLine[i]!);
    out.push(`<line x1="${x(a)}" y1="${y(seqLine[i - 1]!.lane)}" x2="${x(b) - 9}" y2="${y(seqLine[i]!.lane)}" stroke="#4b5563" stroke-width="1.5" marker-end="url(#arrow-${f.seq})"/>`);
  }
  const access = chain.filter((s) => s.kind === 'dev.access').at(-1);
  for (const l of after) {
    if (!access) continue;
    out.push(`<line x1="${x(posOf(access))}" y1="${y(access.lane)}" x2="${x(posOf(l)) - 9}" y2="${y(l.lane)}" stroke="#d97706" stroke-width="1.5" stroke-dasharray="5 4" marker-end="url(#arrow-${f.seq})"/>`);
  }
  for (const p of points) {
    const i = idx.get(p)!;
    const cx = x(i), cy = y(p.lane);
    const isFinding = 'finding' in p;
    const late = 'after' in p && p.after;
    out.push(`<g class="step" data-seq="${p.seq}"><title>${esc(p.text)}</title>`);
    if (isFinding) out.push(`<rect x="${cx - 8}" y="${cy - 8}" width="16" height="16" transform="rotate(45 ${cx} ${cy})" fill="#dc2626"/>`);
    else out.push(`<circle cx="${cx}" cy="${cy}" r="8" fill="${late ? '#d97706' : laneColor(p.lane)}"/>`);
    out.push(`<text x="${cx}" y="${cy - 12}" text-anchor="middle">#${p.seq}</text>`);
    out.push(`<text x="${cx}" y="${cy + 21}" text-anchor="middle">${esc(isFinding ? p.kind : p.kind)}</text></g>`);
  }
  out.push('</svg>');
  return out.join('');
}

function findingHtml(f: ReportFinding): string {
  const rows = f.steps
    .map((s) => `<tr data-seq="${s.seq}"${s.after ? ' class="after"' : ''}><td>#${s.seq}</td><td>${esc(s.lane)}</td><td>${esc(s.kind)}</td><td>${esc(s.text)}${s.after ? ' <em>(delivered after the access)</em>' : ''}</td></tr>`)
    .join('');
  return `<article class="finding" id="finding-${f.seq}"><h3><span class="cls">${esc(f.class)}</span> at #${f.seq}</h3><p class="msg">${esc(f.message)}</p>${timelineSvg(f)}<table class="chain"><thead><tr><th>seq</th><th>lane</th><th>kind</th><th>event</th></tr></thead><tbody>${rows}</tbody></table></article>`;
}

function stateHtml(d: ReportData): string {
  const p = d.state;
  const parts: string[] = [];
  parts.push(`<p class="sub">after event ${esc(d.atEvent ?? '#' + d.at)}; ${p.devices.length} device(s), ${p.passes} device passes${p.protected ? ', protected guest' : ''}</p>`);
  for (const v of (d.iova as { dev: number; iova: string; iommu: { gpa: string; perm: string; mappedAt: number } | null; deviceIotlb: { gpa: string; entry: number } | null; coherent: boolean }[] | null) ?? []) {
    parts.push(
      `<p class="mono">IOVA ${esc(v.iova)} on ${esc(bdf(v.dev))}: IOMMU → ${v.iommu ? `GPA ${esc(v.iommu.gpa)} (map #${v.iommu.mappedAt})` : 'not mapped'}; device IOTLB → ${v.deviceIotlb ? `GPA ${esc(v.deviceIotlb.gpa)} (UPDATE #${v.deviceIotlb.entry})` : 'no entry'} <span class="${v.coherent ? 'ok' : 'bad'}">${v.coherent ? 'coherent' : 'INCOHERENT'}</span></p>`,
    );
  }
  // the rows that translate the focus IOVA (the first finding's access): the IOMMU page and the IOTLB entry
  const focus = ((d.iova as { iova: string }[] | null) ?? [])[0]?.iova;
  const f = focus ? BigInt(focus) : null;
  const inPage = (iova: string) => f !== null && BigInt(iova) === (f & ~0xfffn);
  const inEntry = (start: string, last: string) => f !== null && BigInt(start) <= f && f <= BigInt(last);
  for (const dev of p.devices) {
    parts.push(`<div class="dev"><h3>${esc(bdf(dev.dev))} ${esc(dev.name)}: path ${esc(dev.path)}, translate ${esc(dev.translate)}, ${esc(dev.backend)}</h3>`);
    if (dev.iommu.length)
      parts.push(`<table class="iommu"><thead><tr><th colspan="4">IOMMU page tables (${dev.iommu.length} pages)</th></tr><tr><th>IOVA</th><th>GPA</th><th>perm</th><th>map</th></tr></thead><tbody>${dev.iommu.slice(0, 64).map((m) => `<tr${inPage(m.iova) ? ' class="focus"' : ''}><td>${esc(m.iova)}</td><td>${esc(m.gpa)}</td><td>${esc(m.perm)}</td><td>#${m.seq}</td></tr>`).join('')}</tbody></table>`);
    if (dev.iotlb.entries.length || dev.iotlb.pending.length)
      parts.push(
        `<table class="iotlb"><thead><tr><th colspan="4">device IOTLB (${dev.iotlb.entries.length} entries, ${dev.iotlb.pending.length} pending misses)</th></tr><tr><th>IOVA range</th><th>HVA</th><th>perm</th><th>UPDATE</th></tr></thead><tbody>${dev.iotlb.entries
          .slice(0, 64)
          .map((e) => `<tr${inEntry(e.start, e.last) ? ' class="focus"' : ''}><td>[${esc(e.start)}, ${esc(e.last)}]</td><td>${esc(e.uaddr)}</td><td>${esc(e.perm)}</td><td>#${e.seq}</td></tr>`)
          .join('')}${dev.iotlb.pending.map((m) => `<tr><td>${esc(m.iova)}</td><td>pending MISS (q ${m.q})</td><td>${esc(m.perm)}</td><td>#${m.seq}</td></tr>`).join('')}</tbody></table>`,
      );
    parts.push('</div>');
  }
  if (p.vmm.invals.length)
    parts.push(`<table class="owed"><thead><tr><th colspan="4" class="bad">invalidations QEMU still owes the device IOTLB</th></tr><tr><th>device</th><th>IOVA</th><th>size</th><th>requested at</th></tr></thead><tbody>${p.vmm.invals.map((i) => `<tr><td>${esc(bdf(i.dev))}</td><td>${esc(i.iova)}</td><td>${esc(i.size)}</td><td>#${i.req}</td></tr>`).join('')}</tbody></table>`);
  if (p.rings.length)
    parts.push(
      `<table class="rings"><thead><tr><th>vq</th><th>device</th><th>layout</th><th>avail idx</th><th>device last_avail</th><th>used idx</th><th>driver last_used</th><th>in flight</th></tr></thead><tbody>${p.rings
        .map((r) => `<tr><td>${r.q}</td><td>${esc(bdf(r.dev))}</td><td>${r.packed ? 'packed' : 'split'} num ${r.num}</td><td>${r.availIdx}</td><td>${r.lastAvail}</td><td>${r.usedIdx}</td><td>${r.lastUsed}</td><td>${r.extra.length}${r.parked ? ' <span class="bad">PARKED</span>' : ''}${r.broken ? ' <span class="bad">BROKEN</span>' : ''}</td></tr>`)
        .join('')}</tbody></table>`,
    );
  return parts.join('\n');
}

export function reportHtml(d: ReportData): string {
  const t = d.trace;
  const title = `dmareplay: trace ${t.id} (${t.name})`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body>
<header><h1>${esc(title)}</h1>
<p class="sub">${t.events} events, ${t.source === 'sim' ? `simulated, seed ${esc(t.seed)}` : 'imported'}${t.complete ? '' : ', <span class="bad">incomplete</span>'}; ${d.findings.length + d.more} finding(s); time is the event seq</p></header>
<section id="findings"><h2>Findings</h2>
${d.findings.length ? d.findings.map(findingHtml).join('\n') : '<p class="ok">no findings</p>'}
${d.more ? `<p class="sub">… ${d.more} more (dmareplay log ${t.id} --kind finding)</p>` : ''}
</section>
<section id="state"><h2>State after #${d.at}</h2>
${stateHtml(d)}
</section>
<section id="reproduce"><h2>Reproduce</h2>
${d.commands.map((c) => `<p class="sub">${esc(c.what)}</p><pre class="cmd">$ ${esc(c.cmd)}</pre>`).join('\n')}
</section>
<script>${JS}</script>
</body></html>
`;
}
