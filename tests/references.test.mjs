// Reference-aware purge (docs/CONTRACT.md, "Reference-aware purge"): a changed entry (of a
// listed content type) or asset reaches the entries that reference it, when they are published
// to the environment in the item's locale; up to `depth`, each once, cycles cut; past
// `max_lookups` the environment's on_failure purge runs. The fake Management API answers the
// references endpoints with referrers published to other environments and locales too.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem, invocations, assertBudgets } from '../devkit/harness/system.mjs';
import { makeStack, addJob, addEntry, addAsset, addReference, publishEntry } from '../devkit/fakes/stack.mjs';

const ADMIN = 'references-admin-token';
const ZONE = 'zone0references00000000000000000';
const BASE = 'https://www.example.com';

function rules(references, extra = {}) {
  return {
    production: {
      zone_id: ZONE,
      on_failure: ['tag:cs-{environment}-all'],
      entry: { tags: ['cs-{uid}-v{version}'], ...extra.entry },
      asset: { tags: ['cs-asset-{uid}'] },
      references,
      ...extra.rule,
    },
    staging: {
      zone_id: ZONE,
      entry: { tags: ['stg-{uid}'] },
      references,
    },
  };
}

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup(references, { extra, vars = {} } = {}) {
  const stack = makeStack({ contentTypes: ['author', 'post', 'page', 'category'] });
  for (const e of stack.environments) e.urls = [{ locale: 'en-us', url: `${BASE}/` }, { locale: 'fr-fr', url: `${BASE}/fr/` }];
  const sys = await startSystem({
    rules: rules(references, extra),
    adminToken: ADMIN,
    stack,
    vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, ...vars },
  });
  closers.push(() => sys.close());
  return sys;
}

const tagsPurged = (cf) => new Set(cf.purges.filter((p) => p.status === 200 && p.mode === 'tags').flatMap((p) => p.items));
const referenceCalls = (cs) => cs.requests.filter((r) => r.path.endsWith('/references'));

/** A post published to production (en-us, at `version`) that references `to`. */
function post(stack, to, { env = 'production', locale = 'en-us', version = 3, published = true, url } = {}) {
  const p = addEntry(stack, { contentType: 'post', locales: ['en-us', 'fr-fr'], version: version + 1, url });
  addReference(stack, p.uid, to);
  if (published) publishEntry(stack, p.uid, env, locale, version);
  return p;
}

