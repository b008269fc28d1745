// Admin API (SPEC §2): replay is idempotent and counted; the dry-run planner touches nothing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal, getJob } from './helpers/worker.mjs';
import { startSystem } from './helpers/system.mjs';
import { addJob } from './fakes/stack.mjs';
import { jobPayload } from './helpers/sign.mjs';

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

  const keyOf = (it) => (it.type === 'entry' ? `production:${it.publish_locale}:entry:${it.content_type.uid}:${it.uid}` : `production:asset:${it.uid}`);

  const deliver = (job) => sys.deliver(job, 'production');

  test('replay runs the purge again, counts the attempt, and is harmless', async () => {
    const job = addJob(stack, { environments: ['production'], entries: 4, assets: 2, failedEvery: 5 });
    const kv = await w.kv();
    const keys = job.items.map(keyOf);
    await Promise.all(keys.map((k) => kv.put(k, 'v')));
    await deliver(job);
    const first = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.equal(first.status, 'done');
    const purgesAfterFirst = cf.purges.length;
    assert.ok(purgesAfterFirst > 0);

    // The cache was refilled since: a replay must clear it again.
    await Promise.all(keys.map((k) => kv.put(k, 'v')));
    const r = await w.fetch(`/api/jobs/${job.jobId}/replay`, { method: 'POST', headers: auth });
    assert.equal(r.status, 202);
    const body = await r.json();
    assert.equal(body.attempt, 2);
    const second = await waitFor2(job.jobId);
    assert.equal(second.status, 'done');
    assert.equal(second.attempts, 2);
    assert.equal(second.history.length, 1);
    assert.equal(second.history[0].status, 'done');
    assert.deepEqual(second.purged.kv_keys, first.purged.kv_keys, 'the same work, counted once per attempt');
    const successKeys = new Set(job.items.filter((i) => i.publish_details.status === 'success').map(keyOf));
    for (const k of keys) assert.equal((await kv.get(k)) === null, successKeys.has(k), k);
    assert.equal(cf.purges.length, purgesAfterFirst * 2, 'the purge calls were sent again');
    // Still one job in the list.
    const list = await (await w.fetch('/api/jobs?limit=200', { headers: auth })).json();
    assert.equal(list.jobs.filter((j) => j.job_id === job.jobId).length, 1);
  });

  async function waitFor2(jobId) {
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      const j = await getJob(w, jobId, ADMIN);
      if (j.attempts === 2 && ['done', 'partial', 'failed'].includes(j.status)) return j;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('replay did not finish');
  }

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
    await Promise.all(keys.map((k) => kv.put(k, 'v')));
    const jobsBefore = (await (await w.fetch('/api/jobs?limit=200', { headers: auth })).json()).jobs.length;
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
    const jobsAfter = (await (await w.fetch('/api/jobs?limit=200', { headers: auth })).json()).jobs.length;
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
    const all = (await (await w.fetch('/api/jobs?limit=200', { headers: auth })).json()).jobs;
    const seen = [];
    let cursor = null;
    do {
      const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await (await w.fetch(`/api/jobs?limit=2${q}`, { headers: auth })).json();
      assert.ok(page.jobs.length <= 2);
      seen.push(...page.jobs.map((j) => j.job_id));
      cursor = page.cursor;
    } while (cursor);
    assert.deepEqual(seen, all.map((j) => j.job_id));
    const times = all.map((j) => j.received_at);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    assert.equal((await w.fetch('/api/jobs?limit=0', { headers: auth })).status, 400);
    assert.equal((await w.fetch('/api/jobs?cursor=abc', { headers: auth })).status, 400);
  });
});
