// Pipeline (docs/ARCHITECTURE.md; docs/CONTRACT.md "Rule format", "Processing", "Job record"): a signed job webhook → exactly the right KV keys, prefix
// keys, Cache API entries and Cloudflare purge calls, with faults, dead-lettering and a
// 10,000-item job. Expectations are computed here from the fake job's items, independently of
// the Worker's planner.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { Response } from 'miniflare';

import { waitForFinal, listJobs } from '../devkit/harness/worker.mjs';
import { startSystem, CF_TOKEN, assertBudgets } from '../devkit/harness/system.mjs';
import { KV_ONLY_RULES, kvKeyOf, listPrefixOf, listAllKeys, seedKeys } from '../devkit/harness/kv.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';
import { DEMO_RULES } from '../tools/demo-config.mjs';

/** The demo's production rule with one zone of this test's and no warming (its zones serve the demo's hosts). */
const oneZone = ({ zones, warm, warm_rate, ...rule }) => rule;

const ADMIN = 'pipeline-admin-token';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';

// The demo's rules (tools/demo-config.mjs) with this test's zone: what `npm start` runs is what
// this suite verifies. Without the demo's `verify_sample`: its probes would request this stack's
// www.example.com and images.contentstack.io URLs over the internet (tests/verification.test.mjs
// covers verification against a fake site).
const RULES = { ...DEMO_RULES, production: { ...oneZone(DEMO_RULES.production), zone_id: ZONE, verify_sample: 0 } };

// Every value from the item's own uid (no look-ups, so the Free plan's budgets allow it).
const UID_RULES = {
  production: {
    zone_id: ZONE,
    kv_binding: 'CONTENT_KV',
    entry: {
      kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
      tags: ['uid-{uid}'],
      urls: ['https://www.example.com/{locale}/{content_type}/{uid}'],
    },
    asset: { kv_keys: ['{environment}:asset:{uid}'], tags: ['uid-{uid}'] },
  },
};

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup({ rules = RULES, vars = {} } = {}) {
  const sys = await startSystem({ rules, adminToken: ADMIN, vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, ...vars } });
  closers.push(() => sys.close());
  return sys;
}

const envName = (stack, uid) => stack.environments.find((e) => e.uid === uid).name;
const baseUrl = (stack, env, locale) => stack.environments.find((e) => e.name === env).urls.find((u) => u.locale === locale)?.url;
const joinBase = (base, path) => (base.endsWith('/') && path.startsWith('/') ? base + path.slice(1) : base + path);

/** What the rules above must do for a job, computed from its items. */
function expectations(stack, job) {
  const kvKeys = new Set();
  const prefixes = new Set();
  const tags = new Set();
  const files = new Set();
  const skippedUrl = new Set();
  for (const it of job.items) {
    if (it.publish_details.status !== 'success') continue;
    const env = envName(stack, it.environment);
    const locale = it.publish_locale;
    kvKeys.add(kvKeyOf(env, it));
    if (it.type === 'entry') {
      const ct = it.content_type.uid;
      if (env === 'production') {
        prefixes.add(listPrefixOf(env, it));
        tags.add(`cs-${env}-${it.uid}`);
        tags.add(`cs-${env}-ct-${ct}`);
        const url = stack.entries.get(it.uid).url;
        if (url) files.add(joinBase(baseUrl(stack, env, locale), url));
        else skippedUrl.add(it.uid);
      }
    } else if (env === 'production') {
      tags.add(`cs-${env}-${it.uid}`);
      files.add(stack.assets.get(it.uid).url);
    }
  }
  return { kvKeys, prefixes, tags, files, skippedUrl };
}

