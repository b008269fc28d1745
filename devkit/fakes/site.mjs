// Fake website behind Cloudflare's cache, on 127.0.0.1 with an ephemeral port: what a probe of a
// purged URL sees. Only Node built-ins. One cache entry per path + search, exactly as requested
// ("//blog/x" and "/blog/x" are two entries, and a query string is part of the key):
//   - not cached: answers CF-Cache-Status MISS (no Age) and is cached from now on (a cache fill);
//   - cached: answers HIT with Age = whole seconds since it was cached;
//   - purged (purge_cache): gone, so the next request is a MISS;
//   - invalidated (invalidate_cache, a soft purge): the next request answers EXPIRED (or
//     REVALIDATED with `revalidated: true`) with Age 0, and is cached again from then;
//   - pinned: stays a HIT with its old, growing Age whatever purges say (the "purge answered 200
//     but the edge still serves the old copy" case).
// The fake Cloudflare API (cloudflare.mjs, option `site`) calls purge/invalidate/… after a
// successful purge. Helpers take paths ("/a?b=1") or full URLs; full URLs of another host
// (not 127.0.0.1/localhost on this port) are ignored. Only GET and HEAD are served (405 otherwise).

import http from 'node:http';
import crypto from 'node:crypto';
import { faultRules, listen, sleep } from './common.mjs';

/**
 * Start the fake site.
 * @param {object} [o]
 * @param {number} [o.port=0]
 * @param {boolean} [o.revalidated=false] answer REVALIDATED instead of EXPIRED after a soft purge
 * @returns {Promise<object>} { url, origin, host, port, requests, cache, pin, unpin, purge, invalidate,
 *   purgeEverything, purgeHosts, purgePrefixes, state, fault, clearFaults, reset, close }
 */
