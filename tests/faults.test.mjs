// Fault injection (issue: reliability): Contentstack and Cloudflare misbehaving in every way the
// real ones can, the consumer failing mid-job, concurrent and interleaved deliveries. Every
// scenario ends with every accepted job done/partial/failed and every KV key that should be gone,
// gone — with counts that prove nothing was counted twice. Writes test-output/reliability.json.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { kvKeyOf, seedKeys } from '../devkit/harness/kv.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';

const ADMIN = 'faults-admin-token';
const RULES = {
  production: {
    zone_id: 'zone-faults',
    kv_binding: 'CONTENT_KV',
    entry: { kv_keys: ['{environment}:{locale}:entry:{uid}'], tags: ['cs-{uid}'] },
    asset: { kv_keys: ['{environment}:asset:{uid}'], tags: ['cs-{uid}'] },
  },
};
const observed = [];
const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
  fs.mkdirSync('test-output', { recursive: true });
  fs.writeFileSync('test-output/reliability.json', JSON.stringify(observed, null, 2));
});

async function setup(vars = {}) {
  const sys = await startSystem({
    rules: RULES,
    adminToken: ADMIN,
    vars: { QUEUE_MAX_ATTEMPTS: 5, RETRY_BASE_SECONDS: 0, HTTP_TIMEOUT_MS: 800, ...vars },
  });
  closers.push(() => sys.close());
  return sys;
}

// The rules' keys: '{environment}:{locale}:entry:{uid}' (no content type) and '{environment}:asset:{uid}'.
const keyOf = (it) => kvKeyOf('production', it, { contentType: false });
const success = (job) => job.items.filter((i) => i.publish_details.status === 'success');

async function seed(w, job) {
  const kv = await w.kv();
  await seedKeys(kv, job.items.map(keyOf), { value: 'v' });
  await kv.put('unrelated:key', 'v');
  return kv;
}

const deliver = (ctx, job) => ctx.deliver(job, 'production', { expect: null });

/** Asserts the job's outcome and that exactly its successful items' keys are gone. */
async function verify(ctx, job, kv, { status = 'done' } = {}) {
  const rec = await waitForFinal(ctx.w, job.jobId, { token: ADMIN, timeoutMs: 180000 });
  assert.equal(rec.status, status, JSON.stringify(rec.errors));
  const gone = new Set(success(job).map(keyOf));
  for (const it of job.items) {
    const k = keyOf(it);
    assert.equal((await kv.get(k)) === null, gone.has(k), `${k}: ${gone.has(k) ? 'should be gone' : 'should remain'}`);
  }
  assert.equal(await kv.get('unrelated:key'), 'v');
  if (status === 'done') {
    // Exact counts: nothing counted twice even when steps ran more than once.
    assert.equal(rec.purged.kv_keys, gone.size, 'KV keys counted once');
    const tags = new Set(success(job).map((i) => `cs-${i.uid}`));
    assert.equal(rec.purged.tags, tags.size, 'tags counted once');
    const sent = new Set(ctx.cf.purges.filter((p) => p.status === 200 && p.mode === 'tags').flatMap((p) => p.items));
    for (const t of tags) assert.ok(sent.has(t), `tag ${t} never purged`);
  }
  return rec;
}

function record(scenario, expected, rec, extra = '') {
  observed.push({ scenario, expected, observed: `${rec.status}; ${rec.purged.kv_keys} KV keys, ${rec.purged.tags} tags, ${rec.purged.api_calls} purge calls${extra ? '; ' + extra : ''}` });
}

