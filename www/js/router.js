// Routes (the part of the URL after #): which view a hash names, showing that view, and the
// route that is showing now.
import { byId, show } from './dom.js';

export const LIST_PAGE = 25; // default page size; #/jobs?limit=N (1–200) overrides it

const views = ['token', 'jobs', 'job', 'plan'];
let current = null; // {name, ...}

export function parseRoute() {
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

export function showView(name) {
  for (const v of views) show(byId(`view-${v}`), v === name);
  for (const a of document.querySelectorAll('.mainnav a')) {
    const on = a.dataset.route === name || (name === 'job' && a.dataset.route === 'jobs');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

export function focusHeading(id) {
  const h = byId(id);
  if (h) h.focus({ preventScroll: false });
}

/** The route that is showing: {name: 'token' | 'jobs' | 'job' | 'plan', ...}, or null before the first. */
export function currentRoute() {
  return current;
}

export function setCurrentRoute(r) {
  current = r;
}
