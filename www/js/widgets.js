// Pieces shared by the views: job statuses, purge counters, badges, chips and summaries, and
// the skipped-templates and references tables (on the job page and in a dry run).
import { el, cell } from './dom.js';
import { n, plural } from './format.js';

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

/** A warning badge (amber, with a "!" glyph) for a condition that is not a failure but matters. */
export function warnBadge(text, testid) {
  return el('span', { class: 'badge badge-warn', testid },
    el('span', { class: 'badge-glyph', 'aria-hidden': 'true', text: '!' }),
    el('span', { class: 'badge-text', text }));
}

/**
 * The mark of a job the webhook health check took in after Contentstack's delivery was missed
 * (record `source: "recovered"`); nothing for any other job.
 */
export function recoveredMark(job, testid = 'job-recovered') {
  if (!job || job.source !== 'recovered') return null;
  return el('span', {
    class: 'mark-recovered', testid,
    title: 'Contentstack’s delivery was missed; the webhook health check found the job and took it in',
    text: 'recovered',
  });
}

export const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The reference-aware purge of a job record or a dry run (`references`): counts, then the
 * referrers grouped by the job item that pulled them in. `id` prefixes the ids and test ids
 * ("job-references", "plan-references"); `rowTestid` names the rows, like skippedTable's, and
 * with "group" for "row" the header row of each job item ("referrer-group").
 * `planned` words it for a dry run (the on_failure purge "would run" rather than "ran").
 */
export function referencesBlock(refs, { id, rowTestid, planned = false }) {
  const rows = Array.isArray(refs.pulled_in) ? refs.pulled_in.filter(isObject) : [];
  return [referencesSummary(refs, rows.length, { id, planned }), referencesTable(rows, { id, rowTestid })];
}

function referencesSummary(refs, listed, { id, planned }) {
  const total = Number(refs.referrers) || 0;
  const envs = isObject(refs.by_environment) ? Object.entries(refs.by_environment) : [];
  const truncatedEnvs = envs.filter(([, e]) => isObject(e) && e.truncated === true).map(([name]) => name);
  const onFailure = Array.isArray(refs.on_failure) ? refs.on_failure.map(String) : [];
  const stat = (label, value, testid) => el('div', { class: 'stat stat-small' },
    el('span', { class: 'stat-value', testid, text: n(value) }),
    el('span', { class: 'stat-label', text: label }));
  return el('div', { class: 'refs-summary' },
    el('div', { class: 'stats stats-small refs-stats' },
      stat('Look-ups', refs.lookups, `${id}-lookups`),
      stat('Referrers', total, `${id}-referrers`)),
    // Truncation is the one thing here that needs action (raise max_lookups, or accept the
    // coarse purge), so it is a badge in words, not only a colour.
    refs.truncated === true
      ? el('p', {}, warnBadge(`look-up limit reached: on_failure purge ${planned ? 'would run' : 'ran'}`, `${id}-truncated`)) : null,
    // Per environment only when it tells more than the totals: several environments, or
    // which one hit the limit.
    envs.length > 1 || truncatedEnvs.length
      ? el('ul', { class: 'refs-envs', testid: `${id}-by-environment` }, envs.map(([name, e]) => referencesEnv(name, e))) : null,
    planned && onFailure.length
      ? el('p', { class: 'notice notice-warn', testid: `${id}-on-failure`, text: `The on_failure purge would run for: ${onFailure.join(', ')}.` }) : null,
    // The record keeps only the first referrers; say so rather than let the table look complete.
    total > listed
      ? el('p', { class: 'muted small', testid: `${id}-showing`, text: `Showing ${n(listed)} of ${n(total)} referrers (the first ones found).` }) : null);
}

function referencesEnv(name, e) {
  e = isObject(e) ? e : {};
  return el('li', { 'data-env': name },
    el('strong', { text: name }), `: ${plural(e.lookups, 'look-up', 'look-ups')}, ${plural(e.referrers, 'referrer', 'referrers')}`,
    e.truncated === true ? el('span', { class: 'refs-env-cut', text: ' (look-up limit reached)' }) : null);
}

/** What identifies the job item a referrer came from: type, content type, uid, locale. */
function fromKey(f) {
  return JSON.stringify([f.item_type, f.content_type, f.uid, f.locale]);
}

/** pulled_in rows grouped by their `from` item, groups in order of first appearance. */
function groupByFrom(rows) {
  const groups = new Map();
  for (const r of rows) {
    const from = isObject(r.from) ? r.from : {};
    const key = fromKey(from);
    if (!groups.has(key)) groups.set(key, { from, rows: [] });
    groups.get(key).rows.push(r);
  }
  return [...groups.values()];
}

const REF_COLUMNS = ['Environment', 'Content type', 'UID', 'Locale', 'Version', 'Depth'];

function referencesTable(rows, { id, rowTestid }) {
  if (!rows.length) {
    return el('p', { class: 'empty', testid: `${id}-empty`, text: 'No referrers: nothing published in the same environment and locale references the changed items.' });
  }
  // One tbody per job item: its header row names the item, the rows under it are what it pulled in.
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'table table-cards table-refs', id: `${id}-table`, testid: `${id}-table` },
      el('caption', { class: 'visually-hidden', text: 'Referrers purged, grouped by the job item that pulled them in' }),
      el('thead', {}, el('tr', {}, REF_COLUMNS.map((t) => el('th', { scope: 'col', class: t === 'Version' || t === 'Depth' ? 'num' : null, text: t })))),
      groupByFrom(rows).map((g) => el('tbody', { class: 'referrer-group-body' },
        fromRow(g, rowTestid),
        g.rows.map((r) => referrerRow(r, g.from, rowTestid))))));
}

