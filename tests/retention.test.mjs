// Retention (docs/CONTRACT.md, "No job left behind"): a finished job is kept
// LEDGER_RETENTION_DAYS after it ended, then deleted with everything stored for it, so it leaves
// the list and its own URL, and a new delivery of it is a new job. A job still running is never
// expired. The test shortens the retention to seconds with LEDGER_RETENTION_SECONDS.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { getJob, listJobs, waitFor, waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { KV_ONLY_RULES } from '../devkit/harness/kv.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';

const ADMIN = 'retention-admin-token';
const RETENTION_S = 3;

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('retention', () => {
  test('a finished job is forgotten after its retention, a running one is kept, and a new delivery is a new job', async () => {
    const sys = await startSystem({
      rules: KV_ONLY_RULES,
      adminToken: ADMIN,
      vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, LEDGER_RETENTION_SECONDS: RETENTION_S },
    });
    closers.push(() => sys.close());
    const { w, stack } = sys;

    const done = addJob(stack, { entries: 3 });
    const first = await sys.deliver(done, 'production');
    assert.equal(first.json.status, 'accepted');
    const rec = await waitForFinal(w, done.jobId, { token: ADMIN });
    assert.equal(rec.status, 'done');
    assert.ok((await listJobs(w, ADMIN)).some((j) => j.job_id === done.jobId), 'listed while kept');
    const again = await sys.deliver(done, 'production', { expect: 200 });
    assert.equal(again.json.status, 'duplicate', 'a redelivery while kept is a duplicate');

    // A job whose item pages hang for longer than the retention: still running, never expired.
    const running = addJob(stack, { entries: 2 });
    const hang = sys.cs.hang('/items', (RETENTION_S + 3) * 1000);
    await sys.deliver(running, 'production');

    await sleep((RETENTION_S + 1.5) * 1000);
    assert.equal(hang.hits, 1, 'the running job is waiting on its item page');
    assert.equal(await getJob(w, done.jobId, ADMIN), null, 'the finished job is gone');
    const list = await listJobs(w, ADMIN);
    assert.ok(!list.some((j) => j.job_id === done.jobId), 'and gone from the list');
    const kept = await getJob(w, running.jobId, ADMIN);
    assert.ok(kept && !['done', 'partial', 'failed'].includes(kept.status), `the running job is kept: ${kept?.status}`);

    // Its deliveries went with it: the same delivery is a new job.
    const fresh = await sys.deliver(done, 'production');
    assert.equal(fresh.json.status, 'accepted');
    const rec2 = await waitForFinal(w, done.jobId, { token: ADMIN });
    assert.equal(rec2.attempts, 1);
    assert.notEqual(rec2.received_at, rec.received_at);

    // The running job ends and is kept for its own retention from then on.
    const ended = await waitForFinal(w, running.jobId, { token: ADMIN, timeoutMs: 60000 });
    assert.equal(ended.status, 'done');
    assert.ok(await getJob(w, running.jobId, ADMIN), 'kept right after it ended');
    await waitFor(async () => (await getJob(w, running.jobId, ADMIN)) === null, { what: 'the ended job to expire', timeoutMs: 20000, intervalMs: 500 });
  });

  test('a new job is watched by the alarm even while the alarm waits for a finished job to expire', async () => {
    // The default retention (90 days): once the first job is done, the ledger's alarm is set for
    // its expiry. A second job that then hangs must still be driven within PROGRESS_TIMEOUT_SECONDS.
    const sys = await startSystem({
      rules: KV_ONLY_RULES,
      adminToken: ADMIN,
      vars: { QUEUE_MAX_ATTEMPTS: 5, RETRY_BASE_SECONDS: 0, PROGRESS_TIMEOUT_SECONDS: 3, HTTP_TIMEOUT_MS: 60000 },
    });
    closers.push(() => sys.close());
    const { w, stack } = sys;
    const first = addJob(stack, { entries: 2 });
    await sys.deliver(first, 'production');
    assert.equal((await waitForFinal(w, first.jobId, { token: ADMIN })).status, 'done');
    // Let the alarm run once with no job unfinished (every second with this timeout): it then
    // re-arms for the first job's expiry, 90 days away.
    await sleep(2500);
    const stuck = addJob(stack, { entries: 2 });
    const hang = sys.cs.hang('/items', 10000);
    await sys.deliver(stuck, 'production');
    await waitFor(() => w.events('redriven').some((e) => e.job_id === stuck.jobId), { what: 'the stuck job to be driven again', timeoutMs: 30000 });
    assert.equal(hang.hits, 1, 'the items call hung');
    assert.equal((await waitForFinal(w, stuck.jobId, { token: ADMIN, timeoutMs: 60000 })).status, 'done');
  });
});
