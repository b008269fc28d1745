// Fake Cloudflare REST API (base "/client/v4"): zone cache purge and Workers KV bulk delete,
// on 127.0.0.1 with an ephemeral port. Only Node built-ins.

import http from 'node:http';
import crypto from 'node:crypto';

const MODES = ['files', 'tags', 'prefixes', 'hosts', 'purge_everything'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function envelope(success, { errors = [], result = null, messages = [] } = {}) {
  return { success, errors, messages, result };
}
const fail = (code, message) => envelope(false, { errors: [{ code, message }] });

function matches(rulePath, url) {
  if (rulePath === undefined || rulePath === null) return true;
  if (rulePath instanceof RegExp) { rulePath.lastIndex = 0; return rulePath.test(url); }
  return url.includes(String(rulePath));
}

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

/** Validate a purge body. Returns {mode, items} or {error: {status, code, message}}. */
export function validatePurge(body, maxItemsPerCall) {
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
 * Start the fake Cloudflare API.
 * @param {object} [o]
 * @param {string} [o.token='cf_test_token'] accepted Bearer token
 * @param {number} [o.maxItemsPerCall=100] max files/tags/prefixes/hosts per purge call
 * @param {number} [o.rateLimitPerSecond=0] purge calls per sliding 1000 ms window (0 = off)
 * @param {(accountId, namespaceId, keys) => Promise<void>} [o.onKvBulkDelete]
 */
export async function startCloudflare({
  token = 'cf_test_token',
  maxItemsPerCall = 100,
  rateLimitPerSecond = 0,
  onKvBulkDelete = async () => {},
  port = 0,
} = {}) {
  const requests = [];
  const purges = [];
  const kvBulkDeletes = [];
  const faults = [];
  const purgeStarts = [];
  let limit = rateLimitPerSecond;
  let rateLimited = 0;

  function takeFault(method, url) {
    for (const f of faults) {
      if (f.remaining <= 0) continue;
      if (f.method && f.method.toUpperCase() !== method) continue;
      if (!matches(f.path, url)) continue;
      f.remaining -= 1;
      f.hits += 1;
      return f;
    }
    return null;
  }

  function overLimit(now) {
    if (!limit || limit === Infinity) return false;
    while (purgeStarts.length && now - purgeStarts[0] >= 1000) purgeStarts.shift();
    purgeStarts.push(now);
    return purgeStarts.length > limit;
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

    const purgeM = path.match(/^\/client\/v4\/zones\/([^/]+)\/purge_cache\/?$/);
    const kvM = path.match(/^\/client\/v4\/accounts\/([^/]+)\/storage\/kv\/namespaces\/([^/]+)\/bulk(\/delete)?\/?$/);
    let parsed;
    try { parsed = raw ? JSON.parse(raw) : undefined; } catch { parsed = undefined; }

    let purgeRec;
    if (purgeM) {
      purgeRec = { zoneId: decodeURIComponent(purgeM[1]), body: parsed, mode: undefined, items: [], at: rec.at, status: undefined };
      purges.push(purgeRec);
    }
    let kvRec;
    if (kvM) {
      kvRec = { accountId: decodeURIComponent(kvM[1]), namespaceId: decodeURIComponent(kvM[2]), keys: Array.isArray(parsed) ? parsed : [], at: rec.at, status: undefined };
      kvBulkDeletes.push(kvRec);
    }
    const reply = (status, body, headers) => {
      if (purgeRec) purgeRec.status = status;
      if (kvRec) kvRec.status = status;
      send(status, body, headers);
    };

    if (purgeM && req.method === 'POST' && overLimit(rec.at)) {
      rateLimited += 1;
      return reply(429, fail(971, 'Please wait and consider throttling your request speed'), { 'retry-after': '1' });
    }

    const f = takeFault(req.method, req.url);
    if (f) {
      rec.fault = true;
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
      const v = validatePurge(parsed, maxItemsPerCall);
      if (v.error) return reply(v.error.status, fail(v.error.code, v.error.message));
      purgeRec.mode = v.mode;
      purgeRec.items = v.items;
      return reply(200, envelope(true, { result: { id: crypto.randomBytes(16).toString('hex') } }));
    }

    // KV bulk delete.
    if (!Array.isArray(parsed) || parsed.some((k) => typeof k !== 'string')) {
      return reply(400, fail(10026, 'Request body must be a JSON array of key names.'));
    }
    if (parsed.length > 10000) return reply(413, fail(10026, `Bulk delete accepts at most 10000 keys (got ${parsed.length}).`));
    const tooLong = parsed.find((k) => Buffer.byteLength(k) > 512 || k.length === 0);
    if (tooLong !== undefined) return reply(400, fail(10026, 'Key names must be 1-512 bytes.'));
    try {
      await onKvBulkDelete(kvRec.accountId, kvRec.namespaceId, parsed);
    } catch (err) {
      return reply(500, fail(10001, `KV bulk delete failed: ${err.message}`));
    }
    return reply(200, envelope(true, { result: { successful_key_count: parsed.length, unsuccessful_keys: [] } }));
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
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: boundPort } = server.address();

  return {
    url: `http://127.0.0.1:${boundPort}/client/v4`,
    origin: `http://127.0.0.1:${port}`,
    token,
    purges,
    kvBulkDeletes,
    requests,
    get rateLimited() { return rateLimited; },
    /** Successful purge items of one mode (all zones or one zone), flattened in call order. */
    purged(mode, zoneId) {
      return purges
        .filter((p) => p.status === 200 && p.mode === mode && (zoneId === undefined || p.zoneId === zoneId))
        .flatMap((p) => (mode === 'purge_everything' ? [true] : p.items));
    },
    /** Keys of successful KV bulk deletes (optionally for one namespace), flattened. */
    kvDeletedKeys(namespaceId) {
      return kvBulkDeletes.filter((d) => d.status === 200 && (namespaceId === undefined || d.namespaceId === namespaceId)).flatMap((d) => d.keys);
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
    fault(rule) {
      const r = { ...rule, remaining: rule.times ?? 1, hits: 0 };
      faults.push(r);
      return r;
    },
    clearFaults() { faults.length = 0; },
    setRateLimit(n) { limit = n; purgeStarts.length = 0; },
    reset() { requests.length = 0; purges.length = 0; kvBulkDeletes.length = 0; faults.length = 0; purgeStarts.length = 0; rateLimited = 0; },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
