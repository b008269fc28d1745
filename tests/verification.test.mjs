// Verified invalidation (docs/CONTRACT.md, "Verified invalidation"): after an environment's
// purge pass the Worker requests a sample of the URLs it purged and reads CF-Cache-Status and
// Age. The fake site plays the zone's cache: HIT with an Age until the fake Cloudflare API
// purges a URL (then MISS, or EXPIRED after a soft purge); a pinned URL stays a HIT whatever
// the purge API answers; a purge can also reach the site late. Every test first checks that
// the probes happened, then what the record says.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem, assertBudgets } from '../devkit/harness/system.mjs';
import { makeStack, addJob } from '../devkit/fakes/stack.mjs';

const ADMIN = 'verification-admin-token';
const ZONE = 'zone0verification0000000000000000';

// Entry URLs are looked up (resolve_urls), or, where a budget too small for look-ups is
// tested, built from the uid (`byUid`).
function rules({ sample = 5, mode, kv = false, byUid = false } = {}) {
  return {
    production: {
      zone_id: ZONE,
      verify_sample: sample,
      ...(byUid ? {} : { resolve_urls: true }),
      ...(mode ? { purge_mode: mode } : {}),
      ...(kv ? { kv_binding: 'CONTENT_KV' } : {}),
      entry: {
        urls: [byUid ? '{base_url}page/{uid}' : '{base_url}{url}'],
        tags: ['cs-{uid}'],
        ...(kv ? { kv_keys: ['{environment}:entry:{uid}'] } : {}),
      },
    },
  };
}

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup(ruleOptions = {}, { vars = {}, cloudflare } = {}) {
  const stack = makeStack({ contentTypes: ['page'] });
  const sys = await startSystem({
    rules: rules(ruleOptions),
    adminToken: ADMIN,
    stack,
    site: { environments: ['production'] },
    ...(cloudflare ? { cloudflare } : {}),
    vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, ...vars },
  });
  closers.push(() => sys.close());
  return sys;
}

/** A job of `n` pages whose URLs are cached on the site with an old copy (an hour old). */
function cachedJob(sys, n, { byUid = false } = {}) {
  const job = addJob(sys.stack, { entries: n, environments: ['production'] });
  const urls = job.entries.map((e) => (byUid ? `${sys.site.url}/page/${e.uid}` : `${sys.site.url}${e.url}`));
  for (const u of urls) sys.site.cache(u, { ageSeconds: 3600 });
  return { job, urls };
}

/** The site's GET requests after `since` (probes), by URL path. */
function probesAfter(site, since) {
  return site.requests.filter((r) => r.at >= since && r.method === 'GET');
}