describe('reference-aware purge', () => {
  test('a changed author reaches the posts published to this environment and locale, nothing else', async () => {
    const sys = await setup({ content_types: ['author'], depth: 1 });
    const { stack } = sys;
    const job = addJob(stack, { entries: 1, environments: ['production'] }); // one author (first content type)
    const author = job.entries[0];
    assert.equal(author.content_type, 'author');
    const here = post(stack, author.uid, { version: 3 });
    const otherLocale = post(stack, author.uid, { locale: 'fr-fr' });
    const otherEnv = post(stack, author.uid, { env: 'staging' });
    const unpublished = post(stack, author.uid, { published: false });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));

    const calls = referenceCalls(sys.cs);
    assert.equal(calls.length, 1, 'one look-up per changed entry and locale');
    assert.ok(calls[0].url.includes('locale=en-us') && calls[0].url.includes('include_publish_details=true'), calls[0].url);
    const tags = tagsPurged(sys.cf);
    assert.ok(tags.has(`cs-${author.uid}-v${author.version}`), 'the job item itself');
    assert.ok(tags.has(`cs-${here.uid}-v3`), 'the referrer, at its published version (not _version 4)');
    for (const p of [otherLocale, otherEnv, unpublished]) {
      assert.ok(![...tags].some((t) => t.includes(p.uid)), `${p.uid} must be left alone`);
    }
    assert.deepEqual({ lookups: rec.references.lookups, referrers: rec.references.referrers, truncated: rec.references.truncated }, { lookups: 1, referrers: 1, truncated: false });
    assert.equal(rec.references.pulled_in.length, 1);
    const row = rec.references.pulled_in[0];
    assert.equal(row.uid, here.uid);
    assert.equal(row.depth, 1);
    assert.equal(row.version, 3);
    assert.equal(row.from.uid, author.uid);
  });

  test('depth 2 follows referrers of referrers once each, whatever their type, and cuts the cycle', async () => {
    const sys = await setup({ content_types: ['category'], depth: 2 });
    const { stack } = sys;
    const category = addEntry(stack, { contentType: 'category', locales: ['en-us'], version: 2 });
    const p = post(stack, category.uid); // depth 1
    const page = addEntry(stack, { contentType: 'page', locales: ['en-us'], version: 1 });
    addReference(stack, page.uid, p.uid); // depth 2
    publishEntry(stack, page.uid, 'production', 'en-us', 1);
    addReference(stack, category.uid, p.uid); // the cycle: the category references the post back
    publishEntry(stack, category.uid, 'production', 'en-us', 2);
    const deep = addEntry(stack, { contentType: 'page', locales: ['en-us'], version: 1 });
    addReference(stack, deep.uid, page.uid); // depth 3: beyond the rule
    publishEntry(stack, deep.uid, 'production', 'en-us', 1);
    const job = addJob(stack, { entryUids: [category.uid] });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));

    const looked = referenceCalls(sys.cs).map((r) => r.path.split('/')[5]).sort();
    assert.deepEqual(looked, [category.uid, p.uid].sort(), 'the category, then the post; never the category again, nor the page at depth 2');
    const tags = tagsPurged(sys.cf);
    assert.ok(tags.has(`cs-${p.uid}-v3`) && tags.has(`cs-${page.uid}-v1`));
    assert.ok(![...tags].some((t) => t.includes(deep.uid)), 'depth 3 is beyond the rule');
    assert.equal(rec.references.lookups, 2);
    assert.equal(rec.references.referrers, 2, 'the category found again through the cycle is not a new referrer');
    const byUid = Object.fromEntries(rec.references.pulled_in.map((r) => [r.uid, r]));
    assert.equal(byUid[page.uid].depth, 2);
    assert.equal(byUid[page.uid].from.uid, category.uid, 'the job item that led to it');
  });

  test('a changed asset reaches the entries that embed it; an unpublish reaches referrers too', async () => {
    const sys = await setup({ assets: true, content_types: ['author'] });
    const { stack } = sys;
    const asset = addAsset(stack, {});
    const embedding = post(stack, asset.uid);
    const job = addJob(stack, { assetUids: [asset.uid] });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.equal(referenceCalls(sys.cs).filter((r) => r.path === `/v3/assets/${asset.uid}/references`).length, 1);
    assert.ok(tagsPurged(sys.cf).has(`cs-${embedding.uid}-v3`));

    const author = addEntry(stack, { contentType: 'author', locales: ['en-us'], version: 2 });
    publishEntry(stack, author.uid, 'production', 'en-us', 2);
    const reader = post(stack, author.uid, { version: 5 });
    const unpublish = addJob(stack, { action: 'unpublish', entryUids: [author.uid] });
    await sys.deliver(unpublish, 'production');
    const rec2 = await waitForFinal(sys.w, unpublish.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec2.status, 'done', JSON.stringify(rec2.errors));
    assert.equal(rec2.references.referrers, 1);
    assert.ok(tagsPurged(sys.cf).has(`cs-${reader.uid}-v5`), 'the post showing the unpublished author is purged');
  });

  test('past max_lookups the job says truncated and runs on_failure, and still ends done', async () => {
    const sys = await setup({ content_types: ['author'], max_lookups: 2 });
    const { stack } = sys;
    const authors = [];
    for (let n = 0; n < 5; n++) {
      const a = addEntry(stack, { contentType: 'author', locales: ['en-us'], version: 1 });
      post(stack, a.uid);
      authors.push(a.uid);
    }
    const job = addJob(stack, { entryUids: authors });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(referenceCalls(sys.cs).length, 2, 'two look-ups, no more');
    assert.equal(rec.references.truncated, true);
    assert.equal(rec.references.lookups, 2);
    assert.ok(tagsPurged(sys.cf).has('cs-production-all'), 'the on_failure purge ran');
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
  });

  test('an entry referenced by more than 1,000 published entries falls back to on_failure, truncated', async () => {
    const sys = await setup({ content_types: ['author'] });
    const { stack } = sys;
    const author = addEntry(stack, { contentType: 'author', locales: ['en-us'], version: 1 });
    for (let n = 0; n < 1001; n++) post(stack, author.uid);
    const job = addJob(stack, { entryUids: [author.uid] });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(referenceCalls(sys.cs).length, 1, 'the look-up was made');
    assert.equal(rec.references.truncated, true);
    assert.equal(rec.references.referrers, 0, 'none planned one by one');
    assert.ok(tagsPurged(sys.cf).has('cs-production-all'), 'the on_failure purge ran instead');
    assert.ok(rec.errors.some((e) => e.includes('more than 1000')), JSON.stringify(rec.errors));
    assert.equal(rec.status, 'done');
  });

  test('a refused look-up is an error and falls back to on_failure', async () => {
    const sys = await setup({ content_types: ['author'] });
    sys.stack.refuseReferences = true;
    const job = addJob(sys.stack, { entries: 1 });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.ok(referenceCalls(sys.cs).some((r) => r.status === 422), 'the look-up was refused');
    assert.ok(rec.errors.some((e) => e.includes('refused')), JSON.stringify(rec.errors));
    assert.ok(tagsPurged(sys.cf).has('cs-production-all'));
    assert.equal(rec.status, 'done', 'on_failure covered what the look-up could not: nothing is left stale');
  });

  test('referrers get their URLs resolved (batched, at their published version)', async () => {
    const sys = await setup({ content_types: ['author'] }, { extra: { rule: { resolve_urls: true }, entry: { urls: ['{base_url}{url}'] } } });
    const { stack } = sys;
    const author = addEntry(stack, { contentType: 'author', locales: ['en-us'], version: 1, url: '/author/a' });
    publishEntry(stack, author.uid, 'production', 'en-us', 1);
    const readers = [0, 1, 2].map((n) => post(stack, author.uid, { url: `/post/${n}` }));
    // The first post moved on after it was published: its published version had another URL.
    readers[0].urlsByVersion = { 3: '/post/as-published', 4: '/post/moved-on' };
    const job = addJob(stack, { entryUids: [author.uid] });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const files = new Set(sys.cf.purges.filter((p) => p.status === 200 && p.mode === 'files').flatMap((p) => p.items));
    assert.ok(files.has(`${BASE}/post/as-published`), [...files].join(' '));
    assert.ok(files.has(`${BASE}/post/1`) && files.has(`${BASE}/post/2`));
    assert.ok(!files.has(`${BASE}/post/moved-on`));
    const postQueries = sys.cs.requests.filter((r) => r.path === '/v3/content_types/post/entries' && r.url.includes('query='));
    assert.equal(postQueries.length, 1, 'the three referrers in one query');
  });

  test('the dry run lists each referrer with the item that led to it, and touches nothing', async () => {
    const sys = await setup({ content_types: ['author'], depth: 2 });
    const { stack } = sys;
    const job = addJob(stack, { entries: 1 });
    const author = job.entries[0];
    const p = post(stack, author.uid);
    const purgesBefore = sys.cf.purges.length;
    const r = await sys.w.fetch('/api/plan', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ job_id: job.jobId }),
    });
    assert.equal(r.status, 200);
    const plan = await r.json();
    assert.equal(plan.references.lookups, 2, 'the author, then the post (depth 2)');
    assert.equal(plan.references.referrers, 1);
    assert.equal(plan.references.pulled_in[0].uid, p.uid);
    assert.equal(plan.references.pulled_in[0].from.uid, author.uid);
    assert.ok(plan.plan.environments.production.tags.includes(`cs-${p.uid}-v3`));
    assert.equal(sys.cf.purges.length, purgesBefore);
  });

  test('many look-ups fan out across invocations on the Free plan budgets, each made once', async () => {
    const sys = await setup({ content_types: ['author'], max_lookups: 1000 }, { vars: { WORKERS_PLAN: 'free' } });
    const { stack } = sys;
    const authors = [];
    for (let n = 0; n < 60; n++) {
      const a = addEntry(stack, { contentType: 'author', locales: ['en-us'], version: 1 });
      post(stack, a.uid);
      authors.push(a.uid);
    }
    const job = addJob(stack, { entryUids: authors });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 240000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const steps = invocations(sys.w, job.jobId).filter((l) => l.step === 'references');
    // 60 look-ups cannot fit one invocation of 45 fetches: the step was handed on.
    assert.ok(steps.length >= 1, 'a queue message continued the look-ups');
    assert.ok(invocations(sys.w, job.jobId).length >= 2);
    assertBudgets(sys.w, { jobId: job.jobId, subrequests: 45 });
    const paths = referenceCalls(sys.cs).filter((r) => r.status === 200).map((r) => r.path);
    assert.equal(paths.length, 60);
    assert.equal(new Set(paths).size, 60, 'no look-up made twice');
    assert.equal(rec.references.lookups, 60);
    assert.equal(rec.references.referrers, 60);
  });

  test('two per-environment deliveries each look up their own environment', async () => {
    const sys = await setup({ content_types: ['author'] });
    const { stack } = sys;
    const job = addJob(stack, { entries: 1, environments: ['production', 'staging'] });
    const author = job.entries[0];
    const prod = post(stack, author.uid);
    const stg = post(stack, author.uid, { env: 'staging' });
    await sys.deliver(job, 'production');
    await sys.deliver(job, 'staging');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const tags = tagsPurged(sys.cf);
    assert.ok(tags.has(`cs-${prod.uid}-v3`) && tags.has(`stg-${stg.uid}`));
    assert.ok(!tags.has(`stg-${prod.uid}`) && !tags.has(`cs-${stg.uid}-v3`));
    assert.equal(rec.references.by_environment.production.referrers, 1);
    assert.equal(rec.references.by_environment.staging.referrers, 1);
  });
});
