// Pieces shared by the views: job statuses, purge counters, badges, chips and summaries, and
// the skipped-templates table (on the job page and in a dry run).
import { el, cell } from './dom.js';
import { n } from './format.js';

export const LIST_RENDER_CAP = 300; // rows shown per long list before "show all"
export const FINAL = new Set(['done', 'partial', 'failed']);
const STATUS_GLYPH = { done: '✓', partial: '!', failed: '✕', processing: '↻', accepted: '•' };
export const COUNTS = [
  ['kv_keys', 'KV keys'],
  ['kv_prefix_keys', 'KV prefix keys'],
  ['cache_api', 'Cache API'],
  ['tags', 'Tags'],
  ['urls', 'URLs'],
  ['prefixes', 'Prefixes'],
  ['hosts', 'Hosts'],
  ['api_calls', 'API calls'],
];
const SHORT_COUNTS = {
  kv_keys: 'KV', kv_prefix_keys: 'KV swept', cache_api: 'cache', tags: 'tags',
  urls: 'URLs', prefixes: 'prefixes', hosts: 'hosts', api_calls: 'calls',
};

export function statusBadge(status, testid) {
  const s = String(status || 'unknown');
  const known = Object.prototype.hasOwnProperty.call(STATUS_GLYPH, s);
  return el('span', { class: `badge badge-${known ? s : 'unknown'}`, testid, 'data-status': s },
    el('span', { class: 'badge-glyph', 'aria-hidden': 'true', text: known ? STATUS_GLYPH[s] : '?' }),
    el('span', { class: 'badge-text', text: s }));
}

export function actionBadge(action, testid) {
  return el('span', { class: `tag tag-${action === 'unpublish' ? 'unpublish' : 'publish'}`, testid, text: String(action || '—') });
}

export function envChips(envs) {
  if (!Array.isArray(envs) || envs.length === 0) return el('span', { class: 'muted', text: 'not resolved yet' });
  return el('span', { class: 'chips' }, envs.map((e) => el('span', { class: 'chip', text: String(e) })));
}

export function purgedSummary(p) {
  if (!p) return el('span', { class: 'muted', text: '—' });
  const parts = COUNTS.filter(([k]) => Number(p[k]) > 0).map(([k]) => `${n(p[k])} ${SHORT_COUNTS[k]}`);
  if (parts.length === 0) return el('span', { class: 'muted', text: 'nothing' });
  return el('span', { class: 'purged', text: parts.join(' · ') });
}

export function itemsSummary(items) {
  if (!items || !Number(items.total)) return el('span', { class: 'muted', text: '—' });
  return el('span', {}, `${n(items.success)}/${n(items.total)}`,
    Number(items.failed) > 0 ? el('span', { class: 'muted', text: ` · ${n(items.failed)} failed` }) : null);
}

export function skippedTable(rows, testid) {
  if (!rows.length) return el('p', { class: 'empty', testid: `${testid}-empty`, text: 'None: every template had the values it needed.' });
  const shown = rows.slice(0, LIST_RENDER_CAP);
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'table table-cards' },
      el('caption', { class: 'visually-hidden', text: 'Templates skipped for lack of a value' }),
      el('thead', {}, el('tr', {}, ['Template', 'Item UID', 'Environment', 'Missing'].map((t) => el('th', { scope: 'col', text: t })))),
      el('tbody', {}, shown.map((s) => el('tr', { testid },
        cell('td', 'Template', {}, el('code', { class: 'break', text: String(s.template) })),
        cell('td', 'Item UID', {}, el('code', { class: 'break', text: String(s.uid) })),
        cell('td', 'Environment', {}, String(s.environment)),
        cell('td', 'Missing', {}, el('code', { text: `{${s.missing}}` })))))),
    rows.length > shown.length ? el('p', { class: 'muted small card-note', text: `Showing ${n(shown.length)} of ${n(rows.length)}.` }) : null);
}
