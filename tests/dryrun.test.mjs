// The dry run is exact (docs/CONTRACT.md, "Dry run" and "Processing"): for the same job, rules
// and configuration, `POST /api/plan` lists the sets the run purges, its `purge_calls` is the
// number of first-pass Cloudflare purge calls the run makes, and `second_pass.purge_calls` the
// second pass's. The run's calls follow the job's items only, so item pages that answer slowly
// change nothing. Each case first checks that its scenario happened (tags recurring across purge
// groups, slow pages, 500-URL calls, referrers), then that the plan and the run agree.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitFor, waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { makeStack, addJob, addEntry, addReference, publishEntry } from '../devkit/fakes/stack.mjs';

const ADMIN = 'dry-run-admin-token';
const ZONE = 'zone0dryrun0production00000000000';
const ZONE_STAGING = 'zone0dryrun0staging000000000000000';
const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup({ rules, vars = {}, cloudflare = true, stack } = {}) {
  const sys = await startSystem({
    rules,
    adminToken: ADMIN,
    cloudflare,
    stack,
    vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, ...vars },
  });
  closers.push(() => sys.close());
  return sys;
}

async function dryRun(sys, job) {
  const r = await sys.w.fetch('/api/plan', { method: 'POST', headers: auth, body: JSON.stringify({ job_id: job.jobId }) });
  assert.equal(r.status, 200, await r.clone().text());
  const plan = await r.json();
  assert.equal(plan.truncated, false, 'the dry run read the whole job');
  return plan;
}

const okCalls = (cf) => cf.purges.filter((p) => p.status === 200);
const purgedSet = (cf, zone, mode) => new Set(okCalls(cf).filter((p) => p.zoneId === zone && p.mode === mode).flatMap((p) => p.items));
/** The fewest calls the plan's sets need: each item once, `batch` per call. */
const uniqueMinimum = (plan, batch = 100) =>
  Object.values(plan.plan.environments).reduce(
    (n, e) => n + Math.ceil(e.tags.length / batch) + Math.ceil(e.files.length / batch) + Math.ceil(e.prefixes.length / batch) + Math.ceil(e.hosts.length / batch),
    0,
  );

/** Waits for the `first_pass_done` log line of the job, then answers the successful calls so far. */
async function callsAtFirstPass(sys, job) {
  await waitFor(() => sys.w.events('first_pass_done').some((e) => e.job_id === job.jobId), { what: 'the first pass to end', timeoutMs: 120000 });
  return okCalls(sys.cf).length;
}

