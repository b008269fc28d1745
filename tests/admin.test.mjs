// Admin API (docs/CONTRACT.md, "Endpoints"): replay is idempotent and counted; the dry-run planner touches nothing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal, waitForJob, getJob, listJobs, isFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { kvKeyOf, seedKeys } from '../devkit/harness/kv.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';
import { jobPayload } from '../devkit/harness/sign.mjs';

const ADMIN = 'admin-api-token-42';
const RULES = {
  production: {
    zone_id: 'zone-prod',
    kv_binding: 'CONTENT_KV',
    entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'], tags: ['cs-{environment}-{uid}'] },
    asset: { kv_keys: ['{environment}:asset:{uid}'], urls: ['{url}'] },
  },
};

describe('admin API', () => {
  let stack, cs, cf, w;
  const auth = { authorization: `Bearer ${ADMIN}` };

  let sys;
  before(async () => {
    sys = await startSystem({ rules: RULES, adminToken: ADMIN });
    ({ stack, cs, cf, w } = sys);
  });
  after(async () => sys?.close());

  const keyOf = (it) => kvKeyOf('production', it);

  const deliver = (job) => sys.deliver(job, 'production');

  test('replay runs the purge again, counts the attempt, and is harmless', async () => {
    const job = addJob(stack, { environments: ['production'], entries: 4, assets: 2, failedEvery: 5 });
    const kv = await w.kv();
    const keys = job.items.map(keyOf);
    await seedKeys(kv, keys, { value: 'v' });
    await deliver(job);
    const first = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.equal(first.status, 'done');
    const purgesAfterFirst = cf.purges.length;
    assert.ok(purgesAfterFirst > 0);

    // The cache was refilled since: a replay must clear it again.
    await seedKeys(kv, keys, { value: 'v' });
    const r = await w.fetch(`/api/jobs/${job.jobId}/replay`, { method: 'POST', headers: auth });
    assert.equal(r.status, 202);
    const body = await r.json();
    assert.equal(body.attempt, 2);
    const second = await waitForJob(w, job.jobId, (j) => isFinal(j) && j.attempts === 2, { token: ADMIN, what: 'the replay to finish' });
    assert.equal(second.status, 'done');
    assert.equal(second.attempts, 2);
    assert.equal(second.history.length, 1);
    assert.equal(second.history[0].status, 'done');
    assert.deepEqual(second.purged.kv_keys, first.purged.kv_keys, 'the same work, counted once per attempt');
    const successKeys = new Set(job.items.filter((i) => i.publish_details.status === 'success').map(keyOf));
    for (const k of keys) assert.equal((await kv.get(k)) === null, successKeys.has(k), k);
    assert.equal(cf.purges.length, purgesAfterFirst * 2, 'the purge calls were sent again');
    // Still one job in the list.
    const list = await listJobs(w, ADMIN);
    assert.equal(list.filter((j) => j.job_id === job.jobId).length, 1);
  });

  test('replay of an unknown job is 404; wrong methods are 405', async () => {
    const r = await w.fetch('/api/jobs/nope/replay', { method: 'POST', headers: auth });
    assert.equal(r.status, 404);
    const m = await w.fetch('/api/jobs/nope/replay', { method: 'GET', headers: auth });
    assert.equal(m.status, 405);
    const p = await w.fetch('/api/plan', { method: 'GET', headers: auth });
    assert.equal(p.status, 405);
  });

  test('dry run by job id or by payload returns the plan and touches nothing', async () => {
    const job = addJob(stack, { environments: ['production'], locales: ['en-us', 'fr-fr'], entries: 3, assets: 1, failedEvery: 4 });
    const kv = await w.kv();
    const keys = job.items.map(keyOf);
    await seedKeys(kv, keys, { value: 'v' });
    const jobsBefore = (await listJobs(w, ADMIN)).length;
    const purgesBefore = cf.purges.length;

    const byId = await w.fetch('/api/plan', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ job_id: job.jobId }) });
    assert.equal(byId.status, 200);
    const plan = await byId.json();
    const expected = new Set(job.items.filter((i) => i.publish_details.status === 'success').map(keyOf));
    assert.deepEqual(new Set(plan.plan.environments.production.kv_keys), expected);
    const expectedTags = new Set(job.items.filter((i) => i.type === 'entry' && i.publish_details.status === 'success').map((i) => `cs-production-${i.uid}`));
    assert.deepEqual(new Set(plan.plan.environments.production.tags), expectedTags);
    assert.deepEqual(plan.environments, ['production']);
    assert.equal(plan.truncated, false);
    assert.ok(plan.actions >= expected.size);

    const payload = JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey }));
    const byPayload = await w.fetch('/api/plan', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: payload });
    assert.equal(byPayload.status, 200);
    assert.deepEqual((await byPayload.json()).plan, plan.plan, 'the same plan either way (deterministic)');

    await new Promise((r) => setTimeout(r, 300));
    for (const k of keys) assert.equal(await kv.get(k), 'v', `${k} was touched`);
    assert.equal(cf.purges.length, purgesBefore, 'a purge call was sent');
    const jobsAfter = (await listJobs(w, ADMIN)).length;
    assert.equal(jobsAfter, jobsBefore, 'a ledger record was added');
    assert.equal(await getJob(w, job.jobId, ADMIN), null);

    const bad = await w.fetch('/api/plan', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"hello":1}' });
    assert.equal(bad.status, 400);
    const notJson = await w.fetch('/api/plan', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{' });
    assert.equal(notJson.status, 400);
    assert.equal((await notJson.json()).error, 'invalid_json');
  });

  test('the job list pages with a cursor, newest first', async () => {
    for (let i = 0; i < 3; i++) {
      const job = addJob(stack, { environments: ['production'], entries: 1 });
      await deliver(job);
    }
    const all = await listJobs(w, ADMIN);
    const seen = (await listJobs(w, ADMIN, { limit: 2, onPage: (page) => assert.ok(page.jobs.length <= 2) })).map((j) => j.job_id);
    assert.deepEqual(seen, all.map((j) => j.job_id));
    const times = all.map((j) => j.received_at);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    assert.equal((await w.fetch('/api/jobs?limit=0', { headers: auth })).status, 400);
    assert.equal((await w.fetch('/api/jobs?cursor=abc', { headers: auth })).status, 400);
  });
});
