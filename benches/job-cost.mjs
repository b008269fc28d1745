// Job cost: for jobs of 1, 100, 1,000 and 10,000 items, what the pipeline spends, next to the
// least any implementation could spend with the same rule, and the wall time from the webhook to
// the record's `done`, next to the floor the rate limits set.
//
// The compiled Worker runs in Miniflare with its queues, KV and Durable Objects
// (devkit/harness/worker.mjs), against the fake Contentstack limited to 10 requests per second
// per stack (like the real one) and the fake Cloudflare API. One rule, with a zone, one KV key
// and one cache tag per entry, so every item costs a KV delete and a purged tag.
//
// Writes target/bench/results/<BENCH_RESULT_NAME, default job-cost>.json. Env: BENCH_JOB_SIZES
// (comma-separated, default 1,100,1000,10000); BENCH_REPURGE_DELAY (REPURGE_DELAY_SECONDS, default
// 0: the second purge pass off; with it on, every job waits that long and sends its purge calls
// twice); BENCH_BUILD_DIR / BENCH_LEDGER run another build, e.g. the single ledger's (common.mjs
// buildFromEnv).
//
// Durable Object calls per instance, rate limiters aside: the job's own object (every ledger call
// of the job's queue invocations, from their `invocation` lines: `durable_object` − `limiter`),
// the job index (one call per `index_told` or `index_failed` line of the job: the job's object
// telling it of a new attempt or status), and the bench's own calls, counted here (it polls
// GET /api/jobs/{id}, which reads the job's object; it never lists, so it makes no index call).
// The webhook's own `accept` (fetch handler) is counted from its `accepted` line. With the single
// ledger (BENCH_LEDGER=single) every one of those calls goes to the one `Ledger`.
import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';
import { writeResult, buildFromEnv, waitFinalCountingPolls } from './common.mjs';

const SIZES = (process.env.BENCH_JOB_SIZES ?? '1,100,1000,10000').split(',').map(Number);
const ADMIN = 'bench-admin-token';
const CF_TOKEN = 'cf_bench_token';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const CS_RATE = 10; // requests per second per stack, as Contentstack enforces
const PAGE = 100; // job items per page (the API maximum)
const PURGE_BATCH_SIZE = 100; // the Worker's default
const PURGE_RATE_PER_SECOND = 50;
const SUBREQUEST_BUDGET = 900; // the Worker's default per-invocation budgets
const SERVICE_OPS_BUDGET = 900;
const REPURGE_DELAY_SECONDS = Number(process.env.BENCH_REPURGE_DELAY ?? 0);
const RESULT_NAME = process.env.BENCH_RESULT_NAME ?? 'job-cost';
const BUILD = buildFromEnv();
const POLL_MS = 25;

const RULES = {
  production: {
    zone_id: ZONE,
    kv_binding: 'CONTENT_KV',
    entry: {
      kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
      tags: ['cs-{environment}-{uid}'],
    },
  },
};

const sys = await startSystem({
  rules: RULES,
  adminToken: ADMIN,
  csRate: CS_RATE,
  cloudflare: { token: CF_TOKEN },
  vars: { PURGE_BATCH_SIZE, PURGE_RATE_PER_SECOND, QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, REPURGE_DELAY_SECONDS },
  worker: BUILD.worker,
});
const { stack, cs, cf, w } = sys;

/** Sends the signed webhook of `job`. */
const deliver = (job) => sys.deliver(job, 'production');