/** Seeds KV with the job's keys (success and failed items), list pages and unrelated keys. */
async function seed(kv, stack, job) {
  const keys = new Set();
  for (const it of job.items) {
    const env = envName(stack, it.environment);
    keys.add(kvKeyOf(env, it));
    if (it.type === 'entry') for (let p = 1; p <= 3; p++) keys.add(`${listPrefixOf(env, it)}page${p}`);
  }
  const unrelated = [
    'production:en-us:entry:blog:blt_not_in_job',
    'production:en-us:list:unrelated_type:page1',
    'production:de-de:list:blog:page1',
    'staging:en-us:list:blog:page1',
    'dev:en-us:entry:blog:x',
    'config:site',
  ];
  for (const k of unrelated) keys.add(k);
  const all = await seedKeys(kv, keys, { batch: 50 });
  return { all, unrelated };
}

/** Every KV key, as a set. */
const listAll = async (kv) => new Set(await listAllKeys(kv));

function purgedBy(cf, mode) {
  const out = [];
  for (const p of cf.purges) if (p.status === 200 && p.mode === mode) out.push(...p.items);
  return out;
}

describe('a 250-item job across two environments and two locales', () => {
  test('exactly the right KV keys, prefix keys and purge calls; the record is right', async () => {
    const ctx = await setup();
    const { stack, cf, w } = ctx;
    const job = addJob(stack, { environments: ['production', 'staging'], locales: ['en-us', 'fr-fr'], entries: 50, assets: 13, failedEvery: 9, withUrl: 0.8 });
    assert.ok(job.items.length >= 250, `${job.items.length} items`);
    const kv = await w.kv();
    const { all, unrelated } = await seed(kv, stack, job);
    const exp = expectations(stack, job);

    // Cache API entries for two of the job's URLs and one unrelated URL.
    const cache = (await w.mf.getCaches()).default;
    const cachedUrls = [...exp.files].slice(0, 2);
    const keepUrl = 'https://www.example.com/not-in-this-job';
    for (const u of [...cachedUrls, keepUrl]) {
      await cache.put(u, new Response('cached page', { headers: { 'cache-control': 'public, max-age=3600' } }));
      assert.ok(await cache.match(u), `seeded ${u}`);
    }

    await ctx.deliver(job, undefined); // the generic channel: the job status API names both environments
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN });
    for (const u of cachedUrls) assert.equal(await cache.match(u), undefined, `${u} still in the Cache API`);
    assert.ok(await cache.match(keepUrl), 'an unrelated cached URL was deleted');
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));

    // KV: the job's keys and the swept list pages are gone; everything else stays.
    const remaining = await listAll(kv);
    const sweptGone = all.filter((k) => [...exp.prefixes].some((p) => k.startsWith(p)));
    for (const k of exp.kvKeys) assert.ok(!remaining.has(k), `${k} should be gone`);
    for (const k of sweptGone) assert.ok(!remaining.has(k), `${k} should be swept`);
    const shouldStay = all.filter((k) => !exp.kvKeys.has(k) && !sweptGone.includes(k));
    assert.ok(shouldStay.length > unrelated.length, 'failed items keep their keys');
    for (const k of shouldStay) assert.ok(remaining.has(k), `${k} should remain`);
    for (const k of unrelated) assert.ok(remaining.has(k), `unrelated ${k} should remain`);

    // Cloudflare: exactly the expected tags and URLs, in batches of at most 30, one mode per call.
    const tags = purgedBy(cf, 'tags');
    const files = purgedBy(cf, 'files');
    assert.deepEqual(new Set(tags), exp.tags);
    assert.equal(tags.length, exp.tags.size, 'no tag purged twice');
    assert.deepEqual(new Set(files), exp.files);
    assert.equal(files.length, exp.files.size, 'no URL purged twice');
    for (const p of cf.purges) {
      assert.equal(p.zoneId, ZONE);
      assert.ok(p.items.length <= 100, `a call with ${p.items.length} items`);
    }
    const calls = cf.purges.filter((p) => p.status === 200);
    assert.equal(calls.length, Math.ceil(exp.tags.size / 100) + Math.ceil(exp.files.size / 100));

    // The record mirrors what was sent.
    assert.deepEqual(rec.environments.sort(), ['production', 'staging']);
    assert.deepEqual(rec.items, { total: job.summary.total_processed, success: job.summary.success, failed: job.summary.unsuccess, skipped: job.summary.skip });
    assert.equal(rec.purged.kv_keys, exp.kvKeys.size);
    assert.equal(rec.purged.kv_prefix_keys, sweptGone.length);
    assert.equal(rec.purged.tags, exp.tags.size);
    assert.equal(rec.purged.urls, exp.files.size);
    assert.equal(rec.purged.cache_api, exp.files.size);
    assert.equal(rec.purged.api_calls, calls.length);
    assert.equal(rec.purged_by_environment.production.api_calls, calls.length, 'calls counted per environment');
    assert.equal(rec.attempts, 1);
    assert.deepEqual(rec.errors, []);
    const skippedUids = new Set(rec.skipped.filter((s) => s.missing === 'url').map((s) => s.uid));
    assert.deepEqual(skippedUids, exp.skippedUrl);
    for (const s of rec.skipped) assert.equal(s.template, '{base_url}{url}');
    assert.ok(rec.purged_by_environment.staging.kv_keys > 0);
    assert.equal(rec.purged_by_environment.staging.tags, 0);
    assert.ok(rec.finished_at && rec.duration_ms >= 0);

    // Contentstack was asked for every page, only successful items, with the right headers.
    const pages = ctx.cs.requests.filter((r) => r.path.endsWith('/items') && r.status === 200);
    assert.ok(pages.length >= Math.ceil(job.summary.success / 100));
    for (const r of pages) assert.equal(r.query.status, 'success');
    for (const r of ctx.cs.requests.filter((r) => r.path.startsWith('/v3/'))) {
      assert.equal(r.headers.api_version, '3.2');
      assert.equal(r.headers.authorization, stack.token);
    }
    assert.ok(ctx.cs.maxPerSecond(stack.apiKey) <= 10, `rate ${ctx.cs.maxPerSecond(stack.apiKey)}/s`);
    assert.equal(ctx.cs.rateLimited, 0, 'the Worker paced itself under the limit');
    // No secret in the ledger or the logs.
    const records = JSON.stringify(await listJobs(w, ADMIN));
    for (const secret of [CF_TOKEN, stack.token, ADMIN]) {
      assert.ok(!records.includes(secret), 'a secret in the ledger');
      assert.ok(!w.logs.join('\n').includes(secret), 'a secret in the logs');
    }
    // Log lines per stage.
    for (const stage of ['accepted', 'started', 'items_fetched', 'purged']) {
      assert.ok(w.events(stage).some((e) => e.job_id === job.jobId), `no ${stage} log line`);
    }
  });

  test('small budgets: every step hands over through the queue and the result is the same', async () => {
    const ctx = await setup({ vars: { SUBREQUEST_BUDGET: 300, SERVICE_OPS_BUDGET: 120 } });
    const { stack, cf, w } = ctx;
    const job = addJob(stack, { environments: ['production'], locales: ['en-us', 'fr-fr'], entries: 150, failedEvery: 13 });
    const kv = await w.kv();
    await seed(kv, stack, job);
    const exp = expectations(stack, job);
    await ctx.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 180000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.ok(w.events('continued').filter((e) => e.job_id === job.jobId).length >= 3, 'handed over through the queue');
    assertBudgets(w, { jobId: job.jobId, subrequests: 300, serviceOps: 120 });
    // Pages read after a hand-over still know each locale's base URL.
    assert.deepEqual(new Set(purgedBy(cf, 'files')), exp.files);
    assert.deepEqual(new Set(rec.skipped.map((s) => s.missing)), exp.skippedUrl.size ? new Set(['url']) : new Set());
    const remaining = await listAll(kv);
    for (const k of exp.kvKeys) assert.ok(!remaining.has(k), `${k} should be gone`);
  });

  test('WORKERS_PLAN=free: an invocation reads at most one item page and makes at most 200 service operations (sized for 10 ms of CPU); the result is the same', async () => {
    const ctx = await setup({ rules: UID_RULES, vars: { WORKERS_PLAN: 'free' } });
    const { stack, cf, w } = ctx;
    const job = addJob(stack, { environments: ['production'], locales: ['en-us', 'fr-fr'], entries: 150, assets: 40, failedEvery: 17 });
    const kv = await w.kv();
    const ok = job.items.filter((it) => it.publish_details.status === 'success');
    await seedKeys(kv, ok.map((it) => kvKeyOf('production', it)), { value: 'v', batch: 100 });
    await kv.put('keep:me', 'v');
    await ctx.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 180000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const lines = assertBudgets(w, { jobId: job.jobId, subrequests: 45, serviceOps: 200 });
    // The scenario: the job's pages were read over several invocations, and the operations cap was reached.
    const reading = lines.filter((l) => l.pages > 0);
    const pages = Math.ceil(job.items.length / 100);
    assert.ok(reading.length >= pages, `${reading.length} invocations read pages, for ${pages} pages`);
    assert.ok(lines.some((l) => l.service_ops > 150), 'an invocation came near the 200 operations');
    for (const l of lines) {
      assert.ok(l.pages <= 1, `one page an invocation at most: ${JSON.stringify(l)}`);
      assert.ok(l.budget[1] <= 200, `the operations budget is capped: ${JSON.stringify(l.budget)}`);
    }
    // The same result as with the Paid budgets: every key gone, every tag and URL purged once.
    const remaining = await listAll(kv);
    assert.deepEqual([...remaining], ['keep:me']);
    const tags = new Set(ok.map((it) => `uid-${it.uid}`));
    assert.deepEqual(new Set(purgedBy(cf, 'tags')), tags);
    const files = new Set(ok.filter((it) => it.type === 'entry').map((it) => `https://www.example.com/${it.publish_locale}/${it.content_type.uid}/${it.uid}`));
    assert.deepEqual(new Set(purgedBy(cf, 'files')), files);
  });

  test('a channel naming one environment limits the work to it', async () => {
    const ctx = await setup();
    const { stack, w } = ctx;
    const job = addJob(stack, { environments: ['production', 'staging'], locales: ['en-us'], entries: 5, assets: 2 });
    const kv = await w.kv();
    await seed(kv, stack, job);
    await ctx.deliver(job, 'staging');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.equal(rec.status, 'done');
    assert.deepEqual(rec.environments, ['staging']);
    const remaining = await listAll(kv);
    for (const it of job.items) {
      const env = envName(stack, it.environment);
      const key = kvKeyOf(env, it); // the job's only locale is en-us
      assert.equal(remaining.has(key), env !== 'staging', key);
    }
    assert.equal(ctx.cf.purges.length, 0, 'staging has no zone');
  });
});

