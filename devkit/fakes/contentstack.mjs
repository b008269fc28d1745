// Fake Contentstack: Content Management API (job status, job items, environments, entries,
// assets, the references of an entry or asset, webhooks and their executions) and the app host's
// /.well-known/public-keys.json, on 127.0.0.1 with an ephemeral port.
// Only Node built-ins. See stack.mjs for the stack/job data model.

import http from 'node:http';
import crypto from 'node:crypto';
import { jobStatusJson, webhookJson } from './stack.mjs';
import { faultRules, listen, matches, sleep } from './common.mjs';

const ERR = {
  apiKey: { status: 412, body: { error_message: 'Api Key is not valid.', error_code: 109, errors: { api_key: ['is not valid.'] } } },
  auth: { status: 401, body: { error_message: "You're not allowed in here unless you're logged in.", error_code: 105, errors: { authorization: ['is not valid.'] } } },
  apiVersion: { status: 400, body: { error_message: 'This API requires the api_version header set to 3.2.', error_code: 400, errors: { api_version: ['is required.'] } } },
  branch: { status: 422, body: { error_message: 'Branch not found or you do not have access to it.', error_code: 903, errors: { branch: ['is not valid.'] } } },
  rate: { status: 429, body: { error_message: 'Too many requests. Please try again after some time.', error_code: 429, errors: { rate_limit: ['exceeded'] } } },
  notFound: { status: 404, body: { error_message: "The requested object doesn't exist.", error_code: 141, errors: {} } },
  jobNotFound: { status: 404, body: { error_message: 'Job not found.', error_code: 404, errors: { job_id: ['is not valid.'] } } },
  webhookNotFound: { status: 404, body: { error_message: 'Webhook was not found.', error_code: 141, errors: { uid: ['is not valid.'] } } },
  badQuery: { status: 400, body: { error_message: 'Invalid query.', error_code: 400, errors: { query: ['is not valid.'] } } },
  badDate: { status: 400, body: { error_message: 'Invalid date.', error_code: 400, errors: { from: ['is not a valid date.'] } } },
};

/**
 * Whether a value passes one field condition of a `query`: a plain value (equality) or an object of
 * operators $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin (unknown operators are ignored). As in MongoDB,
 * null (a timed-out execution's status) fails every comparison but passes $ne and $in [null].
 */
function passes(value, cond) {
  if (cond === null || typeof cond !== 'object' || Array.isArray(cond)) return value === cond;
  const num = typeof value === 'number';
  for (const [op, arg] of Object.entries(cond)) {
    switch (op) {
      case '$eq': if (value !== arg) return false; break;
      case '$ne': if (value === arg) return false; break;
      case '$gt': if (!num || !(value > arg)) return false; break;
      case '$gte': if (!num || !(value >= arg)) return false; break;
      case '$lt': if (!num || !(value < arg)) return false; break;
      case '$lte': if (!num || !(value <= arg)) return false; break;
      case '$in': if (!Array.isArray(arg) || !arg.includes(value)) return false; break;
      case '$nin': if (Array.isArray(arg) && arg.includes(value)) return false; break;
      default: break;
    }
  }
  return true;
}

function defaultFaultBody(status) {
  if (status === 429) return ERR.rate.body;
  return { error_message: `Fault injected: HTTP ${status}.`, error_code: status, errors: {} };
}

function parseQuery(searchParams) {
  const q = {};
  for (const [k, v] of searchParams) {
    if (k in q) q[k] = [].concat(q[k], v);
    else q[k] = k.endsWith('[]') ? [v] : v;
  }
  return q;
}

/** The branch a stack answers on when no job or entry says otherwise. */
function stackDefaultBranch(stack) {
  return stack.branch && stack.branch !== 'main' ? stack.branch : 'main';
}

/** Every branch a stack knows: its default, its jobs' and its entries'/assets'. */
function branchesOf(stack) {
  const out = new Set([stackDefaultBranch(stack)]);
  for (const j of stack.jobs.values()) if (j.body?.branch) out.add(j.body.branch);
  for (const e of stack.entries.values()) if (e.branch) out.add(e.branch);
  for (const a of stack.assets.values()) if (a.branch) out.add(a.branch);
  return out;
}

/** Fixed publish time of every publish_details element the references endpoints answer. */
const PUBLISH_TIME = '2024-07-01T05:22:34.051Z';

