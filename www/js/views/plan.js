// The dry run (#/plan): a webhook payload or a job ID in, the purge plan out (nothing is purged).
import { byId, el, announce } from '../dom.js';
import { n, plural } from '../format.js';
import { api, ApiError, describeError } from '../api.js';
import { LIST_RENDER_CAP, envChips, skippedTable, referencesBlock, zonesTable } from '../widgets.js';

const PLAN_LISTS = [
  ['kv_keys', 'KV keys to delete', 'plan-kv-key', 'KV keys'],
  ['kv_prefixes', 'KV prefixes to sweep', 'plan-kv-prefix', 'KV prefixes'],
  ['cache_urls', 'Cache API entries to delete', 'plan-cache-url', 'Cache API entries'],
  ['tags', 'Cache tags to purge', 'plan-tag', 'cache tags'],
  ['files', 'URLs to purge', 'plan-file', 'URLs'],
  ['prefixes', 'URL prefixes to purge', 'plan-prefix', 'URL prefixes'],
  ['hosts', 'Hosts to purge', 'plan-host', 'hosts'],
];

export function openPlan(r) {
  if (r.jobId) {
    byId('plan-input').value = r.jobId;
    if (r.apiKey) byId('plan-api-key').value = r.apiKey;
  }
}

function planBody() {
  const raw = byId('plan-input').value.trim();
  if (!raw) throw new Error('Paste a webhook payload or enter a job ID.');
  if (raw.startsWith('{') || raw.startsWith('[')) {
    let parsed;
    try {
      parsed = JSON.parse(raw);
    } catch (e) {
      throw new Error(`That is not valid JSON (${e.message}). Paste the whole webhook body, or just a job ID.`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('The payload must be a JSON object.');
    return JSON.stringify(parsed);
  }
  if (/\s/.test(raw)) throw new Error('A job ID has no spaces. Paste a JSON payload or a single job ID.');
  const body = { job_id: raw };
  const key = byId('plan-api-key').value.trim();
  const env = byId('plan-environment').value.trim();
  if (key) body.api_key = key;
  if (env) body.environment = env;
  return JSON.stringify(body);
}

async function onPlanSubmit(ev) {
  ev.preventDefault();
  const err = byId('plan-error');
  const btn = byId('plan-submit');
  const out = byId('plan-result');
  err.hidden = true;
  let body;
  try {
    body = planBody();
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    byId('plan-input').setAttribute('aria-invalid', 'true');
    byId('plan-input').focus();
    return;
  }
  byId('plan-input').removeAttribute('aria-invalid');
  btn.disabled = true;
  btn.textContent = 'Planning…';
  out.setAttribute('aria-busy', 'true');
  out.replaceChildren(el('p', { class: 'empty card', testid: 'plan-loading' },
    el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Asking Contentstack for the job’s items and building the plan…'));
  out.hidden = false;
  try {
    const { data } = await api('/api/plan', { method: 'POST', body });
    renderPlan(data);
    if (data && data.ignored) announce(`Ignored: ${data.reason || 'no reason given'}.`);
    else announce(`Plan ready: ${plural(data.actions, 'action', 'actions')}, ${plural(data.purge_calls, 'purge API call', 'purge API calls')}.`);
  } catch (e) {
    out.replaceChildren();
    out.hidden = true;
    if (!(e instanceof ApiError && e.status === 401)) {
      let msg = describeError(e, 'Could not make a plan');
      if (e instanceof ApiError && e.status === 503) msg += ' Contentstack or the ledger could not answer; try again in a moment.';
      err.textContent = msg;
      err.hidden = false;
    }
  } finally {
    out.removeAttribute('aria-busy');
    btn.disabled = false;
    btn.textContent = 'Show plan';
  }
}

function renderPlan(data) {
  const out = byId('plan-result');
  if (!data || typeof data !== 'object') {
    out.replaceChildren(el('p', { class: 'notice notice-error', text: 'The Worker returned an empty answer.' }));
    return;
  }
  if (data.ignored) {
    out.replaceChildren(el('div', { class: 'card' },
      el('h2', { id: 'plan-result-title', text: 'Nothing to do' }),
      el('p', { testid: 'plan-ignored' }, 'Job ', el('code', { text: String(data.job_id) }), ` would be ignored: ${data.reason || 'no reason given'}.`)));
    return;
  }
  const plan = data.plan || {};
  const envs = plan.environments && typeof plan.environments === 'object' ? plan.environments : {};
  const items = data.items || {};
  const considered = plan.items || {};
  const stats = [
    ['Actions', data.actions, 'plan-actions'],
    ['Purge API calls', data.purge_calls, 'plan-purge-calls'],
    ['Items published', `${n(items.success)} of ${n(items.total)}`, 'plan-items'],
    ['Items planned', considered.purged !== undefined ? n(considered.purged) : '—', 'plan-items-planned'],
  ];
  const summary = el('section', { class: 'card', 'aria-labelledby': 'plan-result-title' },
    el('h2', { id: 'plan-result-title' }, 'Plan for job ', el('code', { class: 'break', testid: 'plan-job-id', text: String(data.job_id) })),
    el('p', {}, 'Environments: ', envChips(data.environments)),
    el('div', { class: 'stats' }, stats.map(([label, value, testid]) => el('div', { class: 'stat' },
      el('span', { class: 'stat-value', testid, text: typeof value === 'number' ? n(value) : String(value) }),
      el('span', { class: 'stat-label', text: label })))),
    data.truncated ? el('p', { class: 'notice notice-warn', testid: 'plan-truncated', text: 'The job is too large to plan in one request: this plan covers only its first pages.' }) : null);

  const checks = data.verification && typeof data.verification === 'object' ? data.verification : {};
  const envSections = Object.keys(envs).map((name) => planEnv(name, envs[name], checks[name]));
  if (!envSections.length) {
    envSections.push(el('p', { class: 'card empty', text: 'No environment of this job has a purge rule, so nothing would be purged.' }));
  }
  const skipped = Array.isArray(plan.skipped) ? plan.skipped : [];
  const skippedSection = el('section', { class: 'card card-flush', 'aria-labelledby': 'plan-skipped-title' },
    el('h2', { id: 'plan-skipped-title', class: 'card-title' }, 'Skipped templates ', skipped.length ? el('span', { class: 'count', text: `(${n(skipped.length)})` }) : null),
    skippedTable(skipped, 'plan-skipped-row'));
  // replaceChildren would write a null as the text "null": leave the section out instead.
  out.replaceChildren(...[summary, ...envSections, planReferences(data.references), skippedSection].filter(Boolean));
}

/** The referrers the plan would purge too; null (no section) when no rule has references. */
function planReferences(refs) {
  if (refs === null || typeof refs !== 'object' || Array.isArray(refs)) return null;
  return el('section', { class: 'card card-flush', id: 'plan-references', testid: 'plan-references', 'aria-labelledby': 'plan-references-title' },
    el('h2', { id: 'plan-references-title', class: 'card-title' }, 'References ',
      Number(refs.referrers) ? el('span', { class: 'count', text: `(${n(refs.referrers)})` }) : null),
    el('p', { class: 'muted small card-note', text: 'Entries published in the same environment and locale that reference a changed item would be purged too, listed under the job item that pulls them in (depth 1 references it directly).' }),
    el('div', {}, referencesBlock(refs, { id: 'plan-references', rowTestid: 'plan-referrer-row', planned: true })));
}

/** The URLs the verification would probe after each purge pass; null when the rule samples none. */
function planVerification(check) {
  const sample = Number(check?.verify_sample) || 0;
  if (!sample) return null;
  const urls = Array.isArray(check.urls) ? check.urls : [];
  return el('div', { class: 'plan-verify', testid: 'plan-verification' },
    el('p', { class: 'muted small', text: urls.length
      ? `Verified after each purge pass: ${n(urls.length)} of the purged URLs (verify_sample ${n(sample)}) are fetched once each and must not come back as stale cache hits.`
      : `verify_sample is ${n(sample)}, but this plan purges no URL that could be checked.` }),
    urls.length ? codeList('URLs checked', urls, 'plan-verify-url', 'verify_urls') : null);
}

function planEnv(name, env, check) {
  env = env || {};
  const meta = [
    ['Environment UID', env.environment_uid],
    ['Zone', env.zone_id || (env.zones && Object.keys(env.zones).length > 1 ? `${Object.keys(env.zones).length} zones` : null)],
    ['KV binding', env.kv_binding],
    ['KV namespace', env.kv_namespace_id],
  ];
  const lists = PLAN_LISTS.map(([key, label, testid, short]) => ({ key, label, testid, short, values: Array.isArray(env[key]) ? env[key] : [] }));
  const full = lists.filter((l) => l.values.length);
  const empty = lists.filter((l) => !l.values.length).map((l) => l.short);
  return el('section', { class: 'card', testid: 'plan-env', 'data-env': name, 'aria-label': `Plan for ${name}` },
    el('h3', { class: 'env-title', text: name }),
    el('dl', { class: 'facts facts-inline' }, meta.map(([k, v]) => [el('dt', { text: k }),
      el('dd', {}, v ? el('code', { class: 'break', text: String(v) }) : el('span', { class: 'muted', text: 'none' }))])),
    env.purge_everything ? el('p', { class: 'notice notice-warn', text: 'Purges everything cached in this zone.' }) : null,
    planZones(name, env),
    Array.isArray(env.warm) && env.warm.length ? codeList('Warmed after the purge, in this order', env.warm, 'plan-warm-url', 'warm') : null,
    full.length ? el('div', { class: 'plan-lists' }, full.map((l) => codeList(l.label, l.values, l.testid, l.key))) : null,
    empty.length ? el('p', { class: 'muted small plan-nothing', text: `Nothing to do for: ${empty.join(', ')}.` }) : null,
    planVerification(check));
}

/** Each zone's share of the environment's purges; null with fewer than two zones. */
function planZones(name, env) {
  const zones = env.zones && typeof env.zones === 'object' ? Object.entries(env.zones) : [];
  if (zones.length < 2) return null;
  const len = (v) => (Array.isArray(v) ? v.length : 0);
  const rows = zones.map(([zone, z]) => [name, zone, { tags: len(z.tags), urls: len(z.files), prefixes: len(z.prefixes), hosts: len(z.hosts) }]);
  return zonesTable(rows, 'plan-zone-table', `What ${name} would purge, per Cloudflare zone`);
}

function codeList(label, values, testid, key) {
  // Focusable so the scrolling list can be scrolled from the keyboard.
  const ul = el('ul', { class: 'codelist', 'data-list': key, tabindex: '0', 'aria-label': label });
  const fill = (limit) => {
    ul.replaceChildren(...values.slice(0, limit).map((v) => el('li', {}, el('code', { testid, text: String(v) }))));
  };
  fill(LIST_RENDER_CAP);
  const more = values.length > LIST_RENDER_CAP
    ? el('button', {
      type: 'button', class: 'btn btn-small btn-quiet', text: `Show all ${n(values.length)}`,
      onclick: (ev) => { fill(values.length); ev.currentTarget.remove(); },
    }) : null;
  return el('details', { class: 'listbox', open: true },
    el('summary', {}, label, ' ', el('span', { class: 'count', text: n(values.length) })), ul, more);
}

/** Forgets the plan shown (on sign-out). */
export function resetPlan() {
  byId('plan-result').replaceChildren();
  byId('plan-result').hidden = true;
}

/** Wires the form (once, at boot). */
export function initPlan() {
  byId('plan-form').addEventListener('submit', onPlanSubmit);
  byId('plan-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) byId('plan-form').requestSubmit();
  });
}
