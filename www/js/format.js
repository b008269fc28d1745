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