describe('KV REST bulk deletes', () => {
  test('with CLOUDFLARE_ACCOUNT_ID and kv_namespace_id, large key sets go through the bulk API', async () => {
    const NS = '0f2ac74b498b48028cb68387c421e279';
    let kvRef;
    const ctx = await startSystem({
      adminToken: ADMIN,
      cloudflare: {
        onKvBulkDelete: async (account, ns, keys) => {
          assert.equal(account, 'acc123');
          assert.equal(ns, NS);
          for (const k of keys) await kvRef.delete(k);
        },
      },
      vars: { CLOUDFLARE_ACCOUNT_ID: 'acc123' },
      rules: {
        production: {
          kv_binding: 'CONTENT_KV',
          kv_namespace_id: NS,
          entry: {
            kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
            kv_prefixes: ['{environment}:{locale}:list:{content_type}:'],
          },
        },
      },
    });
    closers.push(() => ctx.close());
    const { stack, cf, w } = ctx;
    kvRef = await w.kv();
    const job = addJob(stack, { environments: ['production'], locales: ['en-us'], entries: 120 });
    const { all, unrelated } = await seed(kvRef, stack, job);
    // A big list page for one prefix, so the sweep also uses the bulk API.
    const ct = job.items[0].content_type.uid;
    const listKeys = Array.from({ length: 60 }, (_, i) => `production:en-us:list:${ct}:extra${i}`);
    await seedKeys(kvRef, listKeys, { value: 'v' });
    await ctx.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.ok(cf.kvBulkDeletes.length >= 2, `bulk calls: ${cf.kvBulkDeletes.length}`);
    assert.equal(rec.purged.kv_keys, 120);
    const remaining = await listAll(kvRef);
    for (const k of listKeys) assert.ok(!remaining.has(k));
    const leftOfJob = all.filter((k) => remaining.has(k) && !unrelated.includes(k));
    assert.deepEqual(leftOfJob, [], 'every key of the job and its list pages is gone');
    for (const k of unrelated) assert.ok(remaining.has(k), k);
    assert.ok(remaining.has('config:site'));
    // The binding was used for at most the stragglers: far fewer KV operations than keys.
    const kvOps = w.events('invocation').filter((e) => e.job_id === job.jobId).reduce((n, e) => n + e.kv, 0);
    assert.ok(kvOps < 120, `KV operations through the binding: ${kvOps}`);
  });
});