export async function startSite({ port = 0, revalidated = false } = {}) {
  /** path+search -> { cachedAt, invalidated, pinned } */
  const entries = new Map();
  const requests = [];
  const faults = faultRules();
  let origin = '';
  let boundPort = 0;

  /** The cache key (path + search) of a path or one of this site's URLs; null for another host's URL. */
  function keyOf(pathOrUrl) {
    const s = String(pathOrUrl);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
      let u;
      try { u = new URL(s); } catch { return null; }
      const hostname = u.hostname.toLowerCase();
      if (!['127.0.0.1', 'localhost'].includes(hostname) || Number(u.port) !== boundPort) return null;
      return u.pathname + u.search;
    }
    // A path: parsed against this origin by concatenation, so "//x" stays a path (not a host).
    const u = new URL(origin + (s.startsWith('/') ? s : `/${s}`));
    return u.pathname + u.search;
  }
  const ageOf = (e, now = Date.now()) => Math.max(0, Math.floor((now - e.cachedAt) / 1000));
  const keysOf = (urls) => [].concat(urls ?? []).map((u) => keyOf(typeof u === 'string' ? u : u?.url)).filter((k) => k !== null);

  /** Drops (hard) or marks stale (soft) the unpinned cached entries whose key passes `pick`; returns how many. */
  function drop(pick, soft) {
    let n = 0;
    for (const [k, e] of entries) {
      if (e.pinned || !pick(k)) continue;
      if (soft) e.invalidated = true;
      else entries.delete(k);
      n += 1;
    }
    return n;
  }
  const pathOf = (k) => k.replace(/\?.*$/, '');

  function page(key) {
    const title = key.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    return `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>\n`;
  }

  async function handle(req, res, rec) {
    const f = faults.take(req.method, rec.path);
    if (f) {
      rec.fault = true;
      if (f.delayMs) await sleep(f.delayMs);
      if (f.destroy) { rec.status = 0; res.destroy(); return; }
      if (f.status) {
        rec.status = f.status;
        const text = f.body ?? `<!doctype html><h1>${f.status}</h1>\n`;
        res.writeHead(f.status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cf-cache-status': 'DYNAMIC' });
        res.end(req.method === 'HEAD' ? undefined : text);
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      rec.status = 405;
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
      res.end();
      return;
    }
    const now = Date.now();
    const key = rec.path;
    let e = entries.get(key);
    let cacheStatus;
    let age;
    if (!e) {
      cacheStatus = 'MISS';
      entries.set(key, (e = { cachedAt: now, invalidated: false, pinned: false }));
    } else if (e.invalidated && !e.pinned) {
      cacheStatus = revalidated ? 'REVALIDATED' : 'EXPIRED';
      e.invalidated = false;
      e.cachedAt = now;
      age = 0;
    } else {
      cacheStatus = 'HIT';
      age = ageOf(e, now);
    }
    rec.status = 200;
    rec.cacheStatus = cacheStatus;
    rec.age = age;
    const text = page(key);
    const headers = {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'public, max-age=14400',
      'cf-cache-status': cacheStatus,
      'cf-ray': `${crypto.randomBytes(8).toString('hex')}-FAKE`,
      server: 'cloudflare',
    };
    if (age !== undefined) headers.age = String(age);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  const server = http.createServer((req, res) => {
    // req.url is the raw request target: concatenated, never resolved, so "//x" stays a path.
    const u = new URL(origin + (req.url.startsWith('/') ? req.url : `/${req.url}`));
    const rec = { path: u.pathname + u.search, method: req.method, at: Date.now(), status: undefined, cacheStatus: undefined, age: undefined, headers: { ...req.headers } };
    requests.push(rec);
    req.resume();
    handle(req, res, rec).catch(() => {
      rec.status = 500;
      if (!res.headersSent && !res.destroyed) { res.writeHead(500); res.end(); }
    });
  });
  boundPort = await listen(server, port);
  origin = `http://127.0.0.1:${boundPort}`;

  return {
    /** The origin, http://127.0.0.1:PORT (no trailing slash). */
    url: origin,
    origin,
    /** "127.0.0.1:PORT", as a purge by host or prefix names it. */
    host: `127.0.0.1:${boundPort}`,
    port: boundPort,
    /** One record per request served: {path, method, at, status (HTTP), cacheStatus, age, headers, fault?}. */
    requests,
    /** Requests for one path or URL (all when omitted). */
    requestsTo(pathOrUrl) {
      if (pathOrUrl === undefined) return requests.slice();
      const k = keyOf(pathOrUrl);
      return requests.filter((r) => r.path === k);
    },
    /** Marks a path cached `ageSeconds` ago (an unpinned copy; a pinned one keeps its pin). Returns the key. */
    cache(pathOrUrl, { ageSeconds = 0 } = {}) {
      const k = keyOf(pathOrUrl);
      if (k === null) return null;
      const old = entries.get(k);
      entries.set(k, { cachedAt: Date.now() - ageSeconds * 1000, invalidated: false, pinned: old?.pinned ?? false });
      return k;
    },
    /** Pins a path: cached (since `ageSeconds` ago when not cached yet, default 3600) and a HIT whatever purges say. */
    pin(pathOrUrl, { ageSeconds = 3600 } = {}) {
      const k = keyOf(pathOrUrl);
      if (k === null) return null;
      const e = entries.get(k);
      if (e) { e.pinned = true; e.invalidated = false; } else entries.set(k, { cachedAt: Date.now() - ageSeconds * 1000, invalidated: false, pinned: true });
      return k;
    },
    /** Lets purges reach a pinned path again (it stays cached until purged). */
    unpin(pathOrUrl) {
      const e = entries.get(keyOf(pathOrUrl));
      if (e) e.pinned = false;
    },
    /** Purge by URL (strings or {url}): those paths are gone (next request MISS). Returns how many were cached. */
    purge(urls) {
      const keys = new Set(keysOf(urls));
      return drop((k) => keys.has(k), false);
    },
    /** Soft purge by URL: the next request of those cached paths answers EXPIRED/REVALIDATED. Returns how many. */
    invalidate(urls) {
      const keys = new Set(keysOf(urls));
      return drop((k) => keys.has(k), true);
    },
    /** Purge (or with {soft: true} invalidate) every unpinned cached path. */
    purgeEverything({ soft = false } = {}) { return drop(() => true, soft); },
    /**
     * Purge by host: everything when a host names this site ("127.0.0.1:PORT", or "127.0.0.1" /
     * "localhost" without a port, which Cloudflare's cache key does not separate here).
     */
    purgeHosts(hosts, { soft = false } = {}) {
      const mine = [].concat(hosts ?? []).some((h) => {
        const [name, p] = String(h).toLowerCase().split(':');
        return ['127.0.0.1', 'localhost'].includes(name) && (p === undefined || Number(p) === boundPort);
      });
      return mine ? drop(() => true, soft) : 0;
    },
    /**
     * Purge by prefix ("127.0.0.1:PORT/blog", no scheme): paths equal to the prefix path or under it
     * at a "/" boundary ("/blog", "/blog/x", not "/blogs"), whatever their query string.
     */
    purgePrefixes(prefixes, { soft = false } = {}) {
      const paths = [];
      for (const p of [].concat(prefixes ?? [])) {
        const s = String(p);
        const slash = s.indexOf('/');
        const hostPart = slash < 0 ? s : s.slice(0, slash);
        const [name, hp] = hostPart.toLowerCase().split(':');
        if (!['127.0.0.1', 'localhost'].includes(name) || (hp !== undefined && Number(hp) !== boundPort)) continue;
        paths.push(slash < 0 ? '/' : s.slice(slash).replace(/\?.*$/, ''));
      }
      if (paths.length === 0) return 0;
      return drop((k) => paths.some((p) => {
        const path = pathOf(k);
        return p.endsWith('/') ? path.startsWith(p) : path === p || path.startsWith(`${p}/`);
      }), soft);
    },
    /** {cached, cachedAt, age (whole seconds), invalidated, pinned} of a path (cached false when unknown); null for another host. */
    state(pathOrUrl) {
      const k = keyOf(pathOrUrl);
      if (k === null) return null;
      const e = entries.get(k);
      if (!e) return { key: k, cached: false, cachedAt: null, age: null, invalidated: false, pinned: false };
      return { key: k, cached: true, cachedAt: e.cachedAt, age: ageOf(e), invalidated: e.invalidated, pinned: e.pinned };
    },
    /**
     * Add a fault rule ({path, method?, times=1, status?, body?, delayMs?, destroy?}): `status` answers
     * that status (CF-Cache-Status DYNAMIC) without touching the cache, `destroy` drops the connection.
     */
    fault(rule) { return faults.add(rule); },
    clearFaults() { faults.clear(); },
    /** Forgets every cache entry, pin, fault and recorded request. */
    reset() { entries.clear(); requests.length = 0; faults.clear(); },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
