// The job page (#/jobs/<id>): the record's facts, items, purge counts per environment, the
// verification of purged URLs, the attempt's timeline, the referrers purged with the job's
// items, errors, skipped templates, attempts and payload; it refreshes until the job is final,
// and replays it.
import { byId, el, cell, show, setNotice, announce } from '../dom.js';
import { dateFmt, timeEl, fmtDuration, n, plural, shortId } from '../format.js';
import { api, ApiError, describeError } from '../api.js';
import { currentRoute } from '../router.js';
import {
  FINAL, COUNTS, statusBadge, actionBadge, envChips, purgedSummary, skippedTable, referencesBlock, recoveredMark, isObject, zonesTable, warmTable,
} from '../widgets.js';
import { timelineBlock } from '../timeline.js';

const JOB_REFRESH_MS = 1500;

const jobView = { id: null, record: null, timer: null, token: 0, waitingFor: null, payloadText: null, timelineSig: null };

export function stopJob() {
  clearTimeout(jobView.timer);
  jobView.timer = null;
  jobView.token += 1;
}

export function openJob(id) {
  const sameJob = jobView.id === id && jobView.record;
  jobView.id = id;
  byId('job-id').textContent = id;
  byId('job-plan-link').setAttribute('href', `#/plan?job_id=${encodeURIComponent(id)}`);
  setNotice(byId('job-error'), '');
  if (!sameJob) {
    jobView.record = null;
    jobView.waitingFor = null;
    jobView.payloadText = null;
    jobView.timelineSig = null;
    setNotice(byId('job-message'), '');
    show(byId('job-body'), false);
    byId('job-status-slot').replaceChildren();
    byId('job-action-slot').replaceChildren();
    byId('job-source-slot').replaceChildren();
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
  byId('job-source-slot').replaceChildren(...[recoveredMark(rec, 'job-recovered')].filter(Boolean));
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
    rec.source === 'recovered'
      ? fact('Source', el('span', { testid: 'job-source', text: 'recovered by the webhook health check (Contentstack’s delivery was missed)' })) : null,
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

  byId('job-env-slot').replaceChildren(envTable(rec), ...[jobZones(rec), warmTable(rec.warm)].filter(Boolean));
  renderVerification(rec.verification);
  renderReferences(rec.references);

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
  // After the body is shown: the timeline is drawn as wide as its card.
  renderTimeline(rec.timeline);
  updateReplayButton();
}

// ------------------------------------------------------------------ verification

const PASS_WORDS = { 1: 'after the first pass', 2: 'after the second pass' };
const urlList = (urls) => (Array.isArray(urls) ? urls.map((u) => String(u)) : []);

/**
 * The probes of purged URLs, per environment (record `verification`): only records of jobs whose
 * rules set `verify_sample` carry it, so the section stays hidden for all other jobs.
 */
function renderVerification(v) {
  const envs = isObject(v) ? Object.entries(v).filter(([, e]) => isObject(e)) : [];
  show(byId('job-verification'), envs.length > 0);
  if (!envs.length) {
    byId('job-verification-count').textContent = '';
    byId('job-verification-note').textContent = '';
    byId('job-verification-body').replaceChildren();
    return;
  }
  const stale = envs.reduce((s, [, e]) => s + urlList(e.stale).length, 0);
  byId('job-verification-count').textContent = stale ? `(${plural(stale, 'URL still cached', 'URLs still cached')})` : '';
  // What a probe can see: the Worker asks for each URL once, from one data centre (`scope`).
  const scopes = [...new Set(envs.map(([, e]) => String(e.scope || 'one data centre')))];
  byId('job-verification-note').textContent = scopes.length === 1
    ? `Some purged URLs were requested again to check that the edge cache no longer serves the old page. A probe sees ${scopes[0]} only: a fresh answer there does not prove that every data centre dropped its copy.`
    : 'Some purged URLs were requested again to check that the edge cache no longer serves the old page. A probe sees only the data centres named under each environment.';
  byId('job-verification-body').replaceChildren(...envs.map(([name, e]) => verificationEnv(name, e, scopes.length > 1)));
}

function verificationEnv(name, e, showScope) {
  const stale = urlList(e.stale);
  const repurged = urlList(e.repurged);
  const unreachable = urlList(e.unreachable);
  const badge = stale.length
    ? el('span', { class: 'badge badge-failed', testid: 'verify-state', 'data-state': 'stale' },
      el('span', { class: 'badge-glyph', 'aria-hidden': 'true', text: '✕' }), el('span', { class: 'badge-text', text: `${n(stale.length)} still cached` }))
    : unreachable.length
      ? el('span', { class: 'badge badge-warn', testid: 'verify-state', 'data-state': 'unreachable' },
        el('span', { class: 'badge-glyph', 'aria-hidden': 'true', text: '!' }), el('span', { class: 'badge-text', text: `fresh, ${n(unreachable.length)} not reached` }))
      : el('span', { class: 'badge badge-done', testid: 'verify-state', 'data-state': 'fresh' },
        el('span', { class: 'badge-glyph', 'aria-hidden': 'true', text: '✓' }), el('span', { class: 'badge-text', text: 'all fresh' }));
  const stat = (label, value, testid, cls) => el('div', { class: `stat stat-small${cls ? ` ${cls}` : ''}` },
    el('span', { class: 'stat-value', testid, text: n(value) }),
    el('span', { class: 'stat-label', text: label }));
  const list = (title, urls, testid, cls, hint) => (urls.length
    ? el('div', { class: `verify-list ${cls}` },
      el('h4', {}, title, ' ', el('span', { class: 'count', text: `(${n(urls.length)})` })),
      hint ? el('p', { class: 'muted small', text: hint }) : null,
      el('ul', { class: 'codelist' }, urls.map((u) => el('li', { testid }, el('code', { text: u })))))
    : null);
  const pass = Number(e.pass);
  return el('section', { class: 'verify-env', testid: 'verify-env', 'data-env': name, 'aria-label': `Verification, ${name}` },
    el('h3', { class: 'env-title' }, el('span', { text: name }), badge),
    el('p', { class: 'muted small verify-meta' },
      el('span', { testid: 'verify-pass', 'data-pass': String(e.pass ?? '') }, PASS_WORDS[pass] ? `Checked ${PASS_WORDS[pass]}` : 'Checked'),
      ', finished ', el('span', { testid: 'verify-at' }, timeEl(e.at)),
      showScope && e.scope ? [' · a probe sees ', el('span', { testid: 'verify-scope', text: String(e.scope) }), ' only'] : null),
    el('div', { class: 'stats stats-small verify-stats' },
      stat('Checked', e.checked, 'verify-checked'),
      stat('Fresh', e.fresh, 'verify-fresh'),
      stat('Re-purged', repurged.length, 'verify-repurged'),
      stat('Still cached', stale.length, 'verify-stale', stale.length ? 'stat-bad' : null),
      stat('Not reached', unreachable.length, 'verify-unreachable', unreachable.length ? 'stat-warn' : null)),
    list('Still cached', stale, 'verify-stale-url', 'verify-list-stale', 'Still served from the cache after the extra purge: the job is partial.'),
    list('Re-purged', repurged, 'verify-repurged-url', 'verify-list-repurged', 'Looked stale at the first probe and were purged once more.'),
    list('Not reached', unreachable, 'verify-unreachable-url', 'verify-list-unreachable', 'The probe failed (network error or 5xx): neither fresh nor stale.'));
}

// ------------------------------------------------------------------ timeline

/** The attempt's timeline (record `timeline`); nothing when the record has none. */
function renderTimeline(timeline) {
  const section = byId('job-timeline');
  const body = byId('job-timeline-body');
  const has = isObject(timeline);
  show(section, has);
  if (!has) {
    jobView.timelineSig = null;
    body.replaceChildren();
    return;
  }
  const width = Math.round(body.clientWidth) || 720;
  const sig = `${width} ${JSON.stringify(timeline)}`;
  if (sig === jobView.timelineSig) return; // redrawn only when it changed (a tooltip stays put)
  jobView.timelineSig = sig;
  body.replaceChildren(...timelineBlock(timeline, { width }).filter(Boolean));
}

/**
 * The reference-aware purge: only records of jobs whose rules have a `references` section
 * carry one, so the section stays hidden for all other jobs.
 */
function renderReferences(refs) {
  const has = refs !== null && typeof refs === 'object' && !Array.isArray(refs);
  show(byId('job-references'), has);
  if (!has) {
    byId('job-references-count').textContent = '';
    byId('job-references-body').replaceChildren();
    return;
  }
  byId('job-references-count').textContent = Number(refs.referrers) ? `(${n(refs.referrers)})` : '';
  byId('job-references-body').replaceChildren(...referencesBlock(refs, { id: 'job-references', rowTestid: 'referrer-row' }));
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

/** Per environment and zone, what was purged there (`purged_by_environment.<env>.by_zone`). */
function jobZones(rec) {
  const byEnv = rec.purged_by_environment && typeof rec.purged_by_environment === 'object' ? rec.purged_by_environment : {};
  const rows = [];
  for (const [env, counts] of Object.entries(byEnv)) {
    const zones = counts && typeof counts.by_zone === 'object' && counts.by_zone ? counts.by_zone : {};
    for (const [zone, c] of Object.entries(zones)) rows.push([env, zone, c]);
  }
  return zonesTable(rows, 'zone-table', 'What was purged, per environment and Cloudflare zone');
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
  const current = currentRoute();
  if (current && current.name === 'job' && jobView.id === id) {
    stopJob();
    refreshJob();
  }
}

/** Forgets the job shown (on sign-out). */
export function resetJob() {
  jobView.id = null;
  jobView.record = null;
  jobView.timelineSig = null;
}

/** Wires the page's controls (once, at boot). */
export function initJob() {
  // The timeline's SVG is as wide as its card (its text keeps its size): redraw on a new width.
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => {
      const rec = jobView.record;
      if (rec && byId('job-timeline-body').clientWidth > 0) renderTimeline(rec.timeline);
    }).observe(byId('job-timeline-body'));
  }
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
}
