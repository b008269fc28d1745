// Batched URL look-ups (docs/CONTRACT.md, "Rule format": `resolve_urls`): the uids of the whole
// job (a window of up to 1,000 items) are looked up with one query per content type and locale
// and 100 uids (at most 100 uids per query), assets together; an item whose
// job version is not the latest is fetched singly at its version, so the URL the job published
// is purged; when the query form is refused, items are looked up one by one.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { makeStack, addJob } from '../devkit/fakes/stack.mjs';

const ADMIN = 'lookups-admin-token';
const ZONE = 'zone0lookups00000000000000000000';
const BASE = 'https://www.example.com';

const RULES = {
  production: {
    zone_id: ZONE,
    resolve_urls: true,
    entry: { urls: ['{base_url}{url}'] },
    asset: { urls: ['{url}'] },
  },
};

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup() {
  const stack = makeStack({ contentTypes: ['blog', 'page'] });
  for (const e of stack.environments) e.urls = [{ locale: 'en-us', url: `${BASE}/` }];
  const sys = await startSystem({ rules: RULES, adminToken: ADMIN, stack, vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0 } });
  closers.push(() => sys.close());
  return sys;
}

const queries = (cs) => cs.requests.filter((r) => /\/entries\?|\/assets\?/.test(r.url) && r.url.includes('query='));
const singles = (cs) => cs.requests.filter((r) => /\/entries\/[^/?]+|\/assets\/[^/?]+/.test(r.path));
const purgedFiles = (cf) => cf.purges.filter((p) => p.status === 200 && p.mode === 'files').flatMap((p) => p.items).sort();

/** The URL each successful item of the job published, as the job's version had it. */
function expectedFiles(stack, job) {
  const out = new Set();
  for (const it of job.items) {
    if (it.publish_details.status !== 'success') continue;
    if (it.type === 'entry') {
      const e = stack.entries.get(it.uid);
      const url = e.urlsByVersion?.[it.version] ?? e.url;
      if (url) out.add(`${BASE}${url}`);
    } else out.add(stack.assets.get(it.uid).url);
  }
  return [...out].sort();
}

describe('batched URL look-ups', () => {
  test('one query per content type and locale and 100 uids of the whole job, no single look-ups', async () => {
    const sys = await setup();
    const job = addJob(sys.stack, { entries: 180, assets: 20, withUrl: 1 });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const q = queries(sys.cs);
    for (const r of q) {
      const uids = JSON.parse(new URL(r.url, 'http://x').searchParams.get('query')).uid.$in;
      assert.ok(uids.length >= 1 && uids.length <= 100, `${uids.length} uids in one query`);
    }
    // 200 items over 2 pages: 90 blog, 90 page, 20 assets → one query each, across the pages.
    assert.equal(q.length, 3, `${q.length} queries for 200 items`);
    assert.deepEqual(singles(sys.cs).map((r) => r.url), [], 'no single look-up');
    assert.deepEqual(purgedFiles(sys.cf), expectedFiles(sys.stack, job));
  });

  test('600 items in two locales cost the minimum: item pages + ⌈items per content type and locale / 100⌉', async () => {
    const sys = await setup();
    const job = addJob(sys.stack, { entries: 250, assets: 50, locales: ['en-us', 'fr-fr'], withUrl: 1 });
    assert.equal(job.items.length, 600);
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 180000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const groups = new Map();
    for (const it of job.items) {
      const k = it.type === 'asset' ? 'asset' : `${it.content_type.uid}/${it.locale}`;
      groups.set(k, new Set([...(groups.get(k) ?? []), it.uid]));
    }
    const minimum = [...groups.values()].reduce((n, uids) => n + Math.ceil(uids.size / 100), 0);
    const pages = sys.cs.requests.filter((r) => r.path.endsWith('/items')).length;
    assert.equal(pages, 7, 'six full pages and the empty one after them');
    assert.equal(queries(sys.cs).length, minimum, `${queries(sys.cs).length} queries, minimum ${minimum}`);
    assert.deepEqual(singles(sys.cs).map((r) => r.url), [], 'no single look-up');
    assert.deepEqual(purgedFiles(sys.cf), expectedFiles(sys.stack, job));
  });

  test('an item whose job version is not the latest is fetched at its version; its URL is purged', async () => {
    const sys = await setup();
    const job = addJob(sys.stack, { entries: 6, withUrl: 1 });
    // After the job, the first entry moved on: version +1 with another URL.
    const item = job.items.find((i) => i.type === 'entry');
    const e = sys.stack.entries.get(item.uid);
    e.urlsByVersion = { [item.version]: '/blog/as-published', [item.version + 1]: '/blog/moved-on' };
    e.version = item.version + 1;
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const single = singles(sys.cs);
    assert.equal(single.length, 1, 'one single look-up, for the moved-on entry');
    assert.ok(single[0].url.includes(`version=${item.version}`), single[0].url);
    const files = purgedFiles(sys.cf);
    assert.ok(files.includes(`${BASE}/blog/as-published`), 'the URL the job published');
    assert.ok(!files.includes(`${BASE}/blog/moved-on`), 'not the later version');
    assert.deepEqual(files, expectedFiles(sys.stack, job));
  });

  test('a refused query form falls back to one look-up per item, logged once per invocation', async () => {
    const sys = await setup();
    sys.stack.refuseQueries = true;
    const job = addJob(sys.stack, { entries: 30, assets: 5, withUrl: 1 });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.ok(queries(sys.cs).some((r) => r.status === 422), 'the query was refused');
    assert.equal(queries(sys.cs).length, 1, 'asked once, then one by one');
    assert.equal(singles(sys.cs).length, 35, 'every item looked up singly');
    assert.equal(sys.w.events('batched_lookups_refused').length, 1);
    assert.deepEqual(purgedFiles(sys.cf), expectedFiles(sys.stack, job));
  });
});