describe('Contentstack faults', () => {
  test('a burst of 5xx answers on the job items', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 150, assets: 20, failedEvery: 11 });
    const kv = await seed(ctx.w, job);
    ctx.cs.fault({ path: '/items', status: 503, times: 3 });
    ctx.cs.fault({ path: '/items', status: 502, times: 2 });
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv);
    assert.ok(ctx.cs.statusCounts('/items')['503'] === 3);
    record('Contentstack 5xx burst (5 answers) on job items', 'done, every key gone', rec);
  });

  test('429 without Retry-After', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 30 });
    const kv = await seed(ctx.w, job);
    ctx.cs.fault({ path: '/v3/', status: 429, times: 4 });
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv);
    record('Contentstack 429 without Retry-After (4 answers)', 'done, backoff applied', rec);
  });

  test('slow answers past the client timeout', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 20 });
    const kv = await seed(ctx.w, job);
    ctx.cs.fault({ path: '/items', delayMs: 2500, times: 2 });
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv);
    const items = ctx.cs.requests.filter((r) => r.path.endsWith('/items'));
    assert.ok(items.length >= 3, 'the slow calls were abandoned and retried');
    record('Contentstack answers slower than HTTP_TIMEOUT_MS (2 answers)', 'done, timed-out calls retried', rec);
  });

  test('malformed JSON answers', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 20 });
    const kv = await seed(ctx.w, job);
    ctx.cs.fault({ path: '/items', body: '{"items": [ {"uid": ', times: 2 });
    ctx.cs.fault({ path: `/v3/bulk/jobs/${job.jobId}`, body: 'not json at all', times: 1 });
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv);
    record('Contentstack 200 with malformed JSON (3 answers)', 'done, malformed answers retried', rec);
  });

  test('total_count that disagrees with the pages (too low, then too high)', async () => {
    for (const override of [40, 5000]) {
      const ctx = await setup();
      const job = addJob(ctx.stack, { entries: 230 });
      const kv = await seed(ctx.w, job);
      ctx.cs.fault({ path: '/items', totalCountOverride: override, times: 100 });
      assert.equal((await deliver(ctx, job)).status, 202);
      const rec = await verify(ctx, job, kv);
      record(`total_count ${override} for a 230-item job`, 'done, every page read until a short page', rec);
    }
  });

  test('Contentstack down for good: failed, dead-lettered, on_failure sent', async () => {
    const ctx = await setup({
      QUEUE_MAX_ATTEMPTS: 2,
      ENVIRONMENTS: JSON.stringify({ production: { ...RULES.production, on_failure: ['tag:cs-production-all', 'kv_prefix:production:'] } }),
    });
    const job = addJob(ctx.stack, { entries: 5 });
    const kv = await seed(ctx.w, job);
    ctx.cs.fault({ path: '/v3/bulk/jobs/', status: 500, times: 10000 });
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await waitForFinal(ctx.w, job.jobId, { token: ADMIN, timeoutMs: 180000 });
    assert.equal(rec.status, 'failed');
    for (const it of job.items) assert.equal(await kv.get(keyOf(it)), null, 'on_failure swept the environment');
    assert.equal(await kv.get('unrelated:key'), 'v');
    assert.ok(ctx.cf.purges.some((p) => p.mode === 'tags' && p.items.includes('cs-production-all')));
    record('Contentstack answering 500 for good', 'failed, dead-lettered, on_failure purge sent', rec, rec.errors[0]?.slice(0, 60));
  });
});

describe('Cloudflare faults', () => {
  test('429, 5xx and a purge call that keeps failing past the in-invocation retries', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 70, assets: 10 });
    const kv = await seed(ctx.w, job);
    ctx.cf.fault({ path: '/purge_cache', status: 429, times: 2 });
    ctx.cf.fault({ path: '/purge_cache', status: 502, times: 8 }); // exhausts one invocation's 5 tries
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv);
    assert.ok(ctx.w.events('step_failed').some((e) => e.job_id === job.jobId), 'a step failed and was redelivered');
    record('Cloudflare 429 ×2 then 502 ×8 (a step fails and is redelivered)', 'done, exact counts', rec);
  });

  test('success:false makes the job partial', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 40 });
    const kv = await seed(ctx.w, job);
    ctx.cf.fault({ path: '/purge_cache', successFalse: true, times: 1 });
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv, { status: 'partial' });
    assert.ok(rec.errors.length > 0);
    record('Cloudflare success:false on one purge call', 'partial, error recorded, KV still cleared', rec);
  });
});

describe('the consumer failing mid-job', () => {
  test('a collect step dies after some pages: the retried step resumes at that page, nothing counted twice', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 350 });
    const kv = await seed(ctx.w, job);
    ctx.cs.fault({ path: /items\?.*skip=200/, status: 500, times: 5 }); // page 3 fails for a whole invocation
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv);
    assert.ok(ctx.w.events('step_failed').some((e) => e.job_id === job.jobId));
    assert.equal(ctx.cs.countsBy(/items\?.*skip=0/), 1, 'pages already stored are not read again');
    assert.ok(ctx.cs.countsBy(/items\?.*skip=200/) >= 6, 'the failing page was tried again in a later invocation');
    record('collect step fails after 2 of 4 pages (5 × 500)', 'done, resumed at the failing page (the ledger keeps the next page), nothing counted twice', rec);
  });

  test('a drain step dies mid-way (KV done, purge calls failing): resumes without redoing finished actions', async () => {
    const ctx = await setup({ PURGE_BATCH_SIZE: 10 });
    const job = addJob(ctx.stack, { entries: 60 });
    const kv = await seed(ctx.w, job);
    ctx.cf.fault({ path: '/purge_cache', status: 500, times: 5 });
    assert.equal((await deliver(ctx, job)).status, 202);
    const rec = await verify(ctx, job, kv);
    const ok = ctx.cf.purges.filter((p) => p.status === 200);
    assert.equal(ok.length, Math.ceil(60 / 10), 'each batch sent successfully exactly once');
    record('drain step fails after KV deletes (purge API 5 × 500)', 'done, each purge batch succeeded once', rec);
  });
});

