// Webhook health and missed jobs (docs/CONTRACT.md, "Webhook health"): the cron trigger's
// scheduled handler, driven from the test, reads the fake Management API's webhooks and their
// executions, reports a webhook Contentstack disabled, and takes in the job deliveries that
// failed and that the ledger does not know (`source: "recovered"`), through the same pipeline
// as a webhook. Jobs already known are left alone; nothing is changed in Contentstack.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal, listJobs, getJob } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { makeStack, addJob, addWebhook, addExecution } from '../devkit/fakes/stack.mjs';
import { jobPayload } from '../devkit/harness/sign.mjs';

const ADMIN = 'health-admin-token';
const ZONE = 'zone0health000000000000000000000';
const RULES = {
  production: { zone_id: ZONE, entry: { tags: ['cs-{environment}-{uid}'] }, asset: { tags: ['cs-{environment}-{uid}'] } },
  staging: { zone_id: ZONE, entry: { tags: ['cs-{environment}-{uid}'] } },
};
const HOOK_URL = 'https://purge.example.com/webhooks/contentstack';
const MINUTE = 60_000;

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup({ vars = {}, stacks } = {}) {
  const sys = await startSystem({
    rules: RULES,
    adminToken: ADMIN,
    ...(stacks ? { stacks } : { stack: makeStack({ contentTypes: ['page'] }) }),
    vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, ...vars },
  });
  closers.push(() => sys.close());
  return sys;
}