const rows = [];
try {
  // A warm-up job, so every measured job finds a warm isolate (compiled wasm, the signing key and
  // the stack's environments cached) as a busy Worker would.
  const warm = addJob(stack, { environments: ['production'], locales: ['en-us'], entries: 1 });
  await deliver(warm);
  await waitForFinal(w, warm.jobId, { token: ADMIN, intervalMs: 25 });
  for (const n of SIZES) {
    const job = addJob(stack, { environments: ['production'], locales: ['en-us'], entries: n });
    if (job.items.length !== n) throw new Error(`job of ${job.items.length} items, wanted ${n}`);
    cs.reset();
    cf.reset();
    const epoch0 = Date.now();
    const t0 = performance.now();
    await deliver(job);
    const ackMs = performance.now() - t0;
    const { record: rec, polls } = await waitFinalCountingPolls(w, job.jobId, ADMIN, { timeoutMs: 400000, intervalMs: POLL_MS });
    const wallMs = performance.now() - t0;
    if (rec.status !== 'done') throw new Error(`job of ${n} ended ${rec.status}: ${JSON.stringify(rec.errors)}`);

    const inv = w.events('invocation').filter((e) => e.job_id === job.jobId);
    const sum = (k) => inv.reduce((a, e) => a + (e[k] ?? 0), 0);
    const mine = (stage) => w.events(stage).filter((e) => e.job_id === job.jobId).length;
    const csApi = cs.requests.filter((r) => r.path.startsWith('/v3/'));
    const itemPages = csApi.filter((r) => r.path.endsWith('/items')).length;
    const since = (ms) => (ms === undefined ? null : ms - epoch0);
    const timeline = {
      last_item_page_ms: since(csApi.filter((r) => r.path.endsWith('/items')).at(-1)?.at),
      first_purge_ms: since(cf.purges[0]?.at),
      last_purge_ms: since(cf.purges.at(-1)?.at),
      // Where the time went (from the webhook): each queue invocation, and the purge calls.
      invocations: inv.map((e) => ({ step: e.step, started_ms: since(e.started_ms), duration_ms: e.duration_ms, pages: e.pages, kv: e.kv, cache: e.cache, durable_object: e.durable_object, fetch: e.fetch, steps: e.steps })),
      purge_calls_ms: cf.purges.map((p) => since(p.at)),
      purge_answered_ms: cf.purges.map((p) => since(p.answeredAt)),
      continued: w.events('continued').filter((e) => e.job_id === job.jobId).map((e) => ({ step: e.step, delay_s: e.delay_s })),
      paced: w.events('paced').filter((e) => e.job_id === job.jobId).map((e) => e.delay_s),
    };
    const purgeItems = rec.purged.tags + rec.purged.urls + rec.purged.prefixes + rec.purged.hosts;
    const min = {
      item_pages: Math.ceil(n / PAGE),
      // the job status + the item pages (the stack's environments are cached per isolate)
      contentstack_calls: 1 + Math.ceil(n / PAGE),
      // Each pass sends every batch once.
      purge_calls: Math.ceil(n / PURGE_BATCH_SIZE) * (REPURGE_DELAY_SECONDS > 0 ? 2 : 1),
      kv_ops: n,
    };
    // Every external call the job needs: all of them in one invocation when they fit the
    // budget; otherwise the fewest invocations each fill the budget.
    const external = min.contentstack_calls + min.purge_calls + min.kv_ops;
    min.largest_invocation_subrequests = Math.min(external, SUBREQUEST_BUDGET);
    min.invocations = Math.max(1, Math.ceil(external / SUBREQUEST_BUDGET));
    const floorMs = {
      contentstack: (min.contentstack_calls / CS_RATE) * 1000,
      item_pages: (min.item_pages / CS_RATE) * 1000,
      purges: (min.purge_calls / PURGE_RATE_PER_SECOND) * 1000,
      // The second pass starts the delay after the last KV delete.
      repurge_delay: REPURGE_DELAY_SECONDS * 1000,
    };
    const row = {
      items: n,
      wall_ms: wallMs,
      ack_ms: ackMs,
      record_duration_ms: rec.duration_ms ?? null,
      floor_ms: floorMs,
      timeline,
      // The record's own timeline (ms since the attempt started): where the time went.
      record_timeline: rec.timeline ?? null,
      measured: {
        item_pages: itemPages,
        contentstack_calls: csApi.length,
        job_status_calls: csApi.filter((r) => /\/v3\/bulk\/jobs\/[^/]+\/?$/.test(r.path)).length,
        environments_calls: csApi.filter((r) => r.path.startsWith('/v3/environments')).length,
        public_key_fetches: cs.requests.filter((r) => r.path.includes('public-keys')).length,
        contentstack_429: cs.rateLimited,
        purge_calls: cf.purges.length,
        purge_calls_ok: cf.purges.filter((p) => p.status === 200).length,
        purge_items: purgeItems,
        kv_ops: sum('kv'),
        kv_keys_deleted: rec.purged.kv_keys,
        durable_object_calls: sum('durable_object'),
        limiter_calls: sum('limiter'),
        // Rate limiters aside, per instance (see the header): the job's own object from its queue
        // invocations, the index as told by the job's object, and the bench's own polls.
        ledger_calls: sum('durable_object') - sum('limiter'),
        index_told: mine('index_told'),
        index_failed: mine('index_failed'),
        // The webhook's own call to the job's object (its `accept`; the fetch handler's, so not in the
        // invocation lines), one per `accepted` / `duplicate` line, two when the enqueue failed (the rollback).
        webhook_ledger_calls: mine('accepted') + mine('duplicate') + 2 * mine('enqueue_failed'),
        bench_polls: polls,
        bench_index_calls: 0,
        fetch_subrequests: sum('fetch'),
        subrequests: sum('subrequests'),
        invocations: inv.length,
        largest_invocation_subrequests: Math.max(0, ...inv.map((e) => e.subrequests ?? 0)),
        largest_invocation_fetch: Math.max(0, ...inv.map((e) => e.fetch ?? 0)),
        largest_invocation_service_ops: Math.max(0, ...inv.map((e) => e.service_ops ?? 0)),
        first_pass_at_ms: rec.first_pass_at ? Date.parse(rec.first_pass_at) - epoch0 : null,
        second_pass_at_ms: rec.second_pass_at ? Date.parse(rec.second_pass_at) - epoch0 : null,
        record_max_invocation_subrequests: rec.max_invocation_subrequests ?? null,
      },
      min,
    };
    rows.push(row);
    console.error(`job-cost ${n}: ${(wallMs / 1000).toFixed(2)} s (floor ${(Math.max(floorMs.item_pages, floorMs.purges) / 1000).toFixed(2)} s), ` +
      `cs ${row.measured.contentstack_calls}/${min.contentstack_calls}, cf ${row.measured.purge_calls}/${min.purge_calls}, kv ${row.measured.kv_ops}/${min.kv_ops}, ` +
      `largest invocation ${row.measured.largest_invocation_subrequests}, invocations ${inv.length}`);
  }
} finally {
  await sys.close();
}

writeResult(RESULT_NAME, {
  build: BUILD.label,
  poll_ms: POLL_MS,
  repurge_delay_seconds: REPURGE_DELAY_SECONDS,
  service_ops_budget: SERVICE_OPS_BUDGET,
  contentstack_rate_per_second: CS_RATE,
  page_size: PAGE,
  purge_batch_size: PURGE_BATCH_SIZE,
  purge_rate_per_second: PURGE_RATE_PER_SECOND,
  subrequest_budget: SUBREQUEST_BUDGET,
  rule: RULES.production,
  rows,
});
