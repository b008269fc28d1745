// Fake Cloudflare REST API (base "/client/v4"): zone cache purge (purge_cache and the soft purge
// invalidate_cache) and Workers KV bulk delete, on 127.0.0.1 with an ephemeral port. Only Node
// built-ins. As unkind as the real API when asked: a per-account purge token bucket answering
// 429 code 1134, per-request item limits, the account-wide API limit with a long retry-after,
// and KV bulk deletes that report some keys as unsuccessful. Successful purges can reach the
// cache of fake websites (site.mjs, option `site`), so probes see what a purge did.

import http from 'node:http';
import crypto from 'node:crypto';
import { faultRules, listen, sleep } from './common.mjs';

const MODES = ['files', 'tags', 'prefixes', 'hosts', 'purge_everything'];

function envelope(success, { errors = [], result = null, messages = [] } = {}) {
  return { success, errors, messages, result };
}
const fail = (code, message) => envelope(false, { errors: [{ code, message }] });

function readBody(req, max = 32 * 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > max) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Cloudflare's per-request cap on tags, hosts and prefixes, on every plan. */
export const MAX_NON_FILE_ITEMS = 100;

/**
 * Validate a purge body. `limits` is a number (one cap for every mode) or
 * {files, others}: the cap on URLs and the cap on tags/hosts/prefixes.
 * Returns {mode, items} or {error: {status, code, message}}.
 */
export function validatePurge(body, limits = { files: 100, others: MAX_NON_FILE_ITEMS }) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return { error: { status: 400, code: 1012, message: 'Request must be a JSON object.' } };
  }
  const present = MODES.filter((m) => body[m] !== undefined);
  if (present.length !== 1) {
    return { error: { status: 400, code: 1012, message: `Request must contain exactly one of ${MODES.join(', ')} (got ${present.length ? present.join(', ') : 'none'}).` } };
  }
  const mode = present[0];
  if (mode === 'purge_everything') {
    if (body.purge_everything !== true) return { error: { status: 400, code: 1012, message: 'purge_everything must be true.' } };
    return { mode, items: [] };
  }
  const list = body[mode];
  const maxItemsPerCall = typeof limits === 'number' ? limits : mode === 'files' ? limits.files : limits.others;
  if (!Array.isArray(list) || list.length === 0) {
    return { error: { status: 400, code: 1012, message: `${mode} must be a non-empty array.` } };
  }
  if (list.length > maxItemsPerCall) {
    return { error: { status: 400, code: 1018, message: `Exceeded the maximum of ${maxItemsPerCall} ${mode} per purge request (got ${list.length}).` } };
  }
  const items = [];
  for (const it of list) {
    if (mode === 'files') {
      const u = typeof it === 'string' ? it : it && typeof it === 'object' ? it.url : undefined;
      if (typeof u !== 'string' || !/^https?:\/\/[^/\s]+/i.test(u)) {
        return { error: { status: 400, code: 1012, message: `Invalid file URL: ${JSON.stringify(it)}.` } };
      }
      if (typeof it === 'object' && it.headers !== undefined && (typeof it.headers !== 'object' || Array.isArray(it.headers))) {
        return { error: { status: 400, code: 1012, message: 'files[].headers must be an object.' } };
      }
      items.push(u);
    } else {
      if (typeof it !== 'string' || it.length === 0) {
        return { error: { status: 400, code: 1012, message: `${mode} entries must be non-empty strings.` } };
      }
      if (mode === 'tags' && (it.length > 1024 || /[^\x21-\x7e]/.test(it))) {
        return { error: { status: 400, code: 1012, message: `Invalid tag: ${JSON.stringify(it)} (printable ASCII without spaces, <= 1024 chars).` } };
      }
      if ((mode === 'prefixes' || mode === 'hosts') && /^[a-z][a-z0-9+.-]*:\/\//i.test(it)) {
        return { error: { status: 400, code: 1012, message: `${mode} must not include a scheme: ${JSON.stringify(it)}.` } };
      }
      if (mode === 'hosts' && it.includes('/')) {
        return { error: { status: 400, code: 1012, message: `hosts must be bare host names: ${JSON.stringify(it)}.` } };
      }
      items.push(it);
    }
  }
  return { mode, items };
}