describe('the dry run is the run', () => {
  test('two environments, two locales, tags that recur across pages purged once per pass, slow item pages, the second pass', async () => {
    const rules = {
      production: {
        zone_id: ZONE,
        kv_binding: 'CONTENT_KV',
        entry: {
          kv_keys: ['{environment}:{locale}:entry:{uid}'],
          tags: ['cs-{environment}-{uid}', 'cs-{environment}-ct-{content_type}'],
          urls: ['{base_url}{url}'],
        },
        asset: { kv_keys: ['{environment}:asset:{uid}'], tags: ['cs-{environment}-{uid}'] },
      },
      staging: {
        zone_id: ZONE_STAGING,
        kv_binding: 'CONTENT_KV',
        entry: { kv_keys: ['{environment}:{locale}:entry:{uid}'], tags: ['stg-{uid}', 'stg-ct-{content_type}'] },
      },
    };
    // The second pass waits long enough that the first pass's calls can be counted alone. A purge
    // bucket that binds (2 a second, burst 1): the job defers the values that recur.
    const sys = await setup({ rules, vars: { REPURGE_DELAY_SECONDS: 8, PURGE_RATE_PER_SECOND: 2, PURGE_BURST: 1 } });
    const job = addJob(sys.stack, { environments: ['production', 'staging'], locales: ['en-us', 'fr-fr'], entries: 240, assets: 10, withUrl: 0.9 });
    assert.ok(job.items.length > 900, `${job.items.length} items: more than one purge group`);

    const plan = await dryRun(sys, job);
    // The same uid's two locales sit on different pages, so its tag recurs across purge groups:
    // it is purged once per pass, after every page (docs/ARCHITECTURE.md, "Purge groups").
    const uidPages = new Map();
    job.items.forEach((it, i) => uidPages.set(it.uid, new Set([...(uidPages.get(it.uid) ?? []), Math.floor(i / 100)])));
    assert.ok([...uidPages.values()].some((pages) => pages.size > 1), 'some uid has items on two pages');
    assert.equal(plan.purge_calls, uniqueMinimum(plan), `recurring tags purged once: ${plan.purge_calls} calls for a minimum of ${uniqueMinimum(plan)}`);
    assert.deepEqual(plan.second_pass.environments.sort(), ['production', 'staging']);
    assert.equal(plan.second_pass.purge_calls, uniqueMinimum(plan), 'the second pass sends each item once');

    // Slow pages: the second and third item pages answer after 1.5 s.
    const slow = sys.cs.fault({ path: /\/items\?.*skip=(100|200)&/, delayMs: 1500, times: 2 });
    await sys.deliver(job, undefined);
    const first = await callsAtFirstPass(sys, job);
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.equal(slow.hits, 2, 'two slow pages were served');

    assert.equal(first, plan.purge_calls, 'first-pass calls: the run against its dry run');
    for (const [env, zone] of [['production', ZONE], ['staging', ZONE_STAGING]]) {
      const tagCalls = okCalls(sys.cf).slice(0, first).filter((p) => p.zoneId === zone && p.mode === 'tags').length;
      assert.equal(tagCalls, Math.ceil(plan.plan.environments[env].tags.length / 100), `${env}: each tag once in the first pass`);
    }
    assert.equal(okCalls(sys.cf).length, plan.purge_calls + plan.second_pass.purge_calls, 'second-pass calls');
    assert.equal(rec.purged.api_calls, okCalls(sys.cf).length);
    for (const [env, zone] of [['production', ZONE], ['staging', ZONE_STAGING]]) {
      const p = plan.plan.environments[env];
      assert.deepEqual(purgedSet(sys.cf, zone, 'tags'), new Set(p.tags), `${env}: the tags`);
      assert.deepEqual(purgedSet(sys.cf, zone, 'files'), new Set(p.files), `${env}: the URLs`);
    }
    // The record counts each item once, however many groups sent it.
    assert.equal(rec.purged.tags, plan.plan.environments.production.tags.length + plan.plan.environments.staging.tags.length);
  });

  test('Enterprise: 500 URLs a call, 100 tags a call, over two purge groups', async () => {
    const rules = {
      production: { zone_id: ZONE, entry: { tags: ['cs-{uid}'], urls: ['https://www.example.com/e/{uid}'] } },
    };
    const sys = await setup({
      rules,
      vars: { CLOUDFLARE_PLAN: 'enterprise', PURGE_BATCH_SIZE: 500, PURGE_RATE_PER_SECOND: undefined, PURGE_BURST: undefined, REPURGE_DELAY_SECONDS: 0 },
      cloudflare: { bucket: { rate: 50, burst: 500 }, maxFilesPerCall: 500 },
    });
    const job = addJob(sys.stack, { entries: 1250 });
    const plan = await dryRun(sys, job);
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const files = okCalls(sys.cf).filter((p) => p.mode === 'files');
    assert.ok(files.some((p) => p.items.length === 500), 'a call carried 500 URLs');
    for (const p of okCalls(sys.cf).filter((p) => p.mode === 'tags')) assert.ok(p.items.length <= 100);
    // Groups of 800, 450 items: URLs 500 + 300 + 450, tags 8 + 5.
    assert.equal(files.length, 3);
    assert.equal(plan.purge_calls, okCalls(sys.cf).length);
    assert.equal(plan.purge_calls, 3 + 13);
  });

  test('referrers: the reference look-ups add a purge group of their own', async () => {
    const rules = {
      production: {
        zone_id: ZONE,
        entry: { tags: ['cs-{uid}', 'cs-ct-{content_type}'] },
        references: { content_types: ['author'], depth: 1 },
      },
    };
    const stack = makeStack({ contentTypes: ['author', 'post'] });
    const sys = await setup({ rules, stack, vars: { REPURGE_DELAY_SECONDS: 0 } });
    const job = addJob(sys.stack, { entries: 6 }); // authors and posts, alternating
    const authors = job.entries.filter((e) => e.content_type === 'author');
    assert.ok(authors.length >= 2);
    for (const a of authors) {
      for (let i = 0; i < 3; i++) {
        const p = addEntry(sys.stack, { contentType: 'post', locales: ['en-us'], version: 2 });
        addReference(sys.stack, p.uid, a.uid);
        publishEntry(sys.stack, p.uid, 'production', 'en-us', 2);
      }
    }
    const plan = await dryRun(sys, job);
    assert.equal(plan.references.referrers, authors.length * 3, 'the dry run found every referrer');
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.equal(rec.references.referrers, authors.length * 3);
    // The items' group and the referrers' group each purge `cs-ct-post`: two tag calls.
    assert.equal(plan.purge_calls, 2);
    assert.equal(okCalls(sys.cf).length, plan.purge_calls);
    assert.deepEqual(purgedSet(sys.cf, ZONE, 'tags'), new Set(plan.plan.environments.production.tags));
  });
});
