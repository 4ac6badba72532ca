// One line per event for `log` and for causal chains: seq, actor, kind, then the fields.
import { type DmaEvent, fieldsOf } from './schema.js';

const FLAG_NAMES: [number, string][] = [
  [1, 'NEXT'],
  [2, 'WRITE'],
  [4, 'INDIRECT'],
];

export function formatEvent(ev: DmaEvent): string {
  const rec = ev as unknown as Record<string, unknown>;
  const parts: string[] = [];
  for (const [name, spec] of fieldsOf(ev.kind)) {
    const v = rec[name];
    if (spec === 'u64') parts.push(`${name}=0x${(v as bigint).toString(16)}`);
    else if (spec === 'bytes') {
      const b = v as Uint8Array;
      if (b.length) parts.push(`${name}=${b.length}B:${Buffer.from(b.subarray(0, 8)).toString('hex')}${b.length > 8 ? '…' : ''}`);
    } else if (spec === 'descs')
      parts.push(
        `${name}=[${(v as { idx: number; addr: bigint; len: number; flags: number; next: number }[])
          .map((d) => {
            const f = FLAG_NAMES.filter(([bit]) => d.flags & bit).map(([, n]) => n);
            return `${d.idx}:0x${d.addr.toString(16)}+${d.len}${f.length ? ' ' + f.join('|') : ''}${d.flags & 1 ? `→${d.next}` : ''}`;
          })
          .join(' ')}]`,
      );
    else if (spec === 'segs')
      parts.push(`${name}=[${(v as { gpa: bigint; len: number; write: number }[]).map((g) => `0x${g.gpa.toString(16)}+${g.len}${g.write ? ' W' : ''}`).join(' ')}]`);
    else if (spec === 'seqs') parts.push(`${name}=[${(v as number[]).map((s) => '#' + s).join(' ')}]`);
    else if (name === 'dev' && spec === 'u16') parts.push(`dev=${bdf(v as number)}`);
    else if (spec === 'seq') {
      if (v) parts.push(`${name}=#${v as number}`);
    } else if (spec === 'str' && name === 'message') continue;
    else parts.push(`${name}=${String(v)}`);
  }
  if (ev.kind === 'finding') parts.push(`— ${ev.message}`);
  const cause = ev.cause ? ` ←#${ev.cause}` : '';
  return `#${ev.seq} ${ev.actor.padEnd(5)} ${ev.kind.padEnd(16)} ${parts.join(' ')}${cause}`;
}

/** `iotlb.*`-style filter: a glob with * over kind names, comma-separated alternatives. */
export function kindMatcher(pattern: string | undefined): (kind: string) => boolean {
  if (!pattern) return () => true;
  const res = pattern.split(',').map((p) => new RegExp('^' + p.trim().replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$'));
  return (kind) => res.some((r) => r.test(kind));
}

/** A PCI requester id as bus:dev.fn (0x18 → 00:03.0); 0xffff when a trace does not say. */
export function bdf(id: number): string {
  if (id === 0xffff) return '?';
  return `${(id >> 8).toString(16).padStart(2, '0')}:${((id >> 3) & 0x1f).toString(16).padStart(2, '0')}.${id & 7}`;
}