describe('verified invalidation', () => {
  test('a sample spread across the job is probed once each and found fresh', async () => {
    const sys = await setup({ sample: 4 });
    const { job, urls } = cachedJob(sys, 40);
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN });
    const probes = probesAfter(sys.site, t0);
    assert.equal(probes.length, 4, 'four probes, one per sampled URL');
    const paths = probes.map((p) => p.path);
    assert.equal(new Set(paths).size, 4, 'distinct URLs');
    // Spread: the middle of each quarter of the 40 purged URLs, in planned order.
    const purged = sys.cf.purged('files', ZONE).map((u) => new URL(u).pathname);
    assert.equal(purged.length, 40);
    const expected = [5, 15, 25, 35].map((i) => purged[i]).sort();
    assert.deepEqual([...paths].sort(), expected);
    assert.ok(probes.every((p) => p.cacheStatus === 'MISS'), 'each probe came after its purge');
    assert.equal(rec.status, 'done');
    const v = rec.verification.production;
    assert.equal(v.checked, 4);
    assert.equal(v.fresh, 4);
    assert.deepEqual(v.stale, []);
    assert.equal(v.scope, 'one data centre');
    assert.equal(v.pass, 1);
    assert.ok(!Number.isNaN(Date.parse(v.at)));
    assert.ok(urls.length === 40);
    // The probes count in the invocation's budget.
    const lines = assertBudgets(sys.w, { jobId: job.jobId });
    const verifyLines = lines.filter((l) => l.step === 'verify' || l.fetch >= 4);
    assert.ok(verifyLines.length > 0);
    // The dry run names the URLs verification probes.
    const plan = await sys.w.fetch('/api/plan', { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ job_id: job.jobId }) });
    const dry = await plan.json();
    assert.equal(plan.status, 200, JSON.stringify(dry));
    assert.equal(dry.verification.production.verify_sample, 4);
    assert.deepEqual(dry.verification.production.urls.map((u) => new URL(u).pathname).sort(), expected);
    const timeline = rec.timeline.events.map((e) => e.kind);
    for (const k of ['start', 'pages', 'purge', 'first_pass', 'verify', 'end']) assert.ok(timeline.includes(k), `timeline has ${k}: ${timeline}`);
  });

  test('a URL still cached after the extra purge makes the job partial with "still cached"', async () => {
    const sys = await setup({ sample: 5 });
    const { job, urls } = cachedJob(sys, 3);
    const stuck = urls[1];
    sys.site.pin(stuck);
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN });
    const probes = probesAfter(sys.site, t0);
    const stuckPath = new URL(stuck).pathname;
    assert.equal(probes.filter((p) => p.path === stuckPath).length, 2, 'probed, purged again, probed again');
    assert.equal(probes.length, 4, 'the fresh URLs are probed once');
    const purgesOfStuck = sys.cf.purged('files', ZONE).filter((u) => u === stuck);
    assert.equal(purgesOfStuck.length, 2, 'the pass and the extra purge');
    assert.equal(rec.status, 'partial');
    const v = rec.verification.production;
    assert.equal(v.checked, 3, 're-probes do not count again');
    assert.equal(v.fresh, 2);
    assert.deepEqual(v.stale, [stuck]);
    assert.deepEqual(v.repurged, [stuck]);
    assert.ok(rec.errors.includes(`still cached: ${stuck}`), JSON.stringify(rec.errors));
    assert.equal(rec.purged.api_calls, sys.cf.purges.filter((p) => p.status === 200).length, 'the extra purge call is counted');
  });

  test('a URL the first purge missed looks stale, and the extra purge makes it fresh', async () => {
    // The purge API answers 200 for both calls, but the edge keeps the copy after the first:
    // the URL is pinned until the second purge call that names it.
    let sys;
    let callsNamingIt = 0;
    let missed;
    const onPurge = async (p) => {
      if (missed && (p.body.files ?? []).includes(missed)) {
        callsNamingIt += 1;
        if (callsNamingIt === 2) sys.site.unpin(missed);
      }
    };
    sys = await setup({ sample: 5 }, { cloudflare: { onPurge } });
    const { job, urls } = cachedJob(sys, 2);
    missed = urls[0];
    sys.site.pin(missed);
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN });
    assert.equal(callsNamingIt, 2, 'purged by the pass, then once more');
    const probes = probesAfter(sys.site, t0).filter((p) => p.path === new URL(missed).pathname);
    assert.deepEqual(probes.map((p) => p.cacheStatus), ['HIT', 'MISS'], 'stale at the first probe, fresh after the extra purge');
    assert.equal(rec.status, 'done');
    const v = rec.verification.production;
    assert.equal(v.checked, 2);
    assert.equal(v.fresh, 2);
    assert.deepEqual(v.stale, []);
    assert.deepEqual(v.repurged, [missed]);
    assert.ok(!rec.errors.some((e) => e.startsWith('still cached')));
  });

  test('purge_mode "invalidate": the soft purge revalidates and verification finds it fresh', async () => {
    const sys = await setup({ sample: 3, mode: 'invalidate' });
    const { job } = cachedJob(sys, 3);
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN });
    assert.ok(sys.cf.purges.length > 0 && sys.cf.purges.every((p) => p.endpoint === 'invalidate_cache'));
    const probes = probesAfter(sys.site, t0);
    assert.equal(probes.length, 3);
    assert.ok(probes.every((p) => p.cacheStatus === 'EXPIRED'), JSON.stringify(probes.map((p) => p.cacheStatus)));
    assert.equal(rec.status, 'done');
    assert.deepEqual(rec.verification.production.stale, []);
    assert.equal(rec.verification.production.fresh, 3);
  });

  test('after the second pass the environment is verified again', async () => {
    const sys = await setup({ sample: 2, kv: true }, { vars: { REPURGE_DELAY_SECONDS: 2 } });
    const { job } = cachedJob(sys, 2);
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 60000 });
    assert.ok(rec.second_pass_at, 'the second pass ran');
    const probes = probesAfter(sys.site, t0);
    assert.equal(probes.length, 4, 'two probes after each pass');
    const verifies = rec.timeline.events.filter((e) => e.kind === 'verify');
    assert.equal(verifies.length, 2);
    const second = rec.timeline.events.find((e) => e.kind === 'second_pass');
    assert.ok(second && verifies[1].t > second.t, 'the second verification follows the second pass');
    assert.equal(rec.verification.production.pass, 2);
    assert.equal(rec.verification.production.checked, 2);
    assert.equal(rec.status, 'done');
  });

  test('an unreachable URL is neither fresh nor stale and does not fail the job', async () => {
    const sys = await setup({ sample: 5 });
    const { job, urls } = cachedJob(sys, 2);
    sys.site.fault({ path: new URL(urls[0]).pathname, destroy: true, times: 10 });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN });
    assert.ok(sys.site.requests.some((r) => r.fault), 'the fault fired');
    const v = rec.verification.production;
    assert.deepEqual(v.unreachable, [urls[0]]);
    assert.equal(v.checked, 2);
    assert.equal(v.fresh, 1);
    assert.equal(rec.status, 'done');
  });

  test('on the Free plan a large sample stays within 45 fetches per invocation', async () => {
    const sys = await setup({ sample: 50, byUid: true }, { vars: { WORKERS_PLAN: 'free' } });
    const { job } = cachedJob(sys, 60, { byUid: true });
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    const probes = probesAfter(sys.site, t0);
    assert.ok(probes.length >= 1, 'probes ran');
    assertBudgets(sys.w, { subrequests: 45 });
    const v = rec.verification.production;
    assert.equal(v.checked, probes.length, 'every probe is one checked URL');
    assert.ok(v.checked <= 50);
    assert.equal(v.fresh, v.checked);
    assert.equal(rec.status, 'done');
  });

  test('verify_sample 0 (the default) probes nothing', async () => {
    const sys = await setup({ sample: 0 });
    const { job } = cachedJob(sys, 3);
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN });
    assert.equal(sys.cf.purged('files', ZONE).length, 3, 'the purge ran');
    assert.equal(probesAfter(sys.site, t0).length, 0);
    assert.equal(rec.verification, undefined);
    assert.equal(rec.status, 'done');
  });
});