async function health(sys, token = ADMIN) {
  const r = await sys.w.fetch('/api/health', { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: r.status, json: await r.json() };
}

/** A failed delivery of `job` to `environment` `minutesAgo` minutes ago. */
function failedDelivery(stack, hook, job, environment, { minutesAgo = 30, status = 500 } = {}) {
  const payload = jobPayload({ jobId: job.jobId, action: job.action, environment, apiKey: stack.apiKey, triggeredAt: new Date(Date.now() - minutesAgo * MINUTE).toISOString() });
  return addExecution(stack, hook.uid, { createdAt: Date.now() - minutesAgo * MINUTE, status, payload, retryCount: 4 });
}

const executionCalls = (cs) => cs.requests.filter((r) => r.path.includes('/executions'));

describe('webhook health', () => {
  test('/api/health needs the admin token and says when nothing was checked yet', async () => {
    const sys = await setup();
    assert.equal((await health(sys, null)).status, 401);
    assert.equal((await health(sys, 'wrong-token')).status, 401);
    const h = await health(sys);
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { checked_at: null, error: null, webhooks: [], recovered: [] });
    const post = await sys.w.fetch('/api/health', { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(post.status, 405);
  });

  test('a disabled webhook is reported and failed deliveries of unknown jobs are recovered once', async () => {
    const sys = await setup();
    const { stack, cs, w } = sys;
    const hook = addWebhook(stack, { name: 'Edge purge', targetUrl: HOOK_URL, disabled: true, unhealthy: true });
    const other = addWebhook(stack, { name: 'Search indexer', targetUrl: 'https://search.example.com/hook' });
    const known = addJob(stack, { entries: 2, environments: ['production'] });
    const lost1 = addJob(stack, { entries: 3, environments: ['production'] });
    const lost2 = addJob(stack, { action: 'publish', entries: 1, environments: ['staging'] });
    // The known job arrived (and finished) before the webhook broke.
    await sys.deliver(known, 'production');
    const knownBefore = await waitForFinal(w, known.jobId, { token: ADMIN });
    failedDelivery(stack, hook, known, 'production', { minutesAgo: 50 });
    failedDelivery(stack, hook, lost1, 'production', { minutesAgo: 40, status: 401 });
    failedDelivery(stack, hook, lost2, 'staging', { minutesAgo: 20, status: null });
    addExecution(stack, hook.uid, { createdAt: Date.now() - 10 * MINUTE, status: 200, payload: jobPayload({ jobId: known.jobId, environment: 'production', apiKey: stack.apiKey }) });
    addExecution(stack, other.uid, { createdAt: Date.now() - 5 * MINUTE, status: 500, payload: jobPayload({ jobId: 'not-ours-0000', environment: 'production', apiKey: stack.apiKey }) });

    await w.scheduled();
    // The check read the stack's webhooks and only our webhook's executions.
    assert.ok(cs.requests.some((r) => r.path === '/v3/webhooks'), 'webhooks listed');
    const calls = executionCalls(cs);
    assert.ok(calls.length >= 1 && calls.every((r) => r.path.includes(hook.uid)), 'only the webhook that delivers here');
    const from = Date.parse(calls[0].query.from);
    assert.ok(Math.abs(Date.now() - 24 * 60 * MINUTE - from) < 5 * MINUTE, 'the first check looks back 24 hours');

    const h = (await health(sys)).json;
    assert.ok(h.checked_at && !Number.isNaN(Date.parse(h.checked_at)));
    assert.equal(h.error, null);
    assert.equal(h.webhooks.length, 1);
    const wh = h.webhooks[0];
    assert.deepEqual(
      { api_key: wh.api_key, uid: wh.uid, name: wh.name, disabled: wh.disabled, unhealthy: wh.unhealthy },
      { api_key: stack.apiKey, uid: hook.uid, name: 'Edge purge', disabled: true, unhealthy: true },
    );
    assert.equal(wh.failed_executions, 3);
    assert.ok(Math.abs(Date.parse(wh.last_failure_at) - (Date.now() - 20 * MINUTE)) < MINUTE, 'the latest failure');
    const rec = h.recovered.map((r) => [r.job_id, r.environment]).sort();
    assert.deepEqual(rec, [[lost1.jobId, 'production'], [lost2.jobId, 'staging']].sort());
    for (const r of h.recovered) assert.ok(!Number.isNaN(Date.parse(r.at)));

    // The recovered jobs run through the pipeline like any delivery.
    for (const job of [lost1, lost2]) {
      const r = await waitForFinal(w, job.jobId, { token: ADMIN });
      assert.equal(r.status, 'done');
      assert.equal(r.source, 'recovered');
      assert.ok(r.purged.tags > 0);
    }
    const knownAfter = await getJob(w, known.jobId, ADMIN);
    assert.equal(knownAfter.attempts, 1, 'a known job is left alone');
    assert.equal(knownAfter.source, 'webhook');
    assert.equal(knownAfter.finished_at, knownBefore.finished_at);

    // Nothing was changed in Contentstack.
    assert.ok(cs.requests.every((r) => r.method === 'GET'), 'only reads');

    // A second check recovers nothing new and reads from where the first ended.
    const jobsBefore = (await listJobs(w, ADMIN)).length;
    const callsBefore = executionCalls(cs).length;
    await w.scheduled();
    const h2 = (await health(sys)).json;
    assert.deepEqual(h2.recovered, []);
    assert.equal((await listJobs(w, ADMIN)).length, jobsBefore);
    const next = executionCalls(cs)[callsBefore];
    assert.ok(Date.parse(next.query.from) > Date.now() - 10 * MINUTE, 'the window starts at the last check (less a few minutes)');
    assert.equal(h2.webhooks[0].last_failure_at, wh.last_failure_at, 'the last failure is kept');
  });

  test('one job, two environments: a failed delivery for the other environment is recovered', async () => {
    const sys = await setup();
    const { stack, w } = sys;
    const hook = addWebhook(stack, { targetUrl: HOOK_URL });
    const job = addJob(stack, { entries: 2, environments: ['production', 'staging'] });
    await sys.deliver(job, 'production');
    await waitForFinal(w, job.jobId, { token: ADMIN });
    failedDelivery(stack, hook, job, 'production', { minutesAgo: 3 });
    failedDelivery(stack, hook, job, 'staging', { minutesAgo: 2 });
    await w.scheduled();
    const h = (await health(sys)).json;
    assert.deepEqual(h.recovered.map((r) => [r.job_id, r.environment]), [[job.jobId, 'staging']]);
    assert.equal(h.webhooks[0].disabled, false);
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.deepEqual([...rec.environments].sort(), ['production', 'staging']);
    assert.ok(rec.purged_by_environment.staging.tags > 0, 'staging purged');
  });

  test('hundreds of executions are read page by page', async () => {
    const sys = await setup();
    const { stack, cs, w } = sys;
    const hook = addWebhook(stack, { targetUrl: HOOK_URL, unhealthy: true });
    const ok = addJob(stack, { entries: 1, environments: ['production'] });
    for (let i = 0; i < 230; i++) {
      addExecution(stack, hook.uid, { createdAt: Date.now() - (i + 1) * 1000, status: 200, payload: jobPayload({ jobId: ok.jobId, environment: 'production', apiKey: stack.apiKey }) });
    }
    const lost = addJob(stack, { entries: 1, environments: ['production'] });
    failedDelivery(stack, hook, lost, 'production', { minutesAgo: 60 * 5 });
    await w.scheduled();
    const pages = executionCalls(cs);
    assert.equal(pages.length, 3, '231 executions: three pages of 100');
    assert.deepEqual(pages.map((p) => Number(p.query.skip)), [0, 100, 200]);
    const h = (await health(sys)).json;
    assert.deepEqual(h.recovered.map((r) => r.job_id), [lost.jobId]);
    assert.equal(h.webhooks[0].unhealthy, true);
    assert.equal(h.webhooks[0].failed_executions, 1);
    await waitForFinal(w, lost.jobId, { token: ADMIN });
  });

  test('PUBLIC_URL picks the webhooks by destination; a refused token is the check\'s error', async () => {
    const sys = await setup({ vars: { PUBLIC_URL: 'https://edge.example.net' } });
    const { stack, cs, w } = sys;
    const mine = addWebhook(stack, { name: 'mine', targetUrl: 'https://edge.example.net/webhooks/contentstack' });
    addWebhook(stack, { name: 'a staging worker', targetUrl: 'https://purge-staging.example.net/webhooks/contentstack' });
    await w.scheduled();
    const h = (await health(sys)).json;
    assert.deepEqual(h.webhooks.map((x) => x.name), ['mine']);
    assert.equal(h.webhooks[0].uid, mine.uid);
    // Now the token loses access: the error is reported, the webhooks stay as last seen.
    cs.fault({ path: '/v3/webhooks', status: 401, times: 50 });
    await w.scheduled();
    const h2 = (await health(sys)).json;
    assert.ok(cs.requests.some((r) => r.path === '/v3/webhooks' && r.fault), 'the fault fired');
    assert.match(h2.error, /HTTP 401/);
    assert.ok(!h2.error.includes(stack.token), 'no secret in the error');
    assert.deepEqual(h2.webhooks.map((x) => x.name), ['mine']);
    assert.notEqual(h2.checked_at, h.checked_at);
  });

  test('every stack with a token is checked', async () => {
    const a = makeStack({ apiKey: 'blt_stack_a', token: 'cs_token_a', contentTypes: ['page'] });
    const b = makeStack({ apiKey: 'blt_stack_b', token: 'cs_token_b', contentTypes: ['page'] });
    const sys = await setup({ stacks: [a, b] });
    const ha = addWebhook(a, { name: 'A', targetUrl: HOOK_URL, disabled: true, unhealthy: true });
    const hb = addWebhook(b, { name: 'B', targetUrl: HOOK_URL });
    const lostB = addJob(b, { entries: 1, environments: ['production'] });
    failedDelivery(b, hb, lostB, 'production', { minutesAgo: 7 });
    await sys.w.scheduled();
    const h = (await health(sys)).json;
    assert.deepEqual(h.webhooks.map((x) => [x.api_key, x.uid, x.disabled]).sort(), [['blt_stack_a', ha.uid, true], ['blt_stack_b', hb.uid, false]]);
    assert.deepEqual(h.recovered.map((r) => [r.api_key, r.job_id]), [['blt_stack_b', lostB.jobId]]);
    const rec = await waitForFinal(sys.w, lostB.jobId, { token: ADMIN });
    assert.equal(rec.api_key, 'blt_stack_b');
    assert.equal(rec.source, 'recovered');
  });
});