function fromRow(g, rowTestid) {
  const f = g.from;
  const type = f.item_type === 'asset' ? 'asset' : 'entry';
  return el('tr', {
    class: 'referrer-group', testid: rowTestid.replace(/row$/, 'group'),
    'data-from-type': type, 'data-from-uid': String(f.uid ?? ''),
  },
  el('th', { scope: 'rowgroup', colspan: String(REF_COLUMNS.length) },
    el('span', { class: 'muted small', text: 'From ' }),
    el('span', { class: 'tag', testid: 'from-type', text: type }), ' ',
    f.content_type ? [el('code', { testid: 'from-content-type', text: String(f.content_type) }), ' '] : null,
    el('code', { class: 'break', testid: 'from-uid', text: String(f.uid ?? '—') }),
    f.locale ? [' ', el('span', { testid: 'from-locale', text: String(f.locale) })] : null,
    el('span', { class: 'muted small', text: ` · pulled in ${plural(g.rows.length, 'page', 'pages')}` })));
}

function referrerRow(r, from, rowTestid) {
  const depth = Number(r.depth) || 0;
  return el('tr', {
    class: 'referrer-row', testid: rowTestid,
    'data-uid': String(r.uid ?? ''), 'data-env': String(r.environment ?? ''),
    'data-depth': String(depth), 'data-from-uid': String(from.uid ?? ''),
  },
  cell('td', 'Environment', { 'data-field': 'environment' }, String(r.environment ?? '—')),
  cell('td', 'Content type', { 'data-field': 'content_type' }, el('code', { text: String(r.content_type ?? '—') })),
  cell('td', 'UID', { 'data-field': 'uid' }, el('code', { class: 'break', text: String(r.uid ?? '—') })),
  cell('td', 'Locale', { 'data-field': 'locale' }, String(r.locale ?? '—')),
  cell('td', 'Version', { class: 'num', 'data-field': 'version' },
    r.version === undefined || r.version === null ? el('span', { class: 'muted', text: '—' }) : String(r.version)),
  // Depth 1 references the job item itself; deeper rows came through another referrer.
  cell('td', 'Depth', { class: 'num', 'data-field': 'depth', title: depth === 1 ? 'references the job item directly' : 'references a referrer' },
    String(depth || '—')));
}

const ZONE_COUNTS = [['tags', 'Tags'], ['urls', 'URLs'], ['prefixes', 'Prefixes'], ['hosts', 'Hosts'], ['api_calls', 'API calls']];

/**
 * Per environment and Cloudflare zone, what was (or would be) purged: `rows` is a list of
 * [environment, zone id, counts] with counts keyed as in ZONE_COUNTS. Null when there is none
 * (no rule names a zone), so the caller leaves the table out.
 */
export function zonesTable(rows, testid, caption) {
  if (!rows.length) return null;
  const cols = ZONE_COUNTS.filter(([k]) => k !== 'api_calls' || rows.some(([, , c]) => c && c.api_calls !== undefined));
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'table table-cards table-zones', testid },
      el('caption', { class: 'visually-hidden', text: caption }),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Environment' }), el('th', { scope: 'col', text: 'Zone' }),
        cols.map(([, label]) => el('th', { scope: 'col', class: 'num', text: label })))),
      el('tbody', {}, rows.map(([env, zone, counts]) => el('tr', { testid: `${testid}-row`, 'data-env': env, 'data-zone': zone },
        cell('th', 'Environment', { scope: 'row' }, env),
        cell('td', 'Zone', {}, el('code', { class: 'break', text: zone })),
        cols.map(([k, label]) => cell('td', label, { class: 'num', 'data-field': k }, n(counts && counts[k]))))))));
}

/** Per environment that warmed its cache after the purge: requested, answered, failed, when. */
export function warmTable(warm) {
  const envs = warm && typeof warm === 'object' ? Object.entries(warm).filter(([, w]) => w && typeof w === 'object') : [];
  if (!envs.length) return null;
  const cols = [['requested', 'Requested'], ['ok', 'Answered'], ['failed', 'Failed']];
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'table table-cards table-warm', testid: 'warm-table' },
      el('caption', {}, 'Warmed after the purge', el('span', { class: 'muted small', text: ` (from ${String(envs[0][1].scope || 'one data centre')})` })),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Environment' }),
        cols.map(([, label]) => el('th', { scope: 'col', class: 'num', text: label })), el('th', { scope: 'col', text: 'Ended' }))),
      el('tbody', {}, envs.map(([env, w]) => el('tr', { testid: 'warm-row', 'data-env': env },
        cell('th', 'Environment', { scope: 'row' }, env),
        cols.map(([k, label]) => cell('td', label, { class: 'num', 'data-field': k }, n(w[k]))),
        cell('td', 'Ended', {}, w.at ? String(w.at) : el('span', { class: 'muted', text: 'warming…' })))))));
}
