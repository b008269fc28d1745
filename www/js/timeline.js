// The job page's timeline: the events of one attempt (record `timeline`) drawn as inline SVG by
// this module, no library. One lane per kind of work, an x axis in seconds since the attempt
// started (`origin_ms`), markers for the start, the passes and the end, a legend, and "where the
// time went" as a table. Long idle stretches (the wait for the second pass) are drawn shorter
// and marked, so the first pass does not shrink to a sliver. Values reach the SVG through
// textContent and setAttribute only, like everything else (see dom.js).
import { el } from './dom.js';
import { timeEl, fmtDuration, n, plural } from './format.js';
import { isObject } from './widgets.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** document.createElementNS with attributes and children; `text` sets textContent. */
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'testid') node.setAttribute('data-testid', v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const count = (e) => (Number.isFinite(Number(e.n)) && Number(e.n) >= 0 ? Number(e.n) : 1);
const env = (e) => (e.env ? ` (${e.env})` : '');

/** The lanes, top to bottom; `what` words one event for its tooltip. */
export const LANES = [
  { key: 'pages', label: 'Pages', unit: ['item', 'items'], what: (e) => `${plural(count(e), 'item', 'items')} read and planned` },
  { key: 'lookups', label: 'References', unit: ['look-up', 'look-ups'], what: (e) => `${plural(count(e), 'reference look-up', 'reference look-ups')}` },
  { key: 'kv', label: 'KV', unit: ['operation', 'operations'], what: (e) => `${plural(count(e), 'KV delete or sweep page', 'KV deletes and sweep pages')} settled` },
  { key: 'purge', label: 'Purge calls', unit: ['call', 'calls'], what: (e) => `${plural(count(e), 'Cloudflare purge call', 'Cloudflare purge calls')}` },
  { key: 'second', label: 'Second pass', unit: ['call', 'calls'], what: (e) => `second pass: ${plural(count(e), 'Cloudflare purge call', 'Cloudflare purge calls')}` },
  { key: 'verify', label: 'Verification', unit: ['URL', 'URLs'], what: (e) => `verification${env(e)}: ${plural(count(e), 'URL', 'URLs')} probed, ${n(e.stale)} still cached` },
  { key: 'warm', label: 'Warm', unit: ['request', 'requests'], what: (e) => `warm${env(e)}: ${plural(count(e), 'request', 'requests')} answered` },
];

const MARKERS = {
  start: { cls: 'tl-marker-start', label: 'start', what: () => 'Started: the job status was read' },
  first_pass: { cls: 'tl-marker-first', label: '1st pass', what: (e) => `First pass done${env(e)}` },
  second_pass: { cls: 'tl-marker-second', label: '2nd pass', what: (e) => `Second pass started${env(e)}` },
  end: { cls: 'tl-marker-end', label: 'end', what: (e) => `End: ${e.status || 'finished'}` },
};

/** "0 s", "2.5 s", "61 s", "2 min 30 s": an axis label for `ms` drawn with ticks `step` apart. */
export function tickLabel(ms, step = 1000) {
  if (ms >= 120000 && step >= 1000) {
    const m = Math.floor(ms / 60000);
    const s = Math.round((ms - m * 60000) / 1000);
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  const digits = step % 1000 === 0 ? 0 : step % 100 === 0 ? 1 : 2;
  return `${Number((ms / 1000).toFixed(digits))} s`; // "0 s", "0.5 s", "1 s", "1.5 s"
}

const at = (ms) => tickLabel(ms, ms % 1000 === 0 ? 1000 : ms % 100 === 0 ? 100 : 10);

/** Sorts the record's events into lanes and markers (events without a usable `t` are left out). */
export function classify(timeline) {
  const events = (Array.isArray(timeline.events) ? timeline.events : [])
    .filter((e) => isObject(e) && Number.isFinite(Number(e.t)) && Number(e.t) >= 0)
    .map((e) => ({ ...e, t: Number(e.t) }))
    .sort((a, b) => a.t - b.t);
  // Purge calls after the second pass started are that pass's (it repeats the first pass's calls;
  // KV and Cache API work is not repeated).
  const seconds = events.filter((e) => e.kind === 'second_pass').map((e) => e.t);
  const secondFrom = seconds.length ? Math.min(...seconds) : Infinity;
  const lanes = Object.fromEntries(LANES.map((l) => [l.key, []]));
  const markers = [];
  for (const e of events) {
    if (e.kind === 'pages' || e.kind === 'lookups' || e.kind === 'kv') lanes[e.kind].push(e);
    else if (e.kind === 'purge') lanes[e.t >= secondFrom ? 'second' : 'purge'].push(e);
    else if (e.kind === 'verify') lanes.verify.push(e);
    else if (e.kind === 'warm') lanes.warm.push(e);
    else if (Object.prototype.hasOwnProperty.call(MARKERS, e.kind)) markers.push(e);
  }
  // The second pass lane runs from the pass's start to its last purge call; verification from
  // the end of the first pass it checks to its last result.
  const firsts = events.filter((e) => e.kind === 'first_pass').map((e) => e.t);
  const spans = {};
  for (const l of LANES) {
    const list = lanes[l.key];
    let from = list.length ? list[0].t : null;
    if (l.key === 'second' && seconds.length) from = Math.min(secondFrom, ...list.map((e) => e.t));
    if (l.key === 'verify' && list.length && firsts.length) from = Math.min(from, ...firsts);
    if (from === null) continue;
    const to = list.length ? list[list.length - 1].t : from;
    spans[l.key] = { from, to, reports: list.length, total: list.reduce((s, e) => s + count(e), 0) };
  }
  const end = events.length ? events[events.length - 1].t : 0;
  return { events, lanes, markers, spans, end };
}

const NICE = [50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 1800000, 3600000];
const niceStep = (raw) => NICE.find((s) => s >= raw) || NICE[NICE.length - 1];

/**
 * A piecewise-linear x scale over [0, end] that shortens long idle gaps: a gap between two
 * events longer than 5 s and a quarter of the whole is drawn `breakW` wide.
 */
export function makeScale(times, x0, width, breakW) {
  const ts = [...new Set([0, ...times])].sort((a, b) => a - b);
  const end = ts[ts.length - 1];
  const minGap = Math.max(5000, end * 0.25);
  const segs = [];
  let a = 0;
  let prev = 0;
  for (const t of ts) {
    if (t - prev > minGap) {
      segs.push({ a, b: prev });
      a = t;
    }
    prev = t;
  }
  segs.push({ a, b: prev });
  const active = segs.reduce((s, g) => s + (g.b - g.a), 0) || 1;
  // Every stretch gets some room, so a lone event after a gap is not squeezed to the edge.
  // (At most 0.12 of `active` ≤ 0.12 of `end` each, less than any gap: stretches never meet.)
  const min = active * 0.12;
  segs.forEach((g, i) => {
    if (g.b - g.a >= min) return;
    if (i === 0) {
      g.b = g.a + min;
    } else {
      const pad = (min - (g.b - g.a)) / 2;
      g.a -= pad;
      g.b += pad;
    }
  });
  const breaks = segs.length - 1;
  const bw = breaks ? Math.min(breakW, width * 0.12) : 0;
  const avail = width - breaks * bw;
  const total = segs.reduce((s, g) => s + (g.b - g.a), 0) || 1;
  let x = x0;
  const gaps = [];
  segs.forEach((g, i) => {
    g.x = x;
    g.w = avail * ((g.b - g.a) / total);
    x += g.w;
    if (i < segs.length - 1) {
      gaps.push({ x, w: bw, from: g.b, to: segs[i + 1].a });
      x += bw;
    }
  });
  const scale = (t) => {
    const g = segs.find((s) => t <= s.b) || segs[segs.length - 1];
    const c = Math.min(Math.max(t, g.a), g.b);
    return g.x + (g.b > g.a ? ((c - g.a) / (g.b - g.a)) * g.w : g.w / 2);
  };
  // Ticks: nice steps per stretch, about one per 100 px.
  const ticks = [];
  for (const g of segs) {
    const step = niceStep((g.b - g.a) / Math.max(1, Math.floor(g.w / 100)));
    let first = Math.ceil(g.a / step) * step;
    const mine = [];
    for (let t = first; t <= g.b + 1e-6; t += step) mine.push({ t, step });
    if (!mine.length) {
      first = g.a;
      mine.push({ t: Math.round(g.a / 100) * 100, step: 100 });
    }
    ticks.push(...mine);
  }
  return { scale, ticks, gaps, segs, end };
}

/** A legend item: a swatch (drawn by CSS) and its words. */
const legendItem = (cls, text) => el('li', {}, el('span', { class: `tl-sw ${cls}`, 'aria-hidden': 'true' }), text);

/**
 * The timeline block for `timeline` (record.timeline), `width` px wide (the SVG's viewBox is that
 * wide, so its text keeps its size on a phone). Returns nodes for the caller to insert.
 */
export function timelineBlock(timeline, { width = 720, idPrefix = 'job-timeline' } = {}) {
  const data = classify(timeline);
  const origin = Number(timeline.origin_ms);
  const dropped = Number(timeline.dropped) || 0;
  const intro = el('p', { class: 'muted small tl-intro', testid: 'timeline-origin' },
    Number.isFinite(origin) ? ['0 s = ', timeEl(new Date(origin).toISOString()), ', when this attempt started. '] : null,
    `${plural(data.events.length, 'event', 'events')} over ${fmtDuration(data.end)}.`);
  if (!data.events.length) {
    return [intro, el('p', { class: 'empty', testid: 'timeline-empty', text: 'No events were recorded for this attempt.' })];
  }
  const W = Math.max(280, Math.round(width));
  const compact = W < 520;
  const labelW = compact ? 0 : 104;
  const padR = 12;
  const labelRows = 28; // two rows of marker labels
  const laneH = compact ? 36 : 28;
  const bandTop = compact ? 15 : 4; // the marks' band inside a lane
  const bandH = laneH - bandTop - 4;
  const axisH = 26;
  const lanesTop = labelRows;
  const lanesBottom = lanesTop + LANES.length * laneH;
  const H = lanesBottom + axisH;
  const x0 = labelW + 6;
  const plotW = W - x0 - padR;
  const times = data.events.map((e) => e.t);
  const { scale, ticks, gaps } = makeScale(times, x0, plotW, 34);
  const titleId = `${idPrefix}-svg-title`;
  const descId = `${idPrefix}-svg-desc`;

  const root = svg('svg', {
    class: 'tl-svg', viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
    'aria-labelledby': titleId, 'aria-describedby': descId, testid: 'timeline-svg', 'data-compact': compact ? 'true' : 'false',
  });
  root.append(
    svg('title', { id: titleId, text: 'Timeline of this attempt' }),
    svg('desc', { id: descId, text: describe(data) }));

  // Lanes: a stripe, the name, the span first → last, and one mark per event.
  LANES.forEach((lane, i) => {
    const y = lanesTop + i * laneH;
    const list = data.lanes[lane.key];
    const span = data.spans[lane.key];
    const maxN = Math.max(1, ...list.map(count));
    const g = svg('g', { class: `tl-lane tl-k-${lane.key}`, 'data-lane': lane.key, testid: 'timeline-lane' });
    g.append(svg('rect', { class: i % 2 ? 'tl-stripe tl-stripe-odd' : 'tl-stripe', x: 0, y, width: W, height: laneH }));
    g.append(compact
      ? svg('text', { class: 'tl-lane-label', x: 2, y: y + 11, text: lane.label })
      : svg('text', { class: 'tl-lane-label', x: labelW, y: y + laneH / 2, 'text-anchor': 'end', 'dominant-baseline': 'central', text: lane.label }));
    if (span) {
      const sx = scale(span.from);
      g.append(svg('rect', {
        class: 'tl-span', x: sx, y: y + bandTop + bandH * 0.3, width: Math.max(2, scale(span.to) - sx), height: bandH * 0.4, rx: 2,
      }, svg('title', { text: `${lane.label}: ${at(span.from)} to ${at(span.to)} (${fmtDuration(span.to - span.from)})` })));
    }
    for (const e of list) {
      const x = scale(e.t);
      const tip = `${lane.label} at ${at(e.t)}: ${lane.what(e)}`;
      if (lane.key === 'verify') {
        const stale = Number(e.stale) > 0;
        g.append(svg('g', { class: `tl-mark ${stale ? 'tl-verify-bad' : 'tl-verify-ok'}`, 'data-kind': 'verify', 'data-t': e.t },
          svg('title', { text: tip }),
          svg('rect', { class: 'tl-hit', x: x - 6, y: y + bandTop, width: 12, height: bandH }),
          svg('circle', { cx: x, cy: y + bandTop + bandH / 2, r: 5 })));
      } else {
        const h = Math.max(3, bandH * (0.3 + 0.7 * (count(e) / maxN)));
        g.append(svg('g', { class: 'tl-mark', 'data-kind': e.kind, 'data-t': e.t, 'data-n': count(e) },
          svg('title', { text: tip }),
          svg('rect', { class: 'tl-hit', x: x - 4, y: y + bandTop, width: 8, height: bandH }),
          svg('rect', { class: 'tl-tick', x: x - 1.5, y: y + bandTop + bandH - h, width: 3, height: h, rx: 1 })));
      }
    }
    root.append(g);
  });

  // Shortened idle stretches: a band over the lanes, cut marks on the axis, its length in words.
  for (const gap of gaps) {
    const cx = gap.x + gap.w / 2;
    const mid = (lanesTop + lanesBottom) / 2;
    const len = gap.to - gap.from;
    root.append(svg('g', { class: 'tl-gap', testid: 'timeline-gap', 'data-ms': len },
      svg('title', { text: `Nothing happened for ${fmtDuration(len)} (${at(gap.from)} to ${at(gap.to)}); drawn shorter` }),
      svg('rect', { class: 'tl-gap-band', x: gap.x + 2, y: lanesTop, width: Math.max(0, gap.w - 4), height: lanesBottom - lanesTop }),
      svg('path', { class: 'tl-gap-cut', d: `M${gap.x + 3},${lanesBottom + 5} l5,-10 M${gap.x + gap.w - 8},${lanesBottom + 5} l5,-10` }),
      svg('text', {
        class: 'tl-gap-label', x: cx, y: mid, 'text-anchor': 'middle', 'dominant-baseline': 'central',
        transform: `rotate(-90 ${cx} ${mid})`, text: `${fmtDuration(len)} idle`,
      })));
  }

  // Markers: a line across the lanes, labels in two rows above them (a label that would overlap
  // another is left out; the line keeps its tooltip).
  const placed = [[], []];
  for (const e of data.markers) {
    const m = MARKERS[e.kind];
    const x = scale(e.t);
    const g = svg('g', { class: `tl-marker ${m.cls}`, 'data-kind': e.kind, 'data-t': e.t, testid: 'timeline-marker' },
      svg('title', { text: `${m.what(e)} at ${at(e.t)}` }),
      svg('rect', { class: 'tl-hit', x: x - 4, y: lanesTop - 2, width: 8, height: lanesBottom - lanesTop + 2 }),
      svg('line', { x1: x, x2: x, y1: lanesTop - 2, y2: lanesBottom }));
    const wText = m.label.length * 6 + 6;
    const row = placed.findIndex((r) => r.every(([a, b]) => x + wText / 2 < a || x - wText / 2 > b));
    if (row >= 0) {
      const left = Math.min(Math.max(x - wText / 2, 0), W - wText);
      placed[row].push([left, left + wText]);
      g.append(svg('text', { class: 'tl-marker-label', x: left + wText / 2, y: row === 0 ? 11 : 24, 'text-anchor': 'middle', text: m.label }));
    }
    root.append(g);
  }

  // The axis: a line, ticks and their labels (no two labels closer than 44 px).
  const axis = svg('g', { class: 'tl-axis', testid: 'timeline-axis' },
    svg('line', { x1: x0, x2: x0 + plotW, y1: lanesBottom, y2: lanesBottom }));
  let lastRight = -Infinity;
  for (const tk of ticks) {
    const x = scale(tk.t);
    const label = tickLabel(tk.t, tk.step);
    const w = label.length * 6;
    const anchor = x - x0 < w / 2 ? 'start' : x0 + plotW - x < w / 2 ? 'end' : 'middle';
    const left = anchor === 'start' ? x : anchor === 'end' ? x - w : x - w / 2;
    if (left < lastRight + 8) continue;
    lastRight = left + w;
    axis.append(
      svg('line', { class: 'tl-axis-tick', x1: x, x2: x, y1: lanesBottom, y2: lanesBottom + 4 }),
      svg('text', { class: 'tl-axis-label', x, y: lanesBottom + 17, 'text-anchor': anchor, testid: 'timeline-tick', text: label }));
  }
  root.append(axis);

  const has = (kind) => data.markers.some((e) => e.kind === kind);
  const legend = el('ul', { class: 'tl-legend', testid: 'timeline-legend', 'aria-label': 'Legend' },
    legendItem('tl-sw-tick', 'a report (taller: more items)'),
    legendItem('tl-sw-span', 'first to last report of a lane'),
    has('start') ? legendItem('tl-sw-marker tl-marker-start', 'start') : null,
    has('first_pass') ? legendItem('tl-sw-marker tl-marker-first', 'first pass done') : null,
    has('second_pass') ? legendItem('tl-sw-marker tl-marker-second', 'second pass started') : null,
    has('end') ? legendItem('tl-sw-marker tl-marker-end', 'end') : null,
    data.lanes.verify.length ? legendItem('tl-sw-dot tl-verify-ok', 'verified fresh') : null,
    data.lanes.verify.some((e) => Number(e.stale) > 0) ? legendItem('tl-sw-dot tl-verify-bad', 'still cached') : null,
    gaps.length ? legendItem('tl-sw-gap', 'idle time, drawn shorter') : null);

  return [
    intro,
    el('div', { class: 'tl-figure' }, root),
    legend,
    summaryTable(data, idPrefix),
    dropped > 0 ? el('p', { class: 'muted small', testid: 'timeline-dropped', text: `${plural(dropped, 'more event was', 'more events were')} not kept (the record keeps the first 500).` }) : null,
  ];
}

/** One sentence per lane and marker, for the SVG's <desc>. */
function describe(data) {
  const parts = [`${plural(data.events.length, 'event', 'events')} over ${fmtDuration(data.end)}.`];
  for (const l of LANES) {
    const s = data.spans[l.key];
    if (s) parts.push(`${l.label}: ${plural(s.reports, 'report', 'reports')} from ${at(s.from)} to ${at(s.to)} (${fmtDuration(s.to - s.from)}).`);
  }
  for (const e of data.markers) parts.push(`${MARKERS[e.kind].what(e)} at ${at(e.t)}.`);
  const stale = data.lanes.verify.filter((e) => Number(e.stale) > 0);
  if (stale.length) parts.push(`${plural(stale.length, 'verification', 'verifications')} found URLs still cached.`);
  return parts.join(' ');
}

/** "Where the time went": per lane, its reports, the count they add up to, first, last and duration. */
function summaryTable(data, idPrefix) {
  const start = data.markers.find((e) => e.kind === 'start');
  const end = data.markers.filter((e) => e.kind === 'end').pop();
  // Reports, First and Last give way on a phone (class tl-opt); Lane, Count and Time stay.
  const td = (label, text, attrs = {}) => el('td', { ...attrs, class: `${attrs.class || ''}${OPTIONAL.has(label) ? ' tl-opt' : ''}`, 'data-label': label, text });
  const rows = LANES.filter((l) => data.spans[l.key]).map((l) => {
    const s = data.spans[l.key];
    return el('tr', { testid: 'timeline-summary-row', 'data-lane': l.key, 'data-ms': s.to - s.from },
      el('th', { scope: 'row', text: l.label }),
      td('Reports', n(s.reports), { class: 'num' }),
      td('Count', s.reports ? plural(s.total, l.unit[0], l.unit[1]) : '—', { class: 'num' }),
      td('First', at(s.from), { class: 'num' }),
      td('Last', at(s.to), { class: 'num' }),
      td('Time', fmtDuration(s.to - s.from), { class: 'num', 'data-field': 'duration' }));
  });
  const row = (label, from, to, testid) => el('tr', { testid, 'data-ms': to - from },
    el('th', { scope: 'row', text: label }), td('Reports', '', { class: 'num' }), td('Count', '', { class: 'num' }),
    td('First', at(from), { class: 'num' }), td('Last', at(to), { class: 'num' }),
    td('Time', fmtDuration(to - from), { class: 'num', 'data-field': 'duration' }));
  const captionId = `${idPrefix}-summary-title`;
  return el('div', { class: 'tl-summary' },
    el('h3', { id: captionId, class: 'tl-summary-title', text: 'Where the time went' }),
    el('div', { class: 'table-wrap' }, el('table', { class: 'table', id: `${idPrefix}-summary`, testid: 'timeline-summary', 'aria-labelledby': captionId },
      el('thead', {}, el('tr', {}, ['Lane', 'Reports', 'Count', 'First', 'Last', 'Time'].map((t, i) => el('th', {
        scope: 'col', class: `${i ? 'num' : ''}${OPTIONAL.has(t) ? ' tl-opt' : ''}`.trim() || null, text: t,
      })))),
      el('tbody', {},
        start && start.t > 0 ? row('Until started', 0, start.t, 'timeline-summary-wait') : null,
        rows),
      el('tfoot', {}, row('Whole attempt', 0, end ? end.t : data.end, 'timeline-summary-total')))));
}

const OPTIONAL = new Set(['Reports', 'First', 'Last']);