/**
 * One element of a references answer: referrer entry `r` in `locale`, with every environment
 * and locale it is published to when `withDetails` (the Worker picks the ones it needs).
 */
function referenceJson(stack, r, locale, withDetails) {
  const ref = {
    entry_uid: r.uid,
    content_type_uid: r.content_type,
    locale,
    _version: r.version,
    title: r.title,
    content_type_title: `${r.content_type[0].toUpperCase()}${r.content_type.slice(1)}`,
  };
  if (withDetails) {
    ref.publish_details = [];
    for (const [environment, byLocale] of Object.entries(r.published ?? {})) {
      for (const [loc, version] of Object.entries(byLocale)) {
        ref.publish_details.push({ environment, locale: loc, time: PUBLISH_TIME, user: stack.user, version });
      }
    }
  }
  return ref;
}

function toInt(v, dflt) {
  if (v === undefined || v === '') return dflt;
  const n = Number.parseInt(String(v), 10);
  return Number.isFinite(n) ? n : dflt;
}

/**
 * Start the fake.
 * @param {object} [opts]
 * @param {object[]} [opts.stacks=[]] stacks from stack.mjs makeStack, each with its own api_key, token, branch
 *   and rate-limit window (more can be pushed to `stacks` later)
 * @param {number} [opts.rateLimitPerSecond=10] max requests per api_key starting in any 1000 ms window (0/Infinity = off)
 * @param {{publicKey, privateKey}} [opts.keyPair] KeyObjects or PEMs; default: fresh 2048-bit RSA pair
 */
