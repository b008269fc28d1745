// The "Recent jobs" view (#/jobs): the list, its auto-refresh, paging with "Load more", and
// announcements of new and finished jobs.
import { byId, el, cell, show, setNotice, announce } from '../dom.js';
import { timeFmt, timeEl, fmtDuration, n, plural, shortId } from '../format.js';
import { api, ApiError, describeError } from '../api.js';
import { LIST_PAGE } from '../router.js';
import { FINAL, statusBadge, actionBadge, envChips, purgedSummary, itemsSummary } from '../widgets.js';

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
    const sig = JSON.stringify([job.status, job.attempts, job.environments, job.items, job.purged, job.duration_ms, job.received_at]);
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
    td('Job', 'cell-id', el('a', { href: jobHref(job.job_id), class: 'mono', testid: 'job-link', title: String(job.job_id), text: String(job.job_id) })),
    td('Action', null, actionBadge(job.action)),
    td('Environments', null, envChips(job.environments)),
    td('Items', 'num', itemsSummary(job.items)),
    td('Purged', null, purgedSummary(FINAL.has(job.status) || job.status === 'processing' ? job.purged : null)),
    td('Status', null, statusBadge(job.status, 'job-status'),
      Number(job.attempts) > 1 ? el('span', { class: 'muted small', text: ` attempt ${n(job.attempts)}` }) : null),
    td('Duration', 'num nowrap', fmtDuration(job.duration_ms)),
  ];
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
