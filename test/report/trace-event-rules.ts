// The rules of the Chrome/Perfetto Trace Event Format that a viewer relies on, as a checker:
// returns the list of violations (empty = valid). From the format's documentation: every event has
// ph/pid/tid/ts; X has a duration; B/E pair up and nest per thread (and X slices nest with them);
// async b/e carry an id and pair by (pid, cat, id, name); flow s/t/f carry an id, come in order
// (one s, then t's, one f) and each binds to a slice that encloses its ts on its own thread.
export interface Ev {
  ph: string;
  name?: string;
  cat?: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  id?: string | number;
  s?: string;
  bp?: string;
  args?: Record<string, unknown>;
}

const KNOWN_PH = new Set(['B', 'E', 'X', 'i', 'I', 'b', 'e', 'n', 's', 't', 'f', 'M', 'C']);
const META = new Set(['process_name', 'thread_name', 'process_sort_index', 'thread_sort_index', 'process_labels']);

export function traceEventViolations(events: Ev[]): string[] {
  const bad: string[] = [];
  const where = (e: Ev, i: number) => `event ${i} (${e.ph} ${e.name ?? ''} pid ${e.pid} tid ${e.tid} ts ${e.ts})`;
  // slices per thread, as intervals
  const slices = new Map<string, { start: number; end: number }[]>();
  const track = (e: Ev) => `${e.pid}/${e.tid}`;
  const add = (e: Ev, start: number, end: number) => {
    let l = slices.get(track(e));
    if (!l) slices.set(track(e), (l = []));
    l.push({ start, end });
  };
  const openB = new Map<string, Ev[]>();
  const openAsync = new Map<string, Ev>();
  const flows = new Map<string, Ev[]>();
  const byTrackTs = events.map((e, i) => ({ e, i })).sort((a, b) => a.e.ts - b.e.ts || a.i - b.i);
  events.forEach((e, i) => {
    for (const k of ['ph', 'pid', 'tid', 'ts'] as const) if (e[k] === undefined) bad.push(`${where(e, i)}: no ${k}`);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) bad.push(`${where(e, i)}: ts must be a finite number >= 0`);
    if (!KNOWN_PH.has(e.ph)) bad.push(`${where(e, i)}: unknown phase`);
    if (e.ph !== 'E' && e.ph !== 'M' && typeof e.name !== 'string') bad.push(`${where(e, i)}: no name`);
    if (e.ph === 'M' && (!META.has(e.name ?? '') || typeof e.args !== 'object')) bad.push(`${where(e, i)}: bad metadata event`);
    if (e.ph === 'X') {
      if (typeof e.dur !== 'number' || e.dur < 0) bad.push(`${where(e, i)}: X needs dur >= 0`);
      else add(e, e.ts, e.ts + e.dur);
    }
    if (e.ph === 'i' || e.ph === 'I') if (e.s !== undefined && !['g', 'p', 't'].includes(e.s)) bad.push(`${where(e, i)}: instant scope must be g, p or t`);
    if (e.ph === 'b' || e.ph === 'e' || e.ph === 'n' || e.ph === 's' || e.ph === 't' || e.ph === 'f') {
      if (e.id === undefined) bad.push(`${where(e, i)}: ${e.ph} needs an id`);
      if (typeof e.cat !== 'string') bad.push(`${where(e, i)}: ${e.ph} needs a cat`);
    }
  });
  // B/E pair up per thread in time order
  for (const { e, i } of byTrackTs) {
    if (e.ph === 'B') {
      let s = openB.get(track(e));
      if (!s) openB.set(track(e), (s = []));
      s.push(e);
    } else if (e.ph === 'E') {
      const b = openB.get(track(e))?.pop();
      if (!b) bad.push(`${where(e, i)}: E without an open B on its thread`);
      else {
        if (e.name !== undefined && e.name !== b.name) bad.push(`${where(e, i)}: E named ${e.name} closes B ${b.name}`);
        add(e, b.ts, e.ts);
      }
    }
  }
  for (const [t, s] of openB) if (s.length) bad.push(`thread ${t}: ${s.length} B without E`);
  // async spans pair by (pid, cat, id, name)
  for (const { e, i } of byTrackTs) {
    if (e.ph !== 'b' && e.ph !== 'e') continue;
    const key = JSON.stringify([e.pid, e.cat, e.id, e.name]);
    if (e.ph === 'b') {
      if (openAsync.has(key)) bad.push(`${where(e, i)}: async span ${key} begun twice`);
      openAsync.set(key, e);
    } else {
      const b = openAsync.get(key);
      if (!b) bad.push(`${where(e, i)}: async end without a begin with the same cat/id/name`);
      else if (b.ts > e.ts) bad.push(`${where(e, i)}: async span ends before it begins`);
      openAsync.delete(key);
    }
  }
  for (const k of openAsync.keys()) bad.push(`async span ${k} never ends`);
  // slices nest per thread: no partial overlap
  for (const [t, list] of slices) {
    list.sort((a, b) => a.start - b.start || b.end - a.end);
    const stack: { start: number; end: number }[] = [];
    for (const s of list) {
      while (stack.length && stack.at(-1)!.end <= s.start) stack.pop();
      const top = stack.at(-1);
      if (top && s.end > top.end) bad.push(`thread ${t}: slice [${s.start}, ${s.end}] overlaps [${top.start}, ${top.end}] without nesting`);
      stack.push(s);
    }
  }
  // flows: s, t..., f in time order, each inside a slice of its own thread
  events.forEach((e) => {
    if (e.ph !== 's' && e.ph !== 't' && e.ph !== 'f') return;
    const key = JSON.stringify([e.cat, e.id, e.name]);
    let l = flows.get(key);
    if (!l) flows.set(key, (l = []));
    l.push(e);
  });
  for (const [key, l] of flows) {
    const phs = l.map((e) => e.ph).join('');
    if (!/^st*f$/.test(phs)) bad.push(`flow ${key}: phases ${phs}, expected s t* f`);
    // Perfetto's importer (json_trace_parser_impl.cc, MaybeExtractFlowIdentifier) takes a number, or a string as hex
    const id = l[0]!.id;
    if (!(typeof id === 'number' && Number.isSafeInteger(id)) && !(typeof id === 'string' && /^(0x)?[0-9a-fA-F]+$/.test(id))) bad.push(`flow ${key}: id must be an integer or a hex string`);
    for (let k = 1; k < l.length; k++) if (l[k]!.ts < l[k - 1]!.ts) bad.push(`flow ${key}: goes back in time`);
    for (const e of l) {
      const enclosing = (slices.get(track(e)) ?? []).some((s) => s.start <= e.ts && e.ts <= s.end);
      if (!enclosing) bad.push(`flow ${key}: ${e.ph} at ts ${e.ts} on ${track(e)} has no enclosing slice to bind to`);
    }
  }
  return bad;
}
