// Warm the cache after the purge (docs/CONTRACT.md, "Warm after the purge"): after the
// environment's second pass, the Worker requests the URLs it purged by URL, each once, in warm
// order, with at most `warm_rate` starting in any one second (measured at the fake site), across
// many invocations of the Free plan's budget (45 fetches each); answers of 500 and a request that
// never answers are counted as failed, never retried, and the job still ends `done`.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';

const ADMIN = 'warm-admin-token';
const ZONE = 'zone0warm000000000000000000000000';
const RATE = 50;
const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

describe('warm after the purge', () => {
  test('500 URLs on the Free plan budget, paced, after the second pass, with failures counted', async () => {
    const sys = await startSystem({
      rules: {
        production: {
          zone_id: ZONE,
          kv_binding: 'CONTENT_KV',
          entry: { kv_keys: ['{environment}:{locale}:entry:{uid}'], urls: ['{base_url}e/{uid}'] },
          warm: 500,
          warm_rate: RATE,
        },
      },
      adminToken: ADMIN,
      site: { environments: ['production'] },
      vars: { WORKERS_PLAN: 'free', REPURGE_DELAY_SECONDS: 2, HTTP_TIMEOUT_MS: 2000, QUEUE_MAX_ATTEMPTS: 5, RETRY_BASE_SECONDS: 0 },
    });
    closers.push(() => sys.close());
    const { w, stack, site } = sys;
    const job = addJob(stack, { locales: ['en-us', 'fr-fr'], entries: 260 });
    assert.equal(job.items.length, 520, 'more URLs than the rule warms');

    // Some pages answer 500, one never answers (the Worker gives up after HTTP_TIMEOUT_MS).
    const broken = job.items.slice(0, 40).filter((_, i) => i % 8 === 0).map((it) => it.uid);
    const isWarm = (r) => /\(warm\)$/.test(r.headers['user-agent'] ?? '');
    for (const uid of broken) site.fault({ path: new RegExp(`^/e/${uid}$`), status: 500, times: 10 });
    const hung = job.items[41].uid;
    site.fault({ path: new RegExp(`^/e/${hung}$`), delayMs: 60_000, times: 10 });

    const plan = await (await w.fetch('/api/plan', { method: 'POST', headers: auth, body: JSON.stringify({ job_id: job.jobId }) })).json();
    const planned = plan.plan.environments.production.warm;
    assert.equal(planned.length, 500, 'the dry run lists the 500 URLs it would warm');

    await sys.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 180_000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));

    // The scenario happened: many invocations, the faults fired.
    const warmRequests = site.requests.filter(isWarm);
    const invocations = w.events('invocation').filter((e) => e.job_id === job.jobId && e.step === 'warm');
    assert.ok(invocations.length >= 10, `warming took ${invocations.length} invocations of the Free plan budget`);
    assert.ok(invocations.every((e) => e.fetch <= 45), 'no invocation passed 45 fetches');
    const hits = (uid) => warmRequests.filter((r) => r.path === `/e/${uid}`).length;
    assert.ok(broken.every((uid) => hits(uid) <= 1), 'a failing URL is not retried');
    assert.ok(warmRequests.filter((r) => r.fault).length >= 1, 'the faults fired');

    // Each URL once, the planned ones, in warm order.
    const paths = warmRequests.map((r) => r.path);
    assert.equal(paths.length, 500, 'each URL requested once');
    assert.equal(new Set(paths).size, 500);
    assert.deepEqual(new Set(paths), new Set(planned.map((u) => new URL(u).pathname)), 'the URLs the dry run listed');
    assert.ok(warmRequests.every((r) => /^contentstack-edge-purge\/\S+ \(warm\)$/.test(r.headers['user-agent'])), 'the warm User-Agent');
    assert.ok(warmRequests.every((r) => r.headers['accept-encoding'] === 'gzip, br'));

    // After the second pass (and so after the purge calls it sent).
    const secondEnd = Date.parse(rec.passes.production.second_pass_at);
    assert.ok(warmRequests.every((r) => r.at >= secondEnd), 'every warm request came after the second pass ended');

    // Paced: never more than warm_rate starts in any one second at the site.
    const at = warmRequests.map((r) => r.at).sort((a, b) => a - b);
    let most = 0;
    for (let i = 0, j = 0; i < at.length; i++) {
      while (at[i] - at[j] >= 1000) j++;
      most = Math.max(most, i - j + 1);
    }
    assert.ok(most <= RATE + 1, `${most} warm requests within one second (warm_rate ${RATE})`);
    assert.ok(at.at(-1) - at[0] >= (500 / RATE - 1) * 1000 * 0.9, `500 requests took ${at.at(-1) - at[0]} ms at ${RATE}/s`);

    // The record.
    const wr = rec.warm.production;
    assert.equal(wr.requested, 500);
    assert.equal(wr.failed, broken.length + 1, 'the 500s and the request that never answered');
    assert.equal(wr.ok, 500 - broken.length - 1);
    assert.equal(wr.scope, 'one data centre');
    assert.ok(Date.parse(wr.at) >= secondEnd && Date.parse(wr.at) <= Date.parse(rec.finished_at));
    assert.ok(rec.timeline.events.some((e) => e.kind === 'warm' && e.env === 'production'), 'a warm lane on the timeline');
  });
});