/**
 * A token bucket: `burst` tokens at start, refilled continuously at `rate` per second.
 * take() spends one token and answers true, or answers false when less than one is left.
 */
function tokenBucket({ rate, burst }) {
  let tokens = burst;
  let last = Date.now();
  return {
    take(now = Date.now()) {
      tokens = Math.min(burst, tokens + (Math.max(0, now - last) / 1000) * rate);
      last = Math.max(last, now);
      if (tokens >= 1) { tokens -= 1; return true; }
      return false;
    },
    get tokens() { return tokens; },
  };
}

/**
 * Start the fake Cloudflare API.
 * @param {object} [o]
 * @param {string} [o.token='cf_test_token'] accepted Bearer token
 * @param {number} [o.maxItemsPerCall=100] max tags/prefixes/hosts per purge call (never above 100, as on
 *   every Cloudflare plan), and the default for files
 * @param {number} [o.maxFilesPerCall] max files (URLs) per purge call (default maxItemsPerCall; 500 models Enterprise)
 * @param {number} [o.rateLimitPerSecond=0] purge calls per sliding 1000 ms window (0 = off); 429 code 971, retry-after 1
 * @param {{rate: number, burst: number}} [o.bucket] the per-account purge token bucket (off by default):
 *   `rate` calls refilled per second, `burst` calls at most. An empty bucket answers 429
 *   {"success":false,"errors":[{"code":1134,…}]} with no Retry-After (counted in `bucketRefusals`).
 *   purge_cache and invalidate_cache draw from the same bucket.
 * @param {{max: number, windowMs: number}} [o.apiLimit] the account-wide API limit (off by default): more than
 *   `max` requests (any endpoint) within `windowMs` blocks every call for `windowMs`; blocked calls get 429
 *   with `retry-after` = the seconds left (counted in `apiLimitRefusals`).
 * @param {number} [o.unsuccessfulOnce=0] the first KV bulk delete (POST …/bulk/delete or the older DELETE …/bulk) reports its last n keys in
 *   `result.unsuccessful_keys` and does not delete them (nor pass them to onKvBulkDelete)
 * @param {(accountId, namespaceId, keys) => Promise<void>} [o.onKvBulkDelete] called with the keys a bulk delete removes
 * @param {(purge) => Promise<void>} [o.onPurge] awaited after a purge request passed validation and before it
 *   is answered 200 (purge = the record pushed to `purges`); if it throws, the call answers 500 and the
 *   error is kept in `hookErrors`
 * @param {object|object[]} [o.site] fake site(s) from site.mjs whose cache a successful purge reaches (any
 *   zone): files → site.purge (purge_cache) or site.invalidate (invalidate_cache); hosts and prefixes →
 *   the site's paths under them; purge_everything → every path; tags reach nothing. Applied after onPurge
 *   and before the 200 answer, unless `sitePurgeDelayMs` defers it.
 * @param {number} [o.sitePurgeDelayMs=0] apply the purge to the site(s) this long after answering 200 (slow
 *   propagation: a probe right after the answer still sees the old copy)
 * @param {Record<string, string[]>} [o.zoneHosts] the hosts each zone serves ("host" or "*.host"), the
 *   unkind choice: a purge naming a URL, prefix or host its zone does not serve answers 400 (code 1004,
 *   counted in `misrouted`); zones not listed accept any host
 */
