// The "Recent jobs" view (#/jobs): the webhook health above the list, the list, its
// auto-refresh, paging with "Load more", and announcements of new and finished jobs.
import { byId, el, cell, show, setNotice, announce } from '../dom.js';
import { timeFmt, timeEl, relTimeEl, fmtDuration, n, plural, shortId } from '../format.js';
import { api, health, ApiError, describeError } from '../api.js';
import { LIST_PAGE } from '../router.js';
import { FINAL, statusBadge, actionBadge, envChips, purgedSummary, itemsSummary, recoveredMark, isObject } from '../widgets.js';

const LIST_REFRESH_MS = 4000;

const list = {
  pageSize: LIST_PAGE,
  jobs: [],
  cursor: null,
  loaded: false,
  extraPages: false,
  timer: null,
  running: false,
  inflight: false,
  statuses: new Map(),
};

export function startJobs(pageSize) {
  if (pageSize !== list.pageSize) {
    list.pageSize = pageSize;
    list.jobs = [];
    list.cursor = null;
    list.loaded = false;
    list.extraPages = false;
    byId('jobs-body').replaceChildren();
  }
  list.running = true;
  if (!list.loaded) {
    show(byId('jobs-loading'), true);
    show(byId('jobs-empty'), false);
  }
  refreshJobs();
}

export function stopJobs() {
  list.running = false;
  clearTimeout(list.timer);
  list.timer = null;
}

function scheduleJobs() {
  clearTimeout(list.timer);
  list.timer = null;
  if (!list.running || !byId('jobs-auto').checked) return;
  list.timer = setTimeout(refreshJobs, LIST_REFRESH_MS);
}

export async function refreshJobs() {
  if (!list.running || list.inflight) return;
  if (document.hidden) {
    scheduleJobs();
    return;
  }
  list.inflight = true;
  refreshHealth();
  try {
    const { data } = await api(`/api/jobs?limit=${list.pageSize}`);
    if (!list.running) return;
    mergeFresh(Array.isArray(data && data.jobs) ? data.jobs : [], data ? data.cursor : null);
    setNotice(byId('jobs-error'), '');
    byId('jobs-updated').textContent = `Updated ${timeFmt.format(new Date())}`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    const retry = byId('jobs-auto').checked ? ` Retrying in ${LIST_REFRESH_MS / 1000} s.` : '';
    setNotice(byId('jobs-error'), `${describeError(e, 'Could not load jobs')}${retry}`, 'error');
  } finally {
    list.inflight = false;
    show(byId('jobs-loading'), false);
    updateJobsEmpty();
    scheduleJobs();
  }
}

function mergeFresh(fresh, cursor) {
  const freshIds = new Set(fresh.map((j) => j.job_id));
  const overlaps = list.jobs.some((j) => freshIds.has(j.job_id));
  if (!list.extraPages || !overlaps) {
    list.jobs = fresh;
    list.cursor = cursor || null;
    list.extraPages = false;
  } else {
    list.jobs = fresh.concat(list.jobs.filter((j) => !freshIds.has(j.job_id)));
  }
  noteChanges(fresh);
  list.loaded = true;
  renderJobs();
}

/** Announces new jobs and jobs that reached a final status since the last refresh. */
function noteChanges(jobs) {
  const msgs = [];
  const first = list.statuses.size === 0 && !list.announcedOnce;
  for (const j of jobs) {
    const before = list.statuses.get(j.job_id);
    if (!first) {
      if (before === undefined) msgs.push(`New job ${shortId(j.job_id)}: ${j.status}.`);
      else if (before !== j.status && FINAL.has(j.status)) msgs.push(`Job ${shortId(j.job_id)} is ${j.status}.`);
    }
    list.statuses.set(j.job_id, j.status);
  }
  list.announcedOnce = true;
  if (msgs.length) announce(msgs.slice(0, 3).join(' ') + (msgs.length > 3 ? ` And ${msgs.length - 3} more.` : ''));
}