describe('purge calls within the bucket\'s burst', () => {
  test('go out several at a time (at most 4 in flight), each once, after the KV deletes, none refused', async () => {
    const ctx = await setup({ rules: UID_RULES });
    const { stack, cf, w } = ctx;
    // Every purge call takes 300 ms to answer, so calls sent one after another could not overlap.
    cf.fault({ path: '/purge_cache', delayMs: 300, times: 1000 });
    const job = addJob(stack, { environments: ['production'], entries: 400 });
    await ctx.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const calls = cf.purges.filter((p) => p.status === 200);
    assert.ok(calls.length >= 8, `${calls.length} purge calls`);
    assert.ok(calls.every((p) => p.fault), 'every call was delayed (the scenario)');
    // Most calls in flight at any one time.
    const edges = calls.flatMap((p) => [[p.at, 1], [p.answeredAt, -1]]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let most = 0;
    for (const [, d] of edges) most = Math.max(most, (now += d));
    assert.ok(most >= 2, `calls overlapped (most in flight: ${most})`);
    assert.ok(most <= 4, `at most 4 in flight (saw ${most})`);
    assert.equal(cf.bucketRefusals, 0, 'none refused by the bucket');
    const tags = purgedBy(cf, 'tags');
    assert.equal(tags.length, new Set(tags).size, 'each tag once');
    assert.equal(new Set(tags).size, 400);
    const remaining = await listAll(await w.kv());
    for (const it of job.items) assert.ok(!remaining.has(kvKeyOf('production', it)));
  });
});

describe('purges keep pace with the reads', () => {
  test('when the purges alongside run out of budget while a page waits for Contentstack, a fresh invocation takes over; nothing is read or purged twice', async () => {
    // 300 service operations an invocation: the purges alongside run out within a few hundred
    // deletes, inside the wait for Contentstack's next second.
    const ctx = await setup({ rules: UID_RULES, vars: { SERVICE_OPS_BUDGET: 300 } });
    const { stack, cs, cf, w } = ctx;
    const kv = await w.kv();
    // The scenario needs the slice spent while a read waits; on a loaded machine the deletes can
    // outlast the wait, so a job is run again (at most three times) until that happened.
    let run;
    for (let attempt = 0; attempt < 3 && !run?.handed.length; attempt++) {
      cf.reset();
      // 1,000 items: the first 9 pages fit Contentstack's first window (10 calls a second with
      // the job status), the 10th waits about a second for its start.
      const job = addJob(stack, { environments: ['production'], locales: ['en-us'], entries: 1000 });
      await seedKeys(kv, job.items.map((it) => kvKeyOf('production', it)), { value: 'v', batch: 100 });
      await ctx.deliver(job, 'production');
      const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
      assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
      const of = (e) => e.job_id === job.jobId;
      run = {
        job,
        pages: cs.requests.filter((r) => r.path.endsWith('/items') && r.path.includes(job.jobId)),
        handed: w.events('handed_on').filter(of),
        lines: w.events('invocation').filter(of),
      };
    }
    const { job, pages, handed, lines } = run;
    // The scenario: a read gave way while it waited.
    assert.ok(handed.length >= 1, 'a read gave way to a fresh invocation');
    // The outcome: purging went on while the read waited. The wait the read gave way in holds
    // the start of a fresh invocation that deleted keys and URLs; holding the invocation
    // through the wait, as before, started none there.
    const at = pages.map((r) => r.at).sort((a, b) => a - b);
    const gap = at.slice(1).map((t, i) => ({ from: at[i], to: t })).reduce((a, g) => (g.to - g.from > a.to - a.from ? g : a));
    assert.ok(gap.to - gap.from > 500, `the reads waited for Contentstack (longest gap ${gap.to - gap.from} ms)`);
    const during = lines.filter((l) => l.started_ms > gap.from && l.started_ms < gap.to - 100);
    const deletes = during.reduce((a, l) => a + (l.kv ?? 0) + (l.cache ?? 0), 0);
    assert.ok(during.length >= 1 && deletes >= 200, `${during.length} invocation(s) started during the wait, ${deletes} deletes`);
    // Nothing twice: each page read once (the start slot a read gave way with was used by the
    // next invocation, so no 429), each tag and URL purged once, every key gone.
    const skips = pages.map((r) => r.query.skip);
    assert.equal(skips.length, new Set(skips).size, `each page read once: ${skips.join(',')}`);
    assert.equal(cs.rateLimited, 0, 'no 429 from Contentstack');
    const tags = purgedBy(cf, 'tags');
    assert.equal(tags.length, new Set(tags).size, 'each tag once');
    assert.equal(new Set(tags).size, job.items.length);
    const files = purgedBy(cf, 'files');
    assert.equal(files.length, new Set(files).size, 'each URL once');
    assert.equal(cf.bucketRefusals, 0);
    assert.deepEqual([...(await listAll(kv))], []);
  });
});

describe('faults on the way', () => {
  test('429 with Retry-After and 5xx from both APIs for a while: the job still ends done with nothing missed', async () => {
    const ctx = await setup();
    const { stack, cs, cf, w } = ctx;
    const job = addJob(stack, { environments: ['production'], locales: ['en-us', 'fr-fr'], entries: 40, assets: 10, failedEvery: 7 });
    const kv = await w.kv();
    await seed(kv, stack, job);
    const exp = expectations(stack, job);
    cs.fault({ path: '/items', status: 429, retryAfter: 1, times: 2 });
    cs.fault({ path: `/v3/bulk/jobs/${job.jobId}`, status: 503, times: 2 });
    cs.fault({ path: '/entries/', status: 500, times: 3 });
    cs.fault({ path: '/environments', status: 502, times: 1 });
    cf.fault({ path: '/purge_cache', status: 429, retryAfter: 1, times: 2 });
    cf.fault({ path: '/purge_cache', status: 500, times: 2 });
    await ctx.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const remaining = await listAll(kv);
    for (const k of exp.kvKeys) assert.ok(!remaining.has(k), `${k} should be gone`);
    assert.deepEqual(new Set(purgedBy(cf, 'tags')), exp.tags);
    assert.deepEqual(new Set(purgedBy(cf, 'files')), exp.files);
    assert.ok(cs.statusCounts()['429'] >= 2 && cs.statusCounts()['503'] >= 2, 'the faults fired');
    assert.ok(cf.purges.some((p) => p.status === 429), 'the purge 429 fired');
    // Retry-After was honoured: the retry of a 429 came at least ~1 s later.
    const items = cs.requests.filter((r) => r.path.endsWith('/items'));
    const first429 = items.findIndex((r) => r.status === 429);
    assert.ok(items[first429 + 1].at - items[first429].at >= 900, 'retried before Retry-After');
  });

  test('Cloudflare answering success:false for good makes the job partial, with the error recorded', async () => {
    const ctx = await setup();
    const { stack, cf, w } = ctx;
    const job = addJob(stack, { environments: ['production'], locales: ['en-us'], entries: 10 });
    cf.fault({ path: '/purge_cache', successFalse: true, times: 1 });
    await ctx.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.equal(rec.status, 'partial');
    assert.ok(rec.errors.some((e) => /Cloudflare purge/.test(e)), JSON.stringify(rec.errors));
    assert.ok(rec.purged.kv_keys > 0);
  });

  test('Contentstack failing for good: the job ends failed via the dead-letter queue and on_failure runs', async () => {
    const ctx = await setup({ vars: { QUEUE_MAX_ATTEMPTS: 2 } });
    const { stack, cs, cf, w } = ctx;
    const job = addJob(stack, { environments: ['production'], locales: ['en-us'], entries: 3 });
    const kv = await w.kv();
    await seed(kv, stack, job);
    cs.fault({ path: `/v3/bulk/jobs/${job.jobId}`, status: 500, times: 1000 });
    await ctx.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 180000 });
    assert.equal(rec.status, 'failed');
    assert.ok(rec.errors.some((e) => /job status/.test(e)), JSON.stringify(rec.errors));
    // on_failure: the coarse tag purge was sent and the environment's KV prefix swept.
    assert.deepEqual(purgedBy(cf, 'tags'), ['cs-production']);
    const remaining = await listAll(kv);
    assert.ok(![...remaining].some((k) => k.startsWith('production:')), 'production keys swept');
    assert.ok(remaining.has('staging:en-us:list:blog:page1') && remaining.has('config:site'));
    assert.ok(w.events('failed').some((e) => e.job_id === job.jobId));
    assert.ok(rec.purged.tags === 1 && rec.purged.kv_prefix_keys > 0);
  });
});