export async function startCloudflare({
  token = 'cf_test_token',
  maxItemsPerCall = 100,
  maxFilesPerCall,
  rateLimitPerSecond = 0,
  bucket,
  apiLimit,
  unsuccessfulOnce = 0,
  onKvBulkDelete = async () => {},
  onPurge,
  site,
  sitePurgeDelayMs: siteDelay = 0,
  zoneHosts = {},
  port = 0,
} = {}) {
  let misrouted = 0;
  const serves = (zoneId, host) => {
    const patterns = zoneHosts[zoneId];
    if (!patterns) return true;
    const h = String(host).toLowerCase().replace(/\.$/, '');
    return patterns.some((p) => (p.startsWith('*.') ? h.endsWith(p.slice(1).toLowerCase()) && h.length > p.length - 1 : h === p.toLowerCase()));
  };
  const hostOf = (mode, item) => {
    if (mode === 'files') {
      try { return new URL(typeof item === 'string' ? item : item.url).hostname; } catch { return ''; }
    }
    return String(item).split('/')[0].split(':')[0];
  };
  const sites = site ? [].concat(site) : [];
  let sitePurgeDelayMs = siteDelay;
  const requests = [];
  const purges = [];
  const kvBulkDeletes = [];
  const faults = faultRules();
  const purgeStarts = [];
  const hookErrors = [];
  const limits = { files: maxFilesPerCall ?? maxItemsPerCall, others: Math.min(maxItemsPerCall, MAX_NON_FILE_ITEMS) };
  let limit = rateLimitPerSecond;
  let rateLimited = 0;
  let purgeBucket = bucket ? tokenBucket(bucket) : null;
  let bucketRefusals = 0;
  const apiStarts = [];
  let blockedUntil = 0;
  let apiLimitRefusals = 0;
  let unsuccessfulLeft = unsuccessfulOnce;

  function overLimit(now) {
    if (!limit || limit === Infinity) return false;
    while (purgeStarts.length && now - purgeStarts[0] >= 1000) purgeStarts.shift();
    purgeStarts.push(now);
    return purgeStarts.length > limit;
  }

  /** Seconds the account-wide limit still blocks calls (0 = not blocked); counts this call. */
  function apiBlocked(now) {
    if (!apiLimit) return 0;
    if (now < blockedUntil) return Math.max(1, Math.ceil((blockedUntil - now) / 1000));
    while (apiStarts.length && now - apiStarts[0] >= apiLimit.windowMs) apiStarts.shift();
    apiStarts.push(now);
    if (apiStarts.length <= apiLimit.max) return 0;
    blockedUntil = now + apiLimit.windowMs;
    apiStarts.length = 0;
    return Math.max(1, Math.ceil(apiLimit.windowMs / 1000));
  }

  /** What a successful purge does to the attached sites' caches (soft for invalidate_cache). */
  function purgeSites(p) {
    const soft = p.endpoint === 'invalidate_cache';
    for (const st of sites) {
      if (p.mode === 'files') { if (soft) st.invalidate(p.items); else st.purge(p.items); }
      else if (p.mode === 'purge_everything') st.purgeEverything({ soft });
      else if (p.mode === 'hosts') st.purgeHosts(p.items, { soft });
      else if (p.mode === 'prefixes') st.purgePrefixes(p.items, { soft });
    }
  }

  function authorized(req) {
    const m = /^bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return !!m && m[1].trim() === token;
  }

  async function handle(req, res, rec) {
    const send = (status, body, headers = {}) => {
      rec.status = status;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cf-ray': crypto.randomBytes(8).toString('hex') + '-FAKE', ...headers });
      res.end(text);
    };
    const url = new URL(req.url, 'http://127.0.0.1');
    const path = url.pathname;
    let raw = '';
    try { raw = await readBody(req); } catch { return send(413, fail(1012, 'Request body too large.')); }
    rec.body = raw;

    const purgeM = path.match(/^\/client\/v4\/zones\/([^/]+)\/(purge_cache|invalidate_cache)\/?$/);
    const kvM = path.match(/^\/client\/v4\/accounts\/([^/]+)\/storage\/kv\/namespaces\/([^/]+)\/bulk(\/delete)?\/?$/);
    let parsed;
    try { parsed = raw ? JSON.parse(raw) : undefined; } catch { parsed = undefined; }

    let purgeRec;
    if (purgeM) {
      purgeRec = { zoneId: decodeURIComponent(purgeM[1]), endpoint: purgeM[2], body: parsed, mode: undefined, items: [], at: rec.at, status: undefined, answeredAt: undefined };
      purges.push(purgeRec);
    }
    let kvRec;
    if (kvM) {
      kvRec = { accountId: decodeURIComponent(kvM[1]), namespaceId: decodeURIComponent(kvM[2]), keys: Array.isArray(parsed) ? parsed : [], unsuccessful: [], at: rec.at, status: undefined };
      kvBulkDeletes.push(kvRec);
    }
    const reply = (status, body, headers) => {
      if (purgeRec) { purgeRec.status = status; purgeRec.answeredAt = Date.now(); }
      if (kvRec) kvRec.status = status;
      send(status, body, headers);
    };

    const blocked = apiBlocked(rec.at);
    if (blocked) {
      apiLimitRefusals += 1;
      rec.refusedBy = 'api_limit';
      return reply(429, fail(10000, 'Rate limited. Please wait and consider throttling your request speed'), { 'retry-after': String(blocked) });
    }
    if (purgeM && req.method === 'POST' && overLimit(rec.at)) {
      rateLimited += 1;
      rec.refusedBy = 'rate_limit';
      return reply(429, fail(971, 'Please wait and consider throttling your request speed'), { 'retry-after': '1' });
    }
    if (purgeM && req.method === 'POST' && purgeBucket && !purgeBucket.take(rec.at)) {
      bucketRefusals += 1;
      rec.refusedBy = 'bucket';
      if (purgeRec) purgeRec.refusedBy = 'bucket';
      return reply(429, fail(1134, 'Unable to purge, rate limit reached'));
    }

    const f = faults.take(req.method, req.url);
    if (f) {
      rec.fault = true;
      if (purgeRec) purgeRec.fault = true;
      if (f.delayMs) await sleep(f.delayMs);
      if (f.status) {
        const headers = f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {};
        const body = f.body !== undefined ? f.body
          : f.status === 429 ? fail(971, 'Please wait and consider throttling your request speed')
          : fail(10000 + f.status, `Fault injected: HTTP ${f.status}.`);
        return reply(f.status, body, headers);
      }
      if (f.successFalse) return reply(200, fail(1100, 'Fault injected: operation failed.'));
      if (f.body !== undefined) return reply(200, f.body);
    }

    if (!purgeM && !kvM) {
      return send(404, fail(7003, `Could not route to ${path}, perhaps your object identifier is invalid?`));
    }
    if (purgeM && req.method !== 'POST') return reply(405, fail(10405, `Method ${req.method} not allowed`), { allow: 'POST' });
    if (kvM && !((req.method === 'DELETE' && !kvM[3]) || (req.method === 'POST' && kvM[3]))) {
      return reply(405, fail(10405, `Method ${req.method} not allowed`));
    }
    if (!authorized(req)) return reply(403, fail(10000, 'Authentication error'));
    if (parsed === undefined) return reply(400, fail(6007, 'Malformed JSON in request body'));

    if (purgeM) {
      const v = validatePurge(parsed, limits);
      if (v.error) return reply(v.error.status, fail(v.error.code, v.error.message));
      purgeRec.mode = v.mode;
      purgeRec.items = v.items;
      if (['files', 'hosts', 'prefixes'].includes(v.mode)) {
        const foreign = v.items.find((it) => !serves(purgeRec.zoneId, hostOf(v.mode, it)));
        if (foreign !== undefined) {
          misrouted += 1;
          return reply(400, fail(1004, `${JSON.stringify(foreign)} is not served by zone ${purgeRec.zoneId}`));
        }
      }
      if (onPurge) {
        try {
          await onPurge(purgeRec);
        } catch (err) {
          hookErrors.push(err);
          return reply(500, fail(10001, `onPurge hook failed: ${err.message}`));
        }
      }
      if (sites.length) {
        if (sitePurgeDelayMs > 0) setTimeout(() => purgeSites(purgeRec), sitePurgeDelayMs).unref?.();
        else purgeSites(purgeRec);
      }
      return reply(200, envelope(true, { result: { id: crypto.randomBytes(16).toString('hex') } }));
    }

    // KV bulk delete.
    if (!Array.isArray(parsed) || parsed.some((k) => typeof k !== 'string')) {
      return reply(400, fail(10026, 'Request body must be a JSON array of key names.'));
    }
    if (parsed.length > 10000) return reply(413, fail(10026, `Bulk delete accepts at most 10000 keys (got ${parsed.length}).`));
    const tooLong = parsed.find((k) => Buffer.byteLength(k) > 512 || k.length === 0);
    if (tooLong !== undefined) return reply(400, fail(10026, 'Key names must be 1-512 bytes.'));
    let unsuccessful = [];
    if (unsuccessfulLeft > 0) {
      unsuccessful = parsed.slice(Math.max(0, parsed.length - unsuccessfulLeft));
      unsuccessfulLeft = 0;
    }
    const deleted = parsed.slice(0, parsed.length - unsuccessful.length);
    kvRec.unsuccessful = unsuccessful;
    kvRec.deleted = deleted;
    try {
      await onKvBulkDelete(kvRec.accountId, kvRec.namespaceId, deleted);
    } catch (err) {
      return reply(500, fail(10001, `KV bulk delete failed: ${err.message}`));
    }
    return reply(200, envelope(true, { result: { successful_key_count: deleted.length, unsuccessful_keys: unsuccessful } }));
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const rec = { method: req.method, path: url.pathname, url: req.url, headers: { ...req.headers }, at: Date.now(), status: undefined };
    requests.push(rec);
    handle(req, res, rec).catch((err) => {
      rec.status = 500;
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(fail(10001, `fake crashed: ${err.message}`)));
      }
    });
  });
  const boundPort = await listen(server, port);

  return {
    url: `http://127.0.0.1:${boundPort}/client/v4`,
    origin: `http://127.0.0.1:${boundPort}`,
    token,
    purges,
    kvBulkDeletes,
    requests,
    hookErrors,
    get rateLimited() { return rateLimited; },
    /** Purge calls refused because they named a URL, prefix or host their zone does not serve. */
    get misrouted() { return misrouted; },
    /** Purge calls refused by the token bucket (429, code 1134). */
    get bucketRefusals() { return bucketRefusals; },
    /** Calls refused by the account-wide API limit (429 with retry-after). */
    get apiLimitRefusals() { return apiLimitRefusals; },
    /** Successful purge items of one mode (all zones or one zone; both endpoints unless one is named), flattened in call order. */
    purged(mode, zoneId, endpoint) {
      return purges
        .filter((p) => p.status === 200 && p.mode === mode && (zoneId === undefined || p.zoneId === zoneId) && (endpoint === undefined || p.endpoint === endpoint))
        .flatMap((p) => (mode === 'purge_everything' ? [true] : p.items));
    },
    /** Keys of successful KV bulk deletes (optionally for one namespace), flattened; unsuccessful keys excluded. */
    kvDeletedKeys(namespaceId) {
      return kvBulkDeletes.filter((d) => d.status === 200 && (namespaceId === undefined || d.namespaceId === namespaceId)).flatMap((d) => d.deleted ?? d.keys);
    },
    /** Largest number of purge calls that started within any 1000 ms window. */
    maxPurgesPerSecond() {
      const ts = purges.map((p) => p.at).sort((a, b) => a - b);
      let best = 0;
      for (let i = 0, j = 0; j < ts.length; j++) {
        while (ts[j] - ts[i] >= 1000) i++;
        best = Math.max(best, j - i + 1);
      }
      return best;
    },
    /** Add a fault rule ({path, method?, status?, retryAfter?, times=1, delayMs?, successFalse?, body?}); returns the live rule. */
    fault(rule) { return faults.add(rule); },
    clearFaults() { faults.clear(); },
    setRateLimit(n) { limit = n; purgeStarts.length = 0; },
    /** The fake sites successful purges reach (see option `site`). */
    sites,
    /** Let successful purges reach one more fake site. */
    addSite(st) { sites.push(st); },
    /** Apply later purges to the sites `ms` after answering (0: before answering). */
    setSitePurgeDelay(ms) { sitePurgeDelayMs = ms; },
    /** Replace the token bucket ({rate, burst}, full) or turn it off (null). */
    setBucket(b) { purgeBucket = b ? tokenBucket(b) : null; },
    reset() {
      requests.length = 0; purges.length = 0; kvBulkDeletes.length = 0; faults.clear(); purgeStarts.length = 0;
      hookErrors.length = 0; rateLimited = 0; bucketRefusals = 0; apiLimitRefusals = 0; apiStarts.length = 0; blockedUntil = 0;
      if (bucket) purgeBucket = tokenBucket(bucket);
      unsuccessfulLeft = unsuccessfulOnce;
      sitePurgeDelayMs = siteDelay;
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