async function loadMoreJobs() {
  const btn = byId('jobs-more');
  if (!list.cursor) return;
  btn.disabled = true;
  btn.textContent = 'Loading…';
  try {
    const { data } = await api(`/api/jobs?limit=${list.pageSize}&cursor=${encodeURIComponent(list.cursor)}`);
    const seen = new Set(list.jobs.map((j) => j.job_id));
    const more = (data && Array.isArray(data.jobs) ? data.jobs : []).filter((j) => !seen.has(j.job_id));
    for (const j of more) list.statuses.set(j.job_id, j.status);
    list.jobs = list.jobs.concat(more);
    list.cursor = (data && data.cursor) || null;
    list.extraPages = true;
    renderJobs();
    announce(more.length ? `Loaded ${plural(more.length, 'more job', 'more jobs')}.` : 'No more jobs.');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) setNotice(byId('jobs-error'), describeError(e, 'Could not load more jobs'), 'error');
  } finally {
    btn.disabled = false;
    btn.textContent = 'Load more';
  }
}

function updateJobsEmpty() {
  show(byId('jobs-empty'), list.loaded && list.jobs.length === 0);
  show(byId('jobs-table'), !list.loaded || list.jobs.length > 0);
  show(byId('jobs-more'), !!list.cursor && list.jobs.length > 0);
}

/** Keyed update of the table body: existing rows are updated in place so focus survives. */
function renderJobs() {
  const tbody = byId('jobs-body');
  const existing = new Map();
  for (const tr of tbody.children) existing.set(tr.dataset.jobId, tr);
  const wanted = new Set();
  list.jobs.forEach((job, i) => {
    const id = String(job.job_id);
    wanted.add(id);
    const sig = JSON.stringify([job.status, job.attempts, job.environments, job.items, job.purged, job.duration_ms, job.received_at, job.source]);
    let tr = existing.get(id);
    if (!tr) {
      tr = el('tr', { testid: 'job-row', 'data-job-id': id });
      tr.addEventListener('click', (ev) => {
        if (ev.target.closest('a, button') || window.getSelection().toString()) return;
        location.hash = jobHref(id);
      });
    }
    if (tr.dataset.sig !== sig) {
      tr.dataset.sig = sig;
      tr.replaceChildren(...jobCells(job));
    }
    const at = tbody.children[i];
    if (at !== tr) tbody.insertBefore(tr, at || null);
  });
  for (const [id, tr] of existing) if (!wanted.has(id)) tr.remove();
  updateJobsEmpty();
}

const jobHref = (id) => `#/jobs/${encodeURIComponent(id)}`;

function jobCells(job) {
  const td = (label, cls, ...kids) => cell('td', label, { class: cls }, ...kids);
  return [
    td('Received', 'nowrap', timeEl(job.received_at, { short: true })),
    td('Job', 'cell-id', el('a', { href: jobHref(job.job_id), class: 'mono', testid: 'job-link', title: String(job.job_id), text: String(job.job_id) }),
      recoveredMark(job)),
    td('Action', null, actionBadge(job.action)),
    td('Environments', null, envChips(job.environments)),
    td('Items', 'num', itemsSummary(job.items)),
    td('Purged', null, purgedSummary(FINAL.has(job.status) || job.status === 'processing' ? job.purged : null)),
    td('Status', null, statusBadge(job.status, 'job-status'),
      Number(job.attempts) > 1 ? el('span', { class: 'muted small', text: ` attempt ${n(job.attempts)}` }) : null),
    td('Duration', 'num nowrap', fmtDuration(job.duration_ms)),
  ];
}

// ------------------------------------------------------------------ webhook health

const healthView = { inflight: false, unsupported: false, data: null, sig: null };

const WEBHOOK_FIX_DISABLED = 'Contentstack does not re-enable it by itself: open Settings › Webhooks in Contentstack, '
  + 'fix the cause, then enable the webhook again; missed jobs are recovered by the next check.';
