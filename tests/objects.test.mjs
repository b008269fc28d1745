// One job, one object (docs/ARCHITECTURE.md, "Where state lives"): many jobs delivered at once
// each run in the Durable Object named by their job id, the index hears of each job only a few
// times (accepted, processing, final), and the list shows every job, newest first, with its
// final record. Deliveries of the same job racing each other still make one job.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { listJobs, waitFor, waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { KV_ONLY_RULES, kvKeyOf, seedKeys } from '../devkit/harness/kv.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';

const ADMIN = 'objects-admin-token';
const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** Sends one operation to the job object named `name`, as the Worker does; its parsed answer. */
async function askObject(w, name, op) {
  const ns = await w.mf.getDurableObjectNamespace('JOB_OBJECTS');
  const stub = ns.get(ns.idFromName(name));
  const r = await stub.fetch('https://ledger/op', { method: 'POST', body: JSON.stringify(op) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

describe('one object per job', () => {
  test('jobs delivered at once each run in their own object, and the index hears of each a few times', async () => {
    const sys = await startSystem({ rules: KV_ONLY_RULES, adminToken: ADMIN, vars: { QUEUE_MAX_ATTEMPTS: 5, RETRY_BASE_SECONDS: 0 } });
    closers.push(() => sys.close());
    const { w, stack } = sys;
    const kv = await w.kv();

    // Four jobs past one item page (100), twenty small ones.
    const jobs = [
      ...Array.from({ length: 4 }, () => addJob(stack, { entries: 130 })),
      ...Array.from({ length: 20 }, () => addJob(stack, { entries: 3, assets: 1 })),
    ];
    const keys = jobs.flatMap((j) => j.items.map((it) => kvKeyOf('production', it)));
    await seedKeys(kv, keys);

    // Every job delivered at once, and the first four twice more, racing.
    const deliveries = [...jobs, ...jobs.slice(0, 4), ...jobs.slice(0, 4)];
    const answers = await Promise.all(deliveries.map((j) => sys.deliver(j, 'production', { expect: null })));
    const accepted = answers.filter((a) => a.status === 202).length;
    const duplicates = answers.filter((a) => a.status === 200 && a.json.status === 'duplicate').length;
    assert.equal(accepted, jobs.length, 'one delivery of each job accepted');
    assert.equal(duplicates, 8, 'the racing copies are duplicates');

    for (const j of jobs) {
      const rec = await waitForFinal(w, j.jobId, { token: ADMIN, timeoutMs: 120000 });
      assert.equal(rec.status, 'done', `${j.jobId}: ${JSON.stringify(rec.errors)}`);
      assert.equal(rec.attempts, 1);
      assert.equal(rec.purged.kv_keys, j.items.length, `${j.jobId} purged exactly its own keys`);
    }
    const left = (await kv.list({ limit: 1000 })).keys.filter((k) => keys.includes(k.name));
    assert.deepEqual(left, [], 'every job key is gone');

    // Each record lives in the object named by its job id, and only there.
    for (const j of jobs) {
      const own = await askObject(w, j.jobId, { get: { job_id: j.jobId } });
      assert.equal(own?.job_id, j.jobId, `the object named ${j.jobId} holds its record`);
    }
    const other = await askObject(w, jobs[1].jobId, { get: { job_id: jobs[0].jobId } });
    assert.equal(other, null, "one job's object knows nothing of another job");

    // The index heard of each job at least once and at most three times (accepted, processing,
    // final), and lists them all, newest first, final.
    await waitFor(async () => (await listJobs(w, ADMIN)).every((r) => r.status === 'done'), { what: 'the list to show every job done' });
    const told = new Map();
    for (const e of w.events('index_told')) told.set(e.job_id, (told.get(e.job_id) ?? 0) + 1);
    for (const j of jobs) {
      const n = told.get(j.jobId) ?? 0;
      assert.ok(n >= 1 && n <= 3, `${j.jobId}: the index was told ${n} times`);
    }
    const listed = await listJobs(w, ADMIN, { limit: 7 });
    assert.deepEqual(new Set(listed.map((r) => r.job_id)), new Set(jobs.map((j) => j.jobId)));
    assert.equal(listed.length, jobs.length, 'each job listed once across pages');

    // Newest first: two more jobs, one after the other.
    const [a, b] = [addJob(stack, { entries: 1 }), addJob(stack, { entries: 1 })];
    await sys.deliver(a, 'production');
    await waitFor(async () => (await listJobs(w, ADMIN)).some((r) => r.job_id === a.jobId), { what: 'the index to list the first' });
    await sys.deliver(b, 'production');
    await waitFor(async () => (await listJobs(w, ADMIN)).some((r) => r.job_id === b.jobId), { what: 'the index to list the second' });
    const top = (await listJobs(w, ADMIN)).slice(0, 2).map((r) => r.job_id);
    assert.deepEqual(top, [b.jobId, a.jobId], 'newest first');
  });
});
