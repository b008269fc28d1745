// The admin token (kept in session storage, per tab) and the calls to the Worker's /api/*.

const TOKEN_KEY = 'contentstack-edge-purge:admin-token';
const REQUEST_TIMEOUT_MS = 20000;

/** Called with a message when a 401 answer means the stored token is no longer accepted. */
let unauthorized = () => {};
export function onUnauthorized(handler) {
  unauthorized = handler;
}

let memoryToken = '';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return memoryToken;
  }
}

export function setToken(t) {
  memoryToken = t;
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the in-memory copy is used */
  }
}

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** One admin API call. Throws ApiError; a 401 also signs the user out. */
export async function api(path, { method = 'GET', body, token = getToken(), signOutOn401 = true } = {}) {
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
  if (res.status === 401 && signOutOn401) unauthorized('The admin token was not accepted (it may have been changed). Enter it again.');
  throw err;
}

/**
 * The webhook health check (GET /api/health): {checked_at, error, webhooks, recovered}.
 * Throws ApiError like api(); a Worker without the check answers 404.
 */
export async function health() {
  const { data } = await api('/api/health');
  return data;
}

export function describeError(e, what) {
  const msg = (m) => String(m).replace(/\.?\s*$/, '');
  if (!(e instanceof ApiError)) return `${what}: ${msg(e && e.message ? e.message : e)}.`;
  if (e.status === 0) return `${what}: ${msg(e.message)}.`;
  return `${what}: ${msg(e.message)} (${e.status} ${e.code}).`;
}