const WEBHOOK_FIX_UNHEALTHY = 'Contentstack disables a webhook whose deliveries keep failing: open Settings › Webhooks in '
  + 'Contentstack, look at its failed executions and fix the cause; missed jobs are recovered by the next check.';

/**
 * Asks the Worker for its webhook health check, alongside each refresh of the list. It never
 * breaks the list: a Worker without the check (404) shows no health area and is not asked
 * again until the next sign-in; a passing failure (network, 5xx) keeps what was shown.
 */
async function refreshHealth() {
  if (healthView.inflight || healthView.unsupported) return;
  healthView.inflight = true;
  try {
    const data = await health();
    if (!list.running) return;
    healthView.data = isObject(data) ? data : null;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    const passing = e instanceof ApiError && (e.status === 0 || e.status >= 500);
    if (!passing) {
      healthView.data = null;
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) healthView.unsupported = true;
    }
  } finally {
    healthView.inflight = false;
  }
  renderHealth(healthView.data);
}

const webhookList = (data) => (Array.isArray(data.webhooks) ? data.webhooks.filter(isObject) : []);
const isBad = (h) => h.disabled === true || h.unhealthy === true;

/** Draws the health area from a /api/health body (null: nothing). */
function renderHealth(data) {
  const area = byId('health');
  if (!data) {
    show(area, false);
    healthView.sig = null;
    for (const id of ['health-banner', 'health-error', 'health-ok', 'health-recovered']) {
      byId(id).replaceChildren();
      show(byId(id), false);
    }
    return;
  }
  show(area, true);
  const hooks = webhookList(data);
  const bad = hooks.filter(isBad);
  const error = typeof data.error === 'string' && data.error ? data.error : null;
  // The banner (an alert) and the recovered list are redrawn only when what they show changes
  // (not at every check), so a screen reader hears the alert once and a focused link keeps focus.
  const sig = JSON.stringify([bad, data.recovered]);
  if (sig !== healthView.sig) {
    healthView.sig = sig;
    renderHealthBanner(bad);
    renderHealthRecovered(Array.isArray(data.recovered) ? data.recovered.filter(isObject) : []);
  }
  const errorNode = byId('health-error');
  if (error) {
    errorNode.replaceChildren(
      el('strong', { text: 'The webhook health check failed: ' }), error,
      data.checked_at ? el('span', { class: 'small' }, ' (last check ', relTimeEl(data.checked_at), ')') : null);
  } else {
    errorNode.replaceChildren();
  }
  show(errorNode, !!error);
  // The quiet line only when all is well; its relative time is redrawn at every refresh.
  const ok = byId('health-ok');
  const quiet = !bad.length && !error;
  ok.replaceChildren(...(quiet ? healthOkLine(data, hooks) : []));
  show(ok, quiet);
}

function healthOkLine(data, hooks) {
  const glyph = el('span', { class: 'health-ok-glyph', 'aria-hidden': 'true', text: '✓' });
  if (!data.checked_at) return [el('span', { class: 'health-ok-glyph health-ok-none', 'aria-hidden': 'true', text: '•' }), 'Webhook health not checked yet'];
  const checked = [' · checked ', relTimeEl(data.checked_at)];
  if (!hooks.length) return [el('span', { class: 'health-ok-glyph health-ok-none', 'aria-hidden': 'true', text: '•' }), 'No Contentstack webhook found for this Worker', ...checked];
  return [glyph, el('span', { testid: 'health-ok-count', text: plural(hooks.length, 'webhook healthy', 'webhooks healthy') }), ...checked];
}

