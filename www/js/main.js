// Operator dashboard for contentstack-edge-purge: boot and routing. Plain browser JavaScript
// (native ES modules), no dependencies, no build step. Every value that comes from the API
// reaches the page through textContent or attributes (see el() in dom.js); nothing is ever
// parsed as HTML.
import { byId, show, announce } from './dom.js';
import { shortId } from './format.js';
import { getToken, setToken, onUnauthorized } from './api.js';
import { parseRoute, showView, focusHeading, currentRoute, setCurrentRoute } from './router.js';
import { initSignIn, showSignInError } from './views/signin.js';
import { initJobs, startJobs, stopJobs, refreshJobs, resetJobs } from './views/jobs.js';
import { initJob, openJob, stopJob, resetJob } from './views/job.js';
import { initPlan, openPlan, resetPlan } from './views/plan.js';

function route({ focus = true } = {}) {
  stopJobs();
  stopJob();
  const signedIn = !!getToken();
  show(document.querySelector('.mainnav'), signedIn);
  show(document.querySelector('.session'), signedIn);
  if (!signedIn) {
    setCurrentRoute({ name: 'token' });
    showView('token');
    document.title = 'Sign in · Edge purge';
    byId('token-input').focus();
    return;
  }
  const current = parseRoute();
  setCurrentRoute(current);
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

/** Forgets the token and everything loaded with it, and shows the sign-in form (with `message`). */
function signOut(message) {
  setToken('');
  resetJobs();
  resetJob();
  resetPlan();
  route({ focus: false });
  showSignInError(message);
}

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
  onUnauthorized(signOut);
  initSignIn({ onSignedIn: () => route() });
  byId('token-forget').addEventListener('click', () => {
    signOut('');
    announce('The admin token was forgotten.');
  });
  initJobs();
  initJob();
  initPlan();
  document.addEventListener('visibilitychange', () => {
    const current = currentRoute();
    if (!document.hidden && current && current.name === 'jobs') refreshJobs();
  });
  window.addEventListener('hashchange', () => route());
  // Another tab forgetting the token does not touch this one (session storage is per tab).
  loadVersion();
  route({ focus: false });
}

// Module scripts run after the document is parsed; the check only guards an unusual embedding.
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