describe('scale', () => {
  test('a 10,000-item job completes with every invocation within both budgets', async () => {
    const ctx = await setup({
      rules: {
        ...KV_ONLY_RULES,
        staging: { kv_binding: 'CONTENT_KV', entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'] } },
      },
    });
    const { stack, w, cs } = ctx;
    const job = addJob(stack, { environments: ['production', 'staging'], locales: ['en-us', 'fr-fr'], entries: 2500 });
    assert.equal(job.items.length, 10000);
    const kv = await w.kv();
    await seedKeys(kv, job.items.map((it) => kvKeyOf(envName(stack, it.environment), it)), { value: 'v', batch: 200 });
    await kv.put('keep:me', 'v');
    await ctx.deliver(job, undefined);
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 300000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.equal(rec.purged.kv_keys, 10000);
    const lines = assertBudgets(w, { jobId: job.jobId });
    assert.ok(lines.length >= 10, `${lines.length} invocations`);
    assert.ok(lines.some((l) => l.service_ops > 450), 'the budget was really used');
    const remaining = await listAll(kv);
    assert.deepEqual([...remaining], ['keep:me']);
    const failures = w.events('step_failed').filter((e) => e.job_id === job.jobId);
    assert.deepEqual(failures, [], 'no step failed');
    // Pages answered 200 (a 429 from the fake's own 10/s window on a busy machine is retried and
    // is not a page read twice).
    const pages = cs.requests.filter((r) => r.url.includes('/items?') && r.status === 200).map((r) => new URL(r.url, 'http://x').searchParams.get('skip'));
    assert.equal(pages.length, 101, '100 full pages and the empty one that ends the job');
    assert.equal(new Set(pages).size, 101, 'no page read twice');
    assert.ok(w.events('continued').filter((e) => e.job_id === job.jobId).length >= 10, 'the work was fanned out');
  });
});
