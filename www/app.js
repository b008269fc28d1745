// Operator dashboard for contentstack-edge-purge. Plain browser JavaScript, no dependencies.
// Every value that comes from the API reaches the page through textContent or attributes set
// with setAttribute (see el()); nothing is ever parsed as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'contentstack-edge-purge:admin-token';
  const LIST_PAGE = 25; // default page size; #/jobs?limit=N (1–200) overrides it
  const LIST_REFRESH_MS = 4000;
  const JOB_REFRESH_MS = 1500;
  const REQUEST_TIMEOUT_MS = 20000;
  const LIST_RENDER_CAP = 300; // items shown per plan list before "show all"
  const FINAL = new Set(['done', 'partial', 'failed']);
  const STATUS_GLYPH = { done: '✓', partial: '!', failed: '✕', processing: '↻', accepted: '•' };
  const COUNTS = [
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
  const PLAN_LISTS = [
    ['kv_keys', 'KV keys to delete', 'plan-kv-key', 'KV keys'],
    ['kv_prefixes', 'KV prefixes to sweep', 'plan-kv-prefix', 'KV prefixes'],
    ['cache_urls', 'Cache API entries to delete', 'plan-cache-url', 'Cache API entries'],
    ['tags', 'Cache tags to purge', 'plan-tag', 'cache tags'],
    ['files', 'URLs to purge', 'plan-file', 'URLs'],
    ['prefixes', 'URL prefixes to purge', 'plan-prefix', 'URL prefixes'],
    ['hosts', 'Hosts to purge', 'plan-host', 'hosts'],
  ];

  // ---------------------------------------------------------------- small DOM helpers

  const byId = (id) => document.getElementById(id);

  /**
   * createElement with attributes and children. `text` sets textContent, `class` the class
   * list, `testid` data-testid, `on<event>` a listener; anything else goes through setAttribute.
   * Children may be nodes, strings (text nodes), arrays, or null/false (skipped).
   */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'class') node.className = v;
      else if (k === 'testid') node.setAttribute('data-testid', v);
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(node, c);
      else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setNotice(node, text, kind) {
    node.replaceChildren();
    if (!text) {
      node.hidden = true;
      return;
    }
    node.className = 'notice' + (kind ? ` notice-${kind}` : '');
    append(node, [text]);
    node.hidden = false;
  }

  let announceTimer = null;
  /** Polite screen-reader announcement (also visible to sighted users where it matters). */
  function announce(text) {
    const a = byId('announcer');
    clearTimeout(announceTimer);
    a.textContent = '';
    // A fresh text node after a tick makes repeated messages announce again.
    announceTimer = setTimeout(() => {
      a.textContent = text;
    }, 50);
  }

  // ---------------------------------------------------------------- formatting

  const dateFmt = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  });
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const numFmt = new Intl.NumberFormat();

  function timeEl(iso, { short = false } = {}) {
    if (!iso) return el('span', { class: 'muted', text: '—' });
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return el('span', { text: String(iso) });
    const sameDay = new Date().toDateString() === d.toDateString();
    const label = short && sameDay ? timeFmt.format(d) : dateFmt.format(d);
    return el('time', { datetime: d.toISOString(), title: d.toISOString(), text: label });
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '—';
    ms = Number(ms);
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    const m = Math.floor(s / 60);
    return `${m} min ${Math.round(s - m * 60)} s`;
  }

  const n = (v) => numFmt.format(Number(v) || 0);
  const plural = (count, one, many) => `${n(count)} ${Number(count) === 1 ? one : many}`;
  const shortId = (id) => (String(id).length > 13 ? `${String(id).slice(0, 8)}…` : String(id));

  /**
   * A table cell labelled for the phone layout (where each row becomes a card and the label is
   * drawn from data-label); the content is wrapped so it stays together on one line of the card.
   */
  function cell(tag, label, attrs, ...kids) {
    return el(tag, { ...attrs, 'data-label': label }, el('span', { class: 'cell-v' }, ...kids));
  }

  function statusBadge(status, testid) {
    const s = String(status || 'unknown');
    const known = Object.prototype.hasOwnProperty.call(STATUS_GLYPH, s);
    return el('span', { class: `badge badge-${known ? s : 'unknown'}`, testid, 'data-status': s },
      el('span', { class: 'badge-glyph', 'aria-hidden': 'true', text: known ? STATUS_GLYPH[s] : '?' }),
      el('span', { class: 'badge-text', text: s }));
  }

  function actionBadge(action, testid) {
    return el('span', { class: `tag tag-${action === 'unpublish' ? 'unpublish' : 'publish'}`, testid, text: String(action || '—') });
  }

  function envChips(envs) {
    if (!Array.isArray(envs) || envs.length === 0) return el('span', { class: 'muted', text: 'not resolved yet' });
    return el('span', { class: 'chips' }, envs.map((e) => el('span', { class: 'chip', text: String(e) })));
  }

  function purgedSummary(p) {
    if (!p) return el('span', { class: 'muted', text: '—' });
    const parts = COUNTS.filter(([k]) => Number(p[k]) > 0).map(([k]) => `${n(p[k])} ${SHORT_COUNTS[k]}`);
    if (parts.length === 0) return el('span', { class: 'muted', text: 'nothing' });
    return el('span', { class: 'purged', text: parts.join(' · ') });
  }

  function itemsSummary(items) {
    if (!items || !Number(items.total)) return el('span', { class: 'muted', text: '—' });
    return el('span', {}, `${n(items.success)}/${n(items.total)}`,
      Number(items.failed) > 0 ? el('span', { class: 'muted', text: ` · ${n(items.failed)} failed` }) : null);
  }

  // ---------------------------------------------------------------- token and API

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return memoryToken;
    }
  }
  let memoryToken = '';
  function setToken(t) {
    memoryToken = t;
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage disabled: the in-memory copy is used */
    }
  }

  class ApiError extends Error {
    constructor(status, code, message, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body;
    }
  }

  /** One admin API call. Throws ApiError; a 401 also signs the user out. */
  async function api(path, { method = 'GET', body, token = getToken(), signOutOn401 = true } = {}) {
    const headers = { accept: 'application/json', authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
    let res;
    let text;
    try {
      res = await fetch(path, { method, headers, body, cache: 'no-store', credentials: 'omit', signal: ctl.signal });
      text = await res.text();
    } catch (e) {
      throw new ApiError(0, 'network', e && e.name === 'AbortError'
        ? 'The Worker did not answer in time.'
        : 'The Worker could not be reached. Check your connection.');
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (res.ok) return { status: res.status, data };
    const code = (data && typeof data.error === 'string' && data.error) || `http_${res.status}`;
    const message = (data && typeof data.message === 'string' && data.message) || `HTTP ${res.status}`;
    const err = new ApiError(res.status, code, message, data);
    if (res.status === 401 && signOutOn401) signOut('The admin token was not accepted (it may have been changed). Enter it again.');
    throw err;
  }

  function describeError(e, what) {
    const msg = (m) => String(m).replace(/\.?\s*$/, '');
    if (!(e instanceof ApiError)) return `${what}: ${msg(e && e.message ? e.message : e)}.`;
    if (e.status === 0) return `${what}: ${msg(e.message)}.`;
    return `${what}: ${msg(e.message)} (${e.status} ${e.code}).`;
  }

  // ---------------------------------------------------------------- routing

  const views = ['token', 'jobs', 'job', 'plan'];
  let current = null; // {name, ...}

  function parseRoute() {
    const raw = location.hash.replace(/^#\/?/, '');
    const q = raw.indexOf('?');
    const path = q >= 0 ? raw.slice(0, q) : raw;
    const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
    const parts = path.split('/').filter(Boolean);
    if (parts[0] === 'jobs' && parts.length >= 2) {
      let id = parts.slice(1).join('/');
      try {
        id = decodeURIComponent(id);
      } catch {
        /* keep it raw */
      }
      return { name: 'job', id };
    }
    if (parts[0] === 'plan') return { name: 'plan', jobId: params.get('job_id') || '', apiKey: params.get('api_key') || '' };
    const limit = Number(params.get('limit'));
    return { name: 'jobs', limit: Number.isInteger(limit) && limit >= 1 && limit <= 200 ? limit : LIST_PAGE };
  }

  function showView(name) {
    for (const v of views) show(byId(`view-${v}`), v === name);
    for (const a of document.querySelectorAll('.mainnav a')) {
      const on = a.dataset.route === name || (name === 'job' && a.dataset.route === 'jobs');
      if (on) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function focusHeading(id) {
    const h = byId(id);
    if (h) h.focus({ preventScroll: false });
  }

  function route({ focus = true } = {}) {
    stopJobs();
    stopJob();
    const signedIn = !!getToken();
    show(document.querySelector('.mainnav'), signedIn);
    show(document.querySelector('.session'), signedIn);
    if (!signedIn) {
      current = { name: 'token' };
      showView('token');
      document.title = 'Sign in · Edge purge';
      byId('token-input').focus();
      return;
    }
    current = parseRoute();
    showView(current.name);
    if (current.name === 'jobs') {
      document.title = 'Jobs · Edge purge';
      startJobs(current.limit);
      if (focus) focusHeading('jobs-title');
    } else if (current.name === 'job') {
      document.title = `Job ${shortId(current.id)} · Edge purge`;
      openJob(current.id);
      if (focus) focusHeading('job-title');
    } else if (current.name === 'plan') {
      document.title = 'Dry run · Edge purge';
      openPlan(current);
      if (focus) focusHeading('plan-title');
    }
  }

  // ---------------------------------------------------------------- sign in / out

  function signOut(message) {
    setToken('');
    list.jobs = [];
    list.cursor = null;
    list.loaded = false;
    list.extraPages = false;
    list.statuses.clear();
    list.announcedOnce = false;
    jobView.id = null;
    jobView.record = null;
    byId('jobs-body').replaceChildren();
    byId('plan-result').replaceChildren();
    byId('plan-result').hidden = true;
    route({ focus: false });
    const err = byId('token-error');
    if (message) {
      err.textContent = message;
      err.hidden = false;
    } else {
      err.hidden = true;
    }
  }

  async function onTokenSubmit(ev) {
    ev.preventDefault();
    const input = byId('token-input');
    const err = byId('token-error');
    const btn = byId('token-submit');
    const candidate = input.value.trim();
    if (!candidate) {
      err.textContent = 'Enter the admin token.';
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    btn.disabled = true;
    btn.textContent = 'Checking…';
    err.hidden = true;
    try {
      await api('/api/jobs?limit=1', { token: candidate, signOutOn401: false });
      setToken(candidate);
      input.value = '';
      input.removeAttribute('aria-invalid');
      announce('Signed in.');
      route();
    } catch (e) {
      let msg;
      if (e instanceof ApiError && e.status === 401) msg = 'The admin token was not accepted. Check it and try again.';
      else if (e instanceof ApiError && e.status === 404) msg = 'The admin API is turned off on this Worker: set the ADMIN_TOKEN secret to enable it.';
      else msg = describeError(e, 'Could not check the token');
      err.textContent = msg;
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.select();
    } finally {
      btn.disabled = false;
      btn.textContent = 'Sign in';
    }
  }

  // ---------------------------------------------------------------- jobs list

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

  function startJobs(pageSize) {
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

  function stopJobs() {
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

  async function refreshJobs() {
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

  // ---------------------------------------------------------------- one job

  const jobView = { id: null, record: null, timer: null, token: 0, waitingFor: null, payloadText: null };

  function stopJob() {
    clearTimeout(jobView.timer);
    jobView.timer = null;
    jobView.token += 1;
  }

  function openJob(id) {
    const sameJob = jobView.id === id && jobView.record;
    jobView.id = id;
    byId('job-id').textContent = id;
    byId('job-plan-link').setAttribute('href', `#/plan?job_id=${encodeURIComponent(id)}`);
    setNotice(byId('job-error'), '');
    if (!sameJob) {
      jobView.record = null;
      jobView.waitingFor = null;
      jobView.payloadText = null;
      setNotice(byId('job-message'), '');
      show(byId('job-body'), false);
      byId('job-status-slot').replaceChildren();
      byId('job-action-slot').replaceChildren();
      show(byId('job-loading'), true);
      updateReplayButton();
    }
    refreshJob();
  }

  async function refreshJob() {
    const token = jobView.token;
    const id = jobView.id;
    clearTimeout(jobView.timer);
    try {
      const { data } = await api(`/api/jobs/${encodeURIComponent(id)}`);
      if (token !== jobView.token) return;
      jobView.record = data;
      renderJob(data);
      setNotice(byId('job-error'), '');
      if (jobView.waitingFor !== null && Number(data.attempts) >= jobView.waitingFor && FINAL.has(data.status)) {
        const msg = `Attempt ${n(data.attempts)} finished: ${data.status}.`;
        setNotice(byId('job-message'), msg, data.status === 'done' ? 'ok' : 'warn');
        announce(msg);
        jobView.waitingFor = null;
      }
      if (!FINAL.has(data.status)) jobView.timer = setTimeout(refreshJob, JOB_REFRESH_MS);
    } catch (e) {
      if (token !== jobView.token) return;
      if (e instanceof ApiError && e.status === 401) return;
      if (e instanceof ApiError && e.status === 404 && !jobView.record) {
        setNotice(byId('job-error'), `There is no job with the ID “${id}” in the ledger (or the admin API is turned off).`, 'error');
      } else {
        setNotice(byId('job-error'), `${describeError(e, 'Could not load the job')} Retrying…`, 'error');
        jobView.timer = setTimeout(refreshJob, JOB_REFRESH_MS * 3);
      }
    } finally {
      if (token === jobView.token) show(byId('job-loading'), false);
    }
  }

  function updateReplayButton() {
    const btn = byId('replay-button');
    const hint = byId('replay-hint');
    const rec = jobView.record;
    show(byId('job-toolbar'), !!rec);
    if (!rec) {
      btn.setAttribute('aria-disabled', 'true');
      hint.hidden = true;
      return;
    }
    const running = !FINAL.has(rec.status);
    // aria-disabled (not disabled) keeps the button focusable while a run is in progress.
    if (running || jobView.replaying === true) btn.setAttribute('aria-disabled', 'true');
    else btn.removeAttribute('aria-disabled');
    if (running) {
      hint.textContent = `Attempt ${n(rec.attempts)} is ${rec.status}; replay becomes available when it finishes. This page refreshes until then.`;
      hint.hidden = false;
    } else {
      hint.hidden = true;
    }
  }

  function fact(term, ...value) {
    return [el('dt', { text: term }), el('dd', {}, ...value)];
  }

  function renderJob(rec) {
    byId('job-status-slot').replaceChildren(statusBadge(rec.status, 'job-status'));
    byId('job-action-slot').replaceChildren(actionBadge(rec.action, 'job-action'));
    const planQuery = new URLSearchParams({ job_id: String(rec.job_id) });
    if (rec.api_key) planQuery.set('api_key', String(rec.api_key));
    byId('job-plan-link').setAttribute('href', `#/plan?${planQuery}`);
    document.title = `Job ${shortId(rec.job_id)} (${rec.status}) · Edge purge`;

    byId('job-facts').replaceChildren(...[
      fact('Status', el('span', { text: String(rec.status) })),
      fact('Attempts', el('span', { testid: 'job-attempts', text: String(rec.attempts) })),
      fact('Environments', envChips(rec.environments)),
      fact('Received', timeEl(rec.received_at)),
      fact('Started', timeEl(rec.started_at)),
      fact('Finished', timeEl(rec.finished_at)),
      fact('Duration', el('span', { testid: 'job-duration', text: fmtDuration(rec.duration_ms) })),
      fact('First pass', el('span', { testid: 'job-first-pass' }, timeEl(rec.first_pass_at))),
      fact('Second pass', el('span', { testid: 'job-second-pass' }, secondPass(rec))),
      fact('Deliveries', el('span', { testid: 'job-deliveries', text: deliveries(rec) })),
      Number(rec.drives) > 0
        ? fact('Alarm drives', el('span', { testid: 'job-drives', text: `${n(rec.drives)} (the job stalled and was driven again)` })) : null,
      fact('Stack API key', rec.api_key ? el('code', { class: 'break', text: rec.api_key }) : el('span', { class: 'muted', text: '—' })),
      fact('Channel environment', rec.channel_environment
        ? el('span', { text: rec.channel_environment })
        : el('span', { class: 'muted', text: 'none (generic channel)' })),
      Array.isArray(rec.hinted_environments) && rec.hinted_environments.length
        ? fact('Hinted environments', el('span', { text: rec.hinted_environments.join(', ') })) : null,
      fact('Largest invocation', el('span', { text: `${n(rec.max_invocation_subrequests)} subrequests` })),
    ].flat().filter(Boolean));

    const items = rec.items || {};
    byId('job-items').replaceChildren(...[
      ['total', 'Total'], ['success', 'Published'], ['failed', 'Failed'], ['skipped', 'Skipped'],
    ].map(([k, label]) => el('div', { class: `stat stat-${k}` },
      el('span', { class: 'stat-value', testid: `items-${k}`, text: n(items[k]) }),
      el('span', { class: 'stat-label', text: label }))));

    const purged = rec.purged || {};
    byId('job-purged-totals').replaceChildren(...COUNTS.filter(([k]) => (k !== 'prefixes' && k !== 'hosts') || Number(purged[k]) > 0)
      .map(([k, label]) => el('div', { class: 'stat stat-small' },
        el('span', { class: 'stat-value', testid: `purged-${k}`, text: n(purged[k]) }),
        el('span', { class: 'stat-label', text: k === 'api_calls' ? 'Purge API calls' : label }))));

    byId('job-env-slot').replaceChildren(envTable(rec));

    const errors = Array.isArray(rec.errors) ? rec.errors : [];
    byId('job-errors-count').textContent = errors.length ? `(${n(errors.length)})` : '';
    byId('job-errors').replaceChildren(errors.length
      ? el('ul', { class: 'errors' }, errors.map((e) => el('li', { testid: 'job-error-row', text: String(e) })))
      : el('p', { class: 'muted', testid: 'job-errors-empty', text: 'No errors.' }));

    const skipped = Array.isArray(rec.skipped) ? rec.skipped : [];
    byId('job-skipped-count').textContent = skipped.length ? `(${n(skipped.length)})` : '';
    byId('job-skipped').replaceChildren(skippedTable(skipped, 'skipped-row'));

    byId('job-history').replaceChildren(historyTable(rec));

    const text = JSON.stringify(rec.payload, null, 2);
    if (text !== jobView.payloadText) {
      jobView.payloadText = text;
      byId('job-payload').textContent = text === undefined ? '(no payload kept)' : text;
    }
    show(byId('job-body'), true);
    updateReplayButton();
  }

  /** The second purge pass: when it finished, when it is due, or why there is none. */
  function secondPass(rec) {
    if (rec.second_pass_at) return timeEl(rec.second_pass_at);
    const due = Object.values(rec.passes || {}).map((p) => p && p.second_due_ms).filter((d) => Number.isFinite(d));
    if (due.length && !FINAL.has(rec.status)) {
      return el('span', { text: `due ${dateFmt.format(new Date(Math.max(...due)))}` });
    }
    return el('span', { class: 'muted', text: rec.first_pass_at ? 'none (off, or no KV and purge work)' : '—' });
  }

  /** Each delivery of the job (a channel's environment, or any) and whether it is collected. */
  function deliveries(rec) {
    const scopes = rec.scopes && typeof rec.scopes === 'object' ? Object.entries(rec.scopes) : [];
    if (!scopes.length) return rec.channel_environment || 'any environment';
    return scopes.map(([k, v]) => `${k === '*' ? 'any environment' : k}${v && v.collected ? '' : ' (reading items)'}`).join(', ');
  }

  function envTable(rec) {
    const byEnv = rec.purged_by_environment && typeof rec.purged_by_environment === 'object' ? rec.purged_by_environment : {};
    const names = Object.keys(byEnv);
    for (const e of rec.environments || []) if (!names.includes(e)) names.push(e);
    const row = (name, counts, attrs) => el('tr', attrs,
      el('th', { scope: 'row', text: name }),
      COUNTS.map(([k, label]) => cell('td', label, { class: 'num', 'data-field': k }, n(counts && counts[k]))));
    const table = el('table', { class: 'table table-cards table-env', testid: 'env-table' },
      el('caption', { class: 'visually-hidden', text: 'What was purged, per environment and in total' }),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Environment' }),
        COUNTS.map(([, label]) => el('th', { scope: 'col', class: 'num', text: label })))),
      el('tbody', {}, names.map((name) => row(name, byEnv[name], { testid: 'env-row', 'data-env': name }))),
      el('tfoot', {}, row('Total', rec.purged, { testid: 'env-total', class: 'total' })));
    if (!names.length && !FINAL.has(rec.status)) {
      return el('p', { class: 'empty', text: 'Nothing purged yet: the job has not been processed.' });
    }
    return el('div', { class: 'table-wrap' }, table);
  }

  function skippedTable(rows, testid) {
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

  function historyTable(rec) {
    const history = Array.isArray(rec.history) ? rec.history.slice() : [];
    const rows = [{
      attempt: rec.attempts, status: rec.status, started_at: rec.started_at || rec.received_at,
      finished_at: rec.finished_at, purged: rec.purged, errors: rec.errors, current: true,
    }].concat(history.reverse());
    return el('div', { class: 'table-wrap' },
      el('table', { class: 'table table-cards' },
        el('caption', { class: 'visually-hidden', text: 'Attempts, newest first' }),
        el('thead', {}, el('tr', {}, ['Attempt', 'Status', 'Started', 'Finished', 'Purged', 'Errors'].map((t) => el('th', { scope: 'col', text: t })))),
        el('tbody', {}, rows.map((a) => el('tr', { testid: 'attempt-row', 'data-attempt': String(a.attempt) },
          cell('th', 'Attempt', { scope: 'row' }, `#${a.attempt}`, a.current ? el('span', { class: 'muted small', text: ' (current)' }) : null),
          cell('td', 'Status', {}, statusBadge(a.status)),
          cell('td', 'Started', { class: 'nowrap' }, timeEl(a.started_at)),
          cell('td', 'Finished', { class: 'nowrap' }, timeEl(a.finished_at)),
          cell('td', 'Purged', {}, purgedSummary(a.purged)),
          cell('td', 'Errors', {}, Array.isArray(a.errors) && a.errors.length
            ? el('span', { title: a.errors.join('\n'), text: plural(a.errors.length, 'error', 'errors') })
            : el('span', { class: 'muted', text: 'none' })))))));
  }

  function askReplay() {
    const rec = jobView.record;
    if (!rec || !FINAL.has(rec.status) || jobView.replaying) return;
    const envs = Array.isArray(rec.environments) && rec.environments.length ? rec.environments.join(', ') : 'the job’s environments';
    byId('replay-dialog-text').textContent =
      `Job ${rec.job_id} will be purged again for ${envs}. Purges are idempotent; this starts attempt ${Number(rec.attempts) + 1}.`;
    const dlg = byId('replay-dialog');
    dlg.returnValue = '';
    if (typeof dlg.showModal === 'function') dlg.showModal();
    else if (window.confirm(byId('replay-dialog-text').textContent)) doReplay();
  }

  async function doReplay() {
    const id = jobView.id;
    jobView.replaying = true;
    updateReplayButton();
    setNotice(byId('job-message'), 'Sending the replay…');
    try {
      const { data } = await api(`/api/jobs/${encodeURIComponent(id)}/replay`, { method: 'POST' });
      if (jobView.id !== id) return;
      jobView.waitingFor = Number(data && data.attempt) || (Number(jobView.record && jobView.record.attempts) + 1);
      const msg = `Replay accepted: attempt ${n(jobView.waitingFor)} is queued. This page refreshes until it finishes.`;
      setNotice(byId('job-message'), msg, 'info');
      announce(msg);
      if (jobView.record) jobView.record = { ...jobView.record, status: 'accepted' };
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) setNotice(byId('job-message'), describeError(e, 'The replay was not accepted'), 'error');
    } finally {
      jobView.replaying = false;
      updateReplayButton();
    }
    if (current && current.name === 'job' && jobView.id === id) {
      stopJob();
      refreshJob();
    }
  }

  // ---------------------------------------------------------------- dry run

  function openPlan(r) {
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

    const envSections = Object.keys(envs).map((name) => planEnv(name, envs[name]));
    if (!envSections.length) {
      envSections.push(el('p', { class: 'card empty', text: 'No environment of this job has a purge rule, so nothing would be purged.' }));
    }
    const skipped = Array.isArray(plan.skipped) ? plan.skipped : [];
    const skippedSection = el('section', { class: 'card card-flush', 'aria-labelledby': 'plan-skipped-title' },
      el('h2', { id: 'plan-skipped-title', class: 'card-title' }, 'Skipped templates ', skipped.length ? el('span', { class: 'count', text: `(${n(skipped.length)})` }) : null),
      skippedTable(skipped, 'plan-skipped-row'));
    out.replaceChildren(summary, ...envSections, skippedSection);
  }

  function planEnv(name, env) {
    env = env || {};
    const meta = [
      ['Environment UID', env.environment_uid],
      ['Zone', env.zone_id],
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
      full.length ? el('div', { class: 'plan-lists' }, full.map((l) => codeList(l.label, l.values, l.testid, l.key))) : null,
      empty.length ? el('p', { class: 'muted small plan-nothing', text: `Nothing to do for: ${empty.join(', ')}.` }) : null);
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

  // ---------------------------------------------------------------- wiring

  async function loadVersion() {
    try {
      const r = await fetch('/healthz', { cache: 'no-store', credentials: 'omit' });
      const d = await r.json();
      if (d && d.version) byId('version').textContent = `contentstack-edge-purge ${d.version}`;
    } catch {
      /* the footer stays empty */
    }
  }

  function init() {
    byId('token-form').addEventListener('submit', onTokenSubmit);
    byId('token-show').addEventListener('change', (ev) => {
      byId('token-input').type = ev.currentTarget.checked ? 'text' : 'password';
    });
    byId('token-input').addEventListener('input', () => byId('token-input').removeAttribute('aria-invalid'));
    byId('token-forget').addEventListener('click', () => {
      signOut('');
      announce('The admin token was forgotten.');
    });
    byId('jobs-more').addEventListener('click', loadMoreJobs);
    byId('jobs-refresh').addEventListener('click', () => {
      clearTimeout(list.timer);
      refreshJobs();
    });
    byId('jobs-auto').addEventListener('change', (ev) => {
      if (ev.currentTarget.checked) refreshJobs();
      else scheduleJobs();
    });
    byId('replay-button').addEventListener('click', askReplay);
    byId('replay-dialog').addEventListener('close', () => {
      if (byId('replay-dialog').returnValue === 'confirm') doReplay();
      byId('replay-button').focus();
    });
    byId('job-payload-copy').addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(byId('job-payload').textContent);
        announce('Payload copied.');
      } catch {
        announce('Could not copy: select the text instead.');
      }
    });
    byId('plan-form').addEventListener('submit', onPlanSubmit);
    byId('plan-input').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) byId('plan-form').requestSubmit();
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && current && current.name === 'jobs') refreshJobs();
    });
    window.addEventListener('hashchange', () => route());
    // Another tab forgetting the token does not touch this one (session storage is per tab).
    loadVersion();
    route({ focus: false });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