describe('concurrency', () => {
  test('20 concurrent identical deliveries: one accepted, one job', async () => {
    const ctx = await setup();
    const job = addJob(ctx.stack, { entries: 10 });
    const kv = await seed(ctx.w, job);
    const results = await Promise.all(Array.from({ length: 20 }, () => deliver(ctx, job)));
    const statuses = results.map((r) => r.json.status).sort();
    assert.deepEqual(statuses, ['accepted', ...Array(19).fill('duplicate')]);
    const rec = await verify(ctx, job, kv);
    assert.equal(rec.attempts, 1);
    record('20 concurrent identical deliveries', '1 accepted, 19 duplicate, done once', rec);
  });

  test('deliveries for two jobs interleaved, with faults on both APIs', async () => {
    const ctx = await setup();
    const a = addJob(ctx.stack, { entries: 120, failedEvery: 7 });
    const b = addJob(ctx.stack, { entries: 90, assets: 15 });
    const kvA = await seed(ctx.w, a);
    await seed(ctx.w, b);
    ctx.cs.fault({ path: '/items', status: 503, times: 3 });
    ctx.cf.fault({ path: '/purge_cache', status: 429, retryAfter: 1, times: 2 });
    const [ra, rb, ra2, rb2] = await Promise.all([deliver(ctx, a), deliver(ctx, b), deliver(ctx, a), deliver(ctx, b)]);
    assert.deepEqual([ra, rb, ra2, rb2].map((r) => r.json.status).sort(), ['accepted', 'accepted', 'duplicate', 'duplicate']);
    const recA = await verify(ctx, a, kvA);
    const recB = await verify(ctx, b, kvA);
    record('two jobs interleaved (each delivered twice) with faults', 'both done, each once', recA, `second job: ${recB.status}, ${recB.purged.kv_keys} KV keys`);
  });

  test('six jobs at once: their steps share invocations, each within its share of the budget', async () => {
    const ctx = await setup({ SUBREQUEST_BUDGET: 600, SERVICE_OPS_BUDGET: 600 });
    const jobs = Array.from({ length: 6 }, () => addJob(ctx.stack, { entries: 140, assets: 10 }));
    const kvs = [];
    for (const j of jobs) kvs.push(await seed(ctx.w, j));
    const answers = await Promise.all(jobs.map((j) => deliver(ctx, j)));
    assert.deepEqual(answers.map((r) => r.json.status), Array(6).fill('accepted'));
    const recs = [];
    for (const [i, j] of jobs.entries()) recs.push(await verify(ctx, j, kvs[i]));
    const lines = ctx.w.events('invocation').filter((e) => jobs.some((j) => j.jobId === e.job_id));
    // The scenario happened: some steps ran with a share of the budget (a batch of several).
    const shared = lines.filter((e) => e.budget[0] < 600);
    assert.ok(shared.length > 0, 'no step ran with a share of the budget');
    assert.ok(shared.every((e) => e.budget[0] >= 90 && e.budget[1] >= 90), JSON.stringify(shared.map((e) => e.budget)));
    for (const e of lines) {
      assert.ok(e.fetch <= e.budget[0] && e.service_ops <= e.budget[1], `over its share: ${JSON.stringify(e)}`);
    }
    // Each job's tags were purged exactly once, and nothing was counted twice.
    for (const [i, j] of jobs.entries()) {
      const tags = new Set(success(j).map((it) => `cs-${it.uid}`));
      const sent = ctx.cf.purges.filter((p) => p.status === 200 && p.mode === 'tags').flatMap((p) => p.items).filter((t) => tags.has(t));
      assert.equal(sent.length, tags.size, `job ${i}: each tag once`);
      assert.equal(recs[i].purged.tags, tags.size);
    }
    record('six jobs at once (steps share invocations)', 'all done, each step within its share, each tag purged once', recs[0], `${shared.length} of ${lines.length} steps ran with a share`);
  });
});
