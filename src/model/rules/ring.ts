// Rules for the virtqueues: the driver side as drivers/virtio/virtio_ring.c keeps it (free list,
// desc_extra, avail index, wrap counters) and the device side as drivers/vhost/vhost.c does
// (last_avail_idx, used index, kick, park on a miss, vq_err). The ring structures themselves are
// written into guest memory, where a device reads them.
import type { EventOf } from '../../events/schema.js';
import { removeAt } from '../list.js';
import { fromNum, writeMem, writeUint } from '../memory.js';
import { availPending, encodeDesc, encodePacked, packedFlags, usedFlags, VRING_DESC_F_INDIRECT } from '../vring.js';
import { ApplyError, ringOf, type RingState, type World } from '../world.js';
import type { RulesFor } from './rule.js';

type RingKinds = 'vring.setup' | 'vring.post' | 'vring.kick' | 'vq.event' | 'vring.used' | 'vring.irq' | 'vring.getbuf' | 'vq.error' | 'vq.prefetch' | 'dev.pass' | 'vq.log' | 'vq.pop' | 'vq.fill';

export const RING_RULES: RulesFor<RingKinds> = {
  'vring.setup': {
    models: 'vring_create_virtqueue (driver) and VHOST_SET_VRING_NUM/ADDR (vhost): an empty ring, every descriptor free',
    evolve(w, ev) {
      const free: number[] = [];
      for (let i = ev.num - 1; i >= 0; i--) free.push(i);
      w.rings[ev.q] = {
        q: ev.q,
        dev: ev.dev,
        num: ev.num,
        packed: !!ev.packed,
        eventIdx: !!ev.eventIdx,
        desc: ev.desc,
        avail: ev.avail,
        used: ev.used,
        descGpa: ev.descGpa,
        availGpa: ev.availGpa,
        usedGpa: ev.usedGpa,
        free,
        extra: new Map(),
        availIdx: 0,
        lastUsed: 0,
        availWrap: 1,
        usedWrap: 1,
        lastUsedWrap: 1,
        lastAvail: 0,
        usedIdx: 0,
        served: 0,
        kicked: false,
        parked: false,
        broken: false,
        meta: { desc: 0, avail: 0, used: 0 },
        enabled: null,
      };
    },
  },
  'vring.post': {
    models: 'virtqueue_add_split / virtqueue_add_packed: descriptors written, desc_extra kept, avail index published',
    evolve: post,
  },
  'vring.kick': {
    models: 'virtqueue_kick → vhost_poll_queue',
    evolve(w, ev) {
      ringOf(w, ev.q, ev.seq).kicked = true;
    },
  },
  'vq.event': {
    models: 'the event-index field written (vhost_update_avail_event / the driver’s used_event)',
    evolve(w, ev, owned) {
      writeUint(w.mem, ev.gpa, 2, ev.idx, owned);
    },
  },
  'vring.used': {
    models: 'vhost_add_used_n (split) / vhost_add_used_packed: the used element and index written',
    evolve(w, ev, owned) {
      const r = ringOf(w, ev.q, ev.seq);
      if (r.packed) {
        const posted = r.extra.get(ev.id);
        const chain = posted ? (posted.table ? 1 : posted.chain.length) : 1;
        const at = ev.gpa + fromNum(16 * ev.slot);
        writeUint(w.mem, at + 8n, 4, ev.len, owned);
        writeUint(w.mem, at + 12n, 2, ev.id, owned);
        writeUint(w.mem, at + 14n, 2, usedFlags(ev.wrap), owned);
        if (ev.slot + chain >= r.num) r.usedWrap ^= 1;
        r.usedIdx = ev.usedIdx;
        r.lastAvail = ev.usedIdx;
        r.served++;
        return;
      }
      const at = ev.gpa + fromNum(4 + 8 * ev.slot);
      writeUint(w.mem, at, 4, ev.id, owned);
      writeUint(w.mem, at + 4n, 4, ev.len, owned);
      writeUint(w.mem, ev.gpa + 2n, 2, ev.usedIdx, owned);
      r.usedIdx = ev.usedIdx;
      r.lastAvail = (r.lastAvail + 1) & 0xffff;
      r.served++;
    },
  },
  'vring.irq': {
    models: 'vhost_signal → vring_interrupt',
    evolve(w) {
      w.guest.irq = true;
    },
  },
  'vring.getbuf': {
    models: 'virtqueue_get_buf_ctx (detach_buf_split / detach_buf_packed): the chain’s descriptors back on the free list',
    evolve(w, ev) {
      const r = ringOf(w, ev.q, ev.seq);
      const posted = r.extra.get(ev.id);
      if (!posted) {
        // BAD_RING in virtqueue_get_buf: the checkers report it; the recorded reap moves last_used on
        r.lastUsed = ev.lastUsed;
        w.guest.irq = false;
        return;
      }
      r.extra.delete(ev.id);
      if (r.packed || posted.table) r.free.push(ev.id);
      else for (let i = posted.chain.length - 1; i >= 0; i--) r.free.push(posted.chain[i]!.idx);
      if (r.packed && ev.lastUsed <= r.lastUsed) r.lastUsedWrap ^= 1; // the driver's used wrap counter
      r.lastUsed = ev.lastUsed;
      w.guest.irq = false;
    },
  },
  'vq.error': {
    models: 'vq_err(): vhost stops processing the queue',
    evolve(w, ev) {
      ringOf(w, ev.q, ev.seq).broken = true;
    },
  },
  'vq.prefetch': {
    models: 'vq_meta_prefetch → iotlb_access_ok: the ring translations cached in vq->meta_iotlb',
    evolve(w, ev) {
      ringOf(w, ev.q, ev.seq).meta = { desc: ev.desc, avail: ev.avail, used: ev.used };
    },
  },
  'dev.pass': {
    models: 'one vhost handler pass (handle_tx / handle_rx with vq->mutex held); IOTLB messages land between passes',
    evolve(w, ev) {
      if (ev.begin) {
        w.inPass = true;
        return;
      }
      w.inPass = false;
      w.passes++;
      const r = ringOf(w, ev.q, ev.seq);
      r.kicked = !r.broken && availPending(w.mem, r); // work left: vhost_poll_queue again
    },
  },
  'vq.log': { models: 'vhost dirty logging (log_write) during a pass (an observation)' },
  'vq.pop': { models: 'QEMU virtqueue_pop (imported; an observation)' },
  'vq.fill': { models: 'QEMU virtqueue_fill / virtqueue_flush (imported; an observation)' },
};