function renderHealthBanner(bad) {
  const banner = byId('health-banner');
  if (!bad.length) {
    banner.replaceChildren();
    show(banner, false);
    return;
  }
  const disabled = bad.filter((h) => h.disabled === true);
  const title = disabled.length
    ? `Contentstack has disabled ${disabled.length === 1 ? 'a webhook' : `${n(disabled.length)} webhooks`} of this Worker: jobs are not being delivered`
    : `${plural(bad.length, 'webhook is', 'webhooks are')} unhealthy: Contentstack's deliveries to this Worker are failing`;
  banner.replaceChildren(
    el('p', { class: 'health-banner-title' },
      el('span', { class: 'health-banner-glyph', 'aria-hidden': 'true', text: '✕' }),
      el('strong', { text: title })),
    el('ul', { class: 'health-webhooks' }, bad.map(webhookItem)),
    el('p', { class: 'health-fix', testid: 'health-fix' },
      el('strong', { text: 'How to fix: ' }), disabled.length ? WEBHOOK_FIX_DISABLED : WEBHOOK_FIX_UNHEALTHY));
  show(banner, true);
}

function webhookItem(h) {
  const state = h.disabled === true ? 'disabled' : 'unhealthy';
  const failed = Number(h.failed_executions) || 0;
  return el('li', { class: 'health-webhook', testid: 'health-webhook', 'data-uid': String(h.uid ?? ''), 'data-state': state },
    el('span', { class: 'health-webhook-head' },
      el('strong', { class: 'break', testid: 'health-webhook-name', text: String(h.name || h.uid || 'Unnamed webhook') }), ' ',
      el('span', { class: 'health-state', testid: 'health-webhook-state', text: state })),
    el('span', { class: 'health-webhook-facts' },
      'stack ', el('code', { class: 'break', testid: 'health-webhook-api-key', text: String(h.api_key ?? '—') }),
      ' · last failure ', el('span', { testid: 'health-webhook-last-failure' }, h.last_failure_at ? timeEl(h.last_failure_at) : el('span', { text: 'unknown' })),
      failed ? ` · ${plural(failed, 'failed delivery', 'failed deliveries')} seen by the last check` : null));
}

function renderHealthRecovered(rows) {
  const box = byId('health-recovered');
  if (!rows.length) {
    box.replaceChildren();
    show(box, false);
    return;
  }
  box.replaceChildren(
    el('h2', { id: 'health-recovered-title' }, 'Recovered by the last check ', el('span', { class: 'count', text: `(${n(rows.length)})` })),
    el('p', { class: 'muted small', text: 'Contentstack’s deliveries of these jobs were missed; the health check found them and took them in.' }),
    el('ul', { class: 'health-recovered-list' }, rows.map((r) => el('li', { testid: 'health-recovered-job', 'data-job-id': String(r.job_id ?? '') },
      el('a', { href: jobHref(String(r.job_id ?? '')), class: 'mono break', testid: 'health-recovered-link', text: String(r.job_id ?? '—') }), ' ',
      r.action ? actionBadge(r.action) : null, ' ',
      r.environment ? el('span', { class: 'chip', text: String(r.environment) }) : el('span', { class: 'muted small', text: 'any environment' }),
      el('span', { class: 'muted small' }, ' · ', timeEl(r.at, { short: true }),
        r.api_key ? [' · stack ', el('code', { class: 'break', text: String(r.api_key) })] : null)))));
  show(box, true);
}

/** Forgets every job shown (on sign-out). */
export function resetJobs() {
  list.jobs = [];
  list.cursor = null;
  list.loaded = false;
  list.extraPages = false;
  list.statuses.clear();
  list.announcedOnce = false;
  byId('jobs-body').replaceChildren();
  healthView.unsupported = false;
  healthView.data = null;
  healthView.sig = null;
  renderHealth(null);
}

/** Wires the view's controls (once, at boot). */
export function initJobs() {
  byId('jobs-more').addEventListener('click', loadMoreJobs);
  byId('jobs-refresh').addEventListener('click', () => {
    clearTimeout(list.timer);
    refreshJobs();
  });
  byId('jobs-auto').addEventListener('change', (ev) => {
    if (ev.currentTarget.checked) refreshJobs();
    else scheduleJobs();
  });
}