export async function startContentstack({ stacks = [], rateLimitPerSecond = 10, keyPair, port = 0 } = {}) {
  const kp = keyPair ?? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKey = typeof kp.privateKey === 'object' && kp.privateKey.type ? kp.privateKey : crypto.createPrivateKey(kp.privateKey);
  const publicKey = typeof kp.publicKey === 'object' && kp.publicKey.type ? kp.publicKey : crypto.createPublicKey(kp.publicKey ?? privateKey);
  const publicKeyPem = publicKey.export({ type: 'pkcs1', format: 'pem' });

  const requests = [];
  const faults = faultRules();
  const revoked = new Set(); // api keys whose management token was revoked
  const starts = new Map(); // api_key -> [start ms]
  let limit = rateLimitPerSecond;
  let rateLimited = 0;

  const findStack = (apiKey) => stacks.find((s) => s.apiKey === apiKey);

  function overLimit(apiKey, now) {
    if (!limit || limit === Infinity || !apiKey) return false;
    let arr = starts.get(apiKey);
    if (!arr) starts.set(apiKey, (arr = []));
    while (arr.length && now - arr[0] >= 1000) arr.shift();
    arr.push(now);
    return arr.length > limit;
  }

  async function handle(req, res, rec) {
    const send = (status, body, headers = {}) => {
      rec.status = status;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    const url = new URL(req.url, 'http://127.0.0.1');
    const path = url.pathname;
    const apiKey = req.headers.api_key;

    if (overLimit(apiKey, rec.at)) {
      rateLimited += 1;
      return send(429, ERR.rate.body, { 'retry-after': '1', 'x-ratelimit-limit': String(limit), 'x-ratelimit-remaining': '0' });
    }

    const f = faults.take(req.method, req.url);
    let totalCountOverride;
    if (f) {
      rec.fault = true;
      if (f.delayMs) await sleep(f.delayMs);
      if (f.status) {
        const headers = f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {};
        return send(f.status, f.body !== undefined ? f.body : defaultFaultBody(f.status), headers);
      }
      if (f.body !== undefined) return send(200, f.body);
      totalCountOverride = f.totalCountOverride;
    }

    if (req.method === 'GET' && path === '/.well-known/public-keys.json') {
      return send(200, { 'signing-key': publicKeyPem });
    }
    if (!path.startsWith('/v3/')) return send(404, ERR.notFound.body);

    // Auth: a revoked token answers 401 like a wrong one.
    const stack = findStack(apiKey);
    if (!stack) return send(ERR.apiKey.status, ERR.apiKey.body);
    if (revoked.has(apiKey) || req.headers.authorization !== stack.token) return send(ERR.auth.status, ERR.auth.body);
    // Branches: the header must name a branch of the stack ("main" when absent); calls about a
    // job's items need the job's branch, calls about an entry or asset the branch it lives on.
    // The job status itself answers on the stack's default branch or the job's.
    const defaultBranch = stackDefaultBranch(stack);
    const gotBranch = req.headers.branch ?? 'main';
    if (!branchesOf(stack).has(gotBranch)) return send(ERR.branch.status, ERR.branch.body);
    if (req.method !== 'GET') return send(405, { error_message: 'Method not allowed in this fake.', error_code: 405, errors: {} });

    let m;
    if ((m = path.match(/^\/v3\/bulk\/jobs\/([^/]+)(\/items)?\/?$/))) {
      if (req.headers.api_version !== '3.2') return send(ERR.apiVersion.status, ERR.apiVersion.body);
      const job = stack.jobs.get(decodeURIComponent(m[1]));
      const jobBranch = job?.body?.branch ?? defaultBranch;
      const allowed = m[2] ? [jobBranch] : [defaultBranch, jobBranch];
      if (!allowed.includes(gotBranch)) return send(ERR.branch.status, ERR.branch.body);
      if (!job) return send(ERR.jobNotFound.status, ERR.jobNotFound.body);
      if (!m[2]) return send(200, jobStatusJson(job));

      const q = rec.query;
      let items = job.items;
      if (q.status === 'success' || q.status === 'failed') items = items.filter((i) => i.publish_details.status === q.status);
      if (q.type === 'entry' || q.type === 'asset') items = items.filter((i) => i.type === q.type);
      const cts = q['ct[]'] ?? (q.ct !== undefined ? [].concat(q.ct) : undefined);
      if (cts) items = items.filter((i) => i.type !== 'entry' || cts.includes(i.content_type.uid));
      const skip = Math.max(0, toInt(q.skip, 0));
      let lim = toInt(q.limit, 100);
      if (lim <= 0 || lim > 100) lim = 100;
      const out = { items: items.slice(skip, skip + lim), skip, limit: lim };
      if (String(q.include_count) === 'true' && skip === 0) out.total_count = totalCountOverride ?? items.length;
      return send(200, out);
    }
    if (path === '/v3/environments' || path === '/v3/environments/') {
      return send(200, {
        environments: stack.environments.map((e) => ({
          name: e.name,
          uid: e.uid,
          urls: e.urls.map((u) => ({ ...u })),
          servers: [],
          deploy_content: false,
          created_at: '2024-01-01T00:00:00.000Z',
          updated_at: '2024-01-01T00:00:00.000Z',
          created_by: stack.user,
          updated_by: stack.user,
          _version: 1,
        })),
      });
    }
    // Batched look-ups: `query={"uid":{"$in":[…]}}`, at most 100 uids, latest versions.
    const batchUids = () => {
      if (stack.refuseQueries) return { error: { status: 422, body: { error_message: 'The query parameter is not allowed.', error_code: 422, errors: { query: ['is not allowed.'] } } } };
      let query;
      try { query = JSON.parse(rec.query.query ?? ''); } catch { query = null; }
      const uids = query && query.uid && query.uid.$in;
      if (!Array.isArray(uids) || uids.length > 100 || uids.some((u) => typeof u !== 'string')) {
        return { error: { status: 400, body: { error_message: 'Invalid query.', error_code: 400, errors: { query: ['is not valid.'] } } } };
      }
      return { uids };
    };
    if ((m = path.match(/^\/v3\/content_types\/([^/]+)\/entries\/?$/))) {
      const ct = decodeURIComponent(m[1]);
      const b = batchUids();
      if (b.error) return send(b.error.status, b.error.body);
      const locale = rec.query.locale;
      const entries = b.uids
        .map((u) => stack.entries.get(u))
        .filter((e) => e && e.content_type === ct && gotBranch === (e.branch ?? defaultBranch) && (!locale || e.locales.includes(locale)))
        .map((e) => {
          const entry = { uid: e.uid, title: e.title, locale: locale || e.locales[0] || 'en-us', _version: e.version };
          const url = e.urlsByVersion?.[e.version] ?? e.url;
          if (url !== undefined) entry.url = url;
          return entry;
        });
      return send(200, { entries, count: entries.length });
    }
    if (path === '/v3/assets' || path === '/v3/assets/') {
      const b = batchUids();
      if (b.error) return send(b.error.status, b.error.body);
      const assets = b.uids
        .map((u) => stack.assets.get(u))
        .filter((a) => a && gotBranch === (a.branch ?? defaultBranch))
        .map((a) => ({ uid: a.uid, url: a.url, filename: a.filename, title: a.title, _version: a.version }));
      return send(200, { assets, count: assets.length });
    }
    // References: the entries whose `refs` hold an entry or asset (stack.mjs addReference), on the
    // branch asked. Matched before the single entry and asset routes. `stack.refuseReferences`
    // makes them answer 422 (a stack or plan without the endpoint).
    const referrersOf = (uid) => [...stack.entries.values()]
      .filter((r) => (r.refs ?? []).includes(uid) && gotBranch === (r.branch ?? defaultBranch));
    const refusedReferences = () => send(422, { error_message: 'The references endpoint is not allowed.', error_code: 422, errors: { references: ['is not allowed.'] } });
    const withDetails = String(rec.query.include_publish_details) === 'true';
    if ((m = path.match(/^\/v3\/content_types\/([^/]+)\/entries\/([^/]+)\/references\/?$/))) {
      if (stack.refuseReferences) return refusedReferences();
      const ct = decodeURIComponent(m[1]);
      const e = stack.entries.get(decodeURIComponent(m[2]));
      if (!e || e.content_type !== ct || gotBranch !== (e.branch ?? defaultBranch)) return send(ERR.notFound.status, ERR.notFound.body);
      const locale = rec.query.locale || undefined;
      const references = referrersOf(e.uid)
        .filter((r) => (locale ? r.locales.includes(locale) : r.locales.length > 0))
        .map((r) => referenceJson(stack, r, locale ?? r.locales[0], withDetails));
      return send(200, { references, count: references.length });
    }
    if ((m = path.match(/^\/v3\/assets\/([^/]+)\/references\/?$/))) {
      if (stack.refuseReferences) return refusedReferences();
      const a = stack.assets.get(decodeURIComponent(m[1]));
      if (!a || gotBranch !== (a.branch ?? defaultBranch)) return send(ERR.notFound.status, ERR.notFound.body);
      const references = referrersOf(a.uid).flatMap((r) => r.locales.map((l) => referenceJson(stack, r, l, withDetails)));
      return send(200, { references, count: references.length });
    }
    if ((m = path.match(/^\/v3\/content_types\/([^/]+)\/entries\/([^/]+)\/?$/))) {
      const ct = decodeURIComponent(m[1]);
      const e = stack.entries.get(decodeURIComponent(m[2]));
      if (e && gotBranch !== (e.branch ?? defaultBranch)) return send(ERR.notFound.status, ERR.notFound.body);
      if (!e || e.content_type !== ct) return send(ERR.notFound.status, ERR.notFound.body);
      const v = rec.query.version !== undefined ? toInt(rec.query.version, NaN) : e.version;
      if (!Number.isInteger(v) || v < 1 || v > e.version) return send(ERR.notFound.status, ERR.notFound.body);
      const entry = { uid: e.uid, title: e.title };
      const url = e.urlsByVersion?.[v] ?? e.url;
      if (url !== undefined) entry.url = url;
      entry.locale = rec.query.locale || e.locales[0] || 'en-us';
      entry._version = v;
      entry.created_at = '2024-01-01T00:00:00.000Z';
      entry.updated_at = '2024-07-01T05:22:32.000Z';
      return send(200, { entry });
    }
    if ((m = path.match(/^\/v3\/assets\/([^/]+)\/?$/))) {
      const a = stack.assets.get(decodeURIComponent(m[1]));
      if (!a || gotBranch !== (a.branch ?? defaultBranch)) return send(ERR.notFound.status, ERR.notFound.body);
      return send(200, { asset: { uid: a.uid, url: a.url, filename: a.filename, title: a.title, content_type: 'image/jpeg', _version: a.version } });
    }
    // Webhooks (stack-level, any branch the stack knows): the list, one webhook, and its executions.
    if (path === '/v3/webhooks' || path === '/v3/webhooks/') {
      const all = [...(stack.webhooks?.values() ?? [])];
      const skip = Math.max(0, toInt(rec.query.skip, 0));
      let lim = toInt(rec.query.limit, 100);
      if (lim <= 0 || lim > 100) lim = 100;
      const out = { webhooks: all.slice(skip, skip + lim).map((w) => webhookJson(stack, w)) };
      if (String(rec.query.include_count) === 'true') out.count = all.length;
      return send(200, out);
    }
    if ((m = path.match(/^\/v3\/webhooks\/([^/]+)(\/executions)?\/?$/))) {
      const w = stack.webhooks?.get(decodeURIComponent(m[1]));
      if (!w) return send(ERR.webhookNotFound.status, ERR.webhookNotFound.body);
      if (!m[2]) return send(200, { webhook: webhookJson(stack, w) });
      // Executions: newest first, created_at within [from, to] (inclusive), `query` on status,
      // then skip/limit (limit at most 100).
      const q = rec.query;
      const bound = (v) => (v === undefined || v === '' ? null : Date.parse(String(v)));
      const from = bound(q.from);
      const to = bound(q.to);
      if (Number.isNaN(from) || Number.isNaN(to)) return send(ERR.badDate.status, ERR.badDate.body);
      let query = {};
      if (q.query !== undefined) {
        try { query = JSON.parse(String(q.query)); } catch { return send(ERR.badQuery.status, ERR.badQuery.body); }
        if (!query || typeof query !== 'object' || Array.isArray(query)) return send(ERR.badQuery.status, ERR.badQuery.body);
      }
      const list = w.executions
        .map((e, i) => ({ e, i, t: Date.parse(e.created_at) }))
        .filter(({ e, t }) => (from === null || t >= from) && (to === null || t <= to) && (!('status' in query) || passes(e.status, query.status)))
        .sort((a, b) => b.t - a.t || b.i - a.i)
        .map(({ e }) => e);
      const skip = Math.max(0, toInt(q.skip, 0));
      let lim = toInt(q.limit, 100);
      if (lim <= 0 || lim > 100) lim = 100;
      return send(200, { webhooks: structuredClone(list.slice(skip, skip + lim)) });
    }
    return send(ERR.notFound.status, ERR.notFound.body);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const rec = {
      method: req.method,
      path: url.pathname,
      url: req.url,
      query: parseQuery(url.searchParams),
      headers: { ...req.headers },
      apiKey: req.headers.api_key ?? null,
      branch: req.headers.branch ?? null, // the branch header as sent (null when absent)
      at: Date.now(),
      status: undefined,
    };
    requests.push(rec);
    req.resume(); // bodies are ignored (all endpoints are GETs)
    handle(req, res, rec).catch((err) => {
      rec.status = 500;
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error_message: `fake crashed: ${err.message}`, error_code: 500 }));
      }
    });
  });
  const boundPort = await listen(server, port);

  return {
    url: `http://127.0.0.1:${boundPort}`,
    requests,
    publicKeyPem,
    publicKey,
    privateKey,
    stacks,
    get rateLimited() { return rateLimited; },
    /** Add a fault rule; returns the live rule ({remaining, hits}). First matching active rule wins. */
    fault(rule) { return faults.add(rule); },
    clearFaults() { faults.clear(); },
    /** Revoke a stack's management token: every call for that api_key then answers 401 (error_code 105). */
    revokeToken(apiKey) { revoked.add(apiKey); },
    /** Accept the stack's token again. */
    restoreToken(apiKey) { revoked.delete(apiKey); },
    /** Make calls whose url matches `path` hang for `ms` before answering normally (`times` calls, default 1). */
    hang(path, ms, times = 1) { return this.fault({ path, delayMs: ms, times }); },
    /** Recorded requests whose url matches a RegExp or includes a string. */
    requestsTo(pathRegex) { return requests.filter((r) => matches(pathRegex, r.url)); },
    setRateLimit(n) { limit = n; starts.clear(); },
    /** Number of recorded requests whose url (path + query) matches a RegExp or includes a string. */
    countsBy(pathRegex) { return requests.filter((r) => matches(pathRegex, r.url)).length; },
    /** {status: count} of recorded requests matching pathRegex (all when omitted). */
    statusCounts(pathRegex) {
      const out = {};
      for (const r of requests) if (matches(pathRegex, r.url)) out[r.status] = (out[r.status] ?? 0) + 1;
      return out;
    },
    /** Largest number of requests (per api_key, or all) that started within any 1000 ms window. */
    maxPerSecond(apiKey) {
      const ts = requests.filter((r) => apiKey === undefined || r.headers.api_key === apiKey).map((r) => r.at).sort((a, b) => a - b);
      let best = 0;
      for (let i = 0, j = 0; j < ts.length; j++) {
        while (ts[j] - ts[i] >= 1000) i++;
        best = Math.max(best, j - i + 1);
      }
      return best;
    },
    reset() { requests.length = 0; faults.clear(); starts.clear(); revoked.clear(); rateLimited = 0; },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