function post(w: World, ev: EventOf<'vring.post'>, owned?: Set<Uint8Array>): void {
  const r = ringOf(w, ev.q, ev.seq);
  if (r.packed) {
    // descriptors at ring positions slot, slot+1, ... with the driver's wrap counter at each
    let wrap = ev.wrap;
    const entries = ev.table ? [{ addr: ev.table, len: 16 * ev.chain.length, flags: VRING_DESC_F_INDIRECT }] : ev.chain;
    entries.forEach((d, i) => {
      const pos = (ev.slot + i) % r.num;
      if (i > 0 && pos === 0) wrap ^= 1;
      writeMem(w.mem, r.descGpa + fromNum(16 * pos), encodePacked(d.addr, d.len, ev.head, packedFlags(d.flags, wrap)), owned);
    });
    if (ev.slot + entries.length >= r.num) r.availWrap ^= 1;
    takeFree(r, ev.head, ev.seq);
    r.extra.set(ev.head, { chain: ev.chain.map(copyDesc), sg: ev.sg.map((g) => ({ gpa: g.gpa, len: g.len, write: g.write })), table: ev.table, tableGpa: ev.tableGpa, op: ev.cause });
    r.availIdx = ev.availIdx;
    return;
  }
  if (ev.table) {
    // the indirect table itself was written (mem.write) before it was mapped
    writeMem(w.mem, r.descGpa + fromNum(16 * ev.head), encodeDesc({ idx: ev.head, addr: ev.table, len: 16 * ev.chain.length, flags: VRING_DESC_F_INDIRECT, next: 0 }), owned);
    takeFree(r, ev.head, ev.seq);
  } else {
    for (const d of ev.chain) {
      writeMem(w.mem, r.descGpa + fromNum(16 * d.idx), encodeDesc(d), owned);
      takeFree(r, d.idx, ev.seq);
    }
  }
  r.extra.set(ev.head, { chain: ev.chain.map(copyDesc), sg: ev.sg.map((g) => ({ gpa: g.gpa, len: g.len, write: g.write })), table: ev.table, tableGpa: ev.tableGpa, op: ev.cause });
  writeUint(w.mem, r.availGpa + fromNum(4 + 2 * ev.slot), 2, ev.head, owned);
  writeUint(w.mem, r.availGpa + 2n, 2, ev.availIdx, owned);
  r.availIdx = ev.availIdx;
}

function takeFree(r: RingState, idx: number, seq: number): void {
  const at = r.free.lastIndexOf(idx);
  if (at < 0) throw new ApplyError(`event ${seq}: descriptor ${idx} is not free`);
  removeAt(r.free, at);
}

const copyDesc = (d: { idx: number; addr: bigint; len: number; flags: number; next: number }) => ({ idx: d.idx, addr: d.addr, len: d.len, flags: d.flags, next: d.next });

/** vhost_vq_meta_reset: every UPDATE and INVALIDATE drops the cached ring translations of the device (the map objects they point into may be freed). */
export function resetMeta(w: World, d: number): void {
  for (const r of w.rings) if (r.dev === d && (r.meta.desc || r.meta.avail || r.meta.used)) r.meta = { desc: 0, avail: 0, used: 0 };
}
