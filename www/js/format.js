// Formatting: numbers, dates and durations.
import { el } from './dom.js';

export const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
export const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const numFmt = new Intl.NumberFormat();

export function timeEl(iso, { short = false } = {}) {
  if (!iso) return el('span', { class: 'muted', text: '—' });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return el('span', { text: String(iso) });
  const sameDay = new Date().toDateString() === d.toDateString();
  const label = short && sameDay ? timeFmt.format(d) : dateFmt.format(d);
  return el('time', { datetime: d.toISOString(), title: d.toISOString(), text: label });
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '—';
  ms = Number(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export const n = (v) => numFmt.format(Number(v) || 0);
export const plural = (count, one, many) => `${n(count)} ${Number(count) === 1 ? one : many}`;
export const shortId = (id) => (String(id).length > 13 ? `${String(id).slice(0, 8)}…` : String(id));

/** How long ago `iso` was, in words: "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function relTime(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** relTime() as a <time> element whose tooltip is the full date. */
export function relTimeEl(iso) {
  if (!iso) return el('span', { class: 'muted', text: '—' });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return el('span', { text: String(iso) });
  return el('time', { datetime: d.toISOString(), title: dateFmt.format(d), text: relTime(iso) });
}
