// Many jobs at once: 10 simultaneous 1,000-item jobs from 5 stacks (2 per stack), each stack
// limited separately by the fake Contentstack (10 requests per second per api_key, its default),
// against the compiled Worker in Miniflare (devkit/harness/system.mjs with `stacks`).
//
// Measures the wall time from the first delivery to the last job's `done` next to the floor the
// rate limits set, every job's webhook → done, each stack's Contentstack calls next to its
// minimum, and the Durable Object calls (ledger and rate limiters) the queue invocations made,
// from the Worker's `invocation` log lines (src/pipeline/run.rs `log_invocation`: `durable_object`
// counts both, `limiter` the rate limiters' share). The job index's calls: the jobs' objects telling
// it of each new attempt or status (`index_told` / `index_failed` lines) and this bench's own list
// polls (one index call each, which also read up to 10 unfinished jobs live from their objects).
//
// Rule: one zone, per entry one KV key, one cache tag and one URL, all from uid templates (no
// `resolve_urls`, so a job needs only its status and its item pages from Contentstack).
// `PURGE_BATCH_SIZE` = 100 keeps the 10 jobs' purge calls (200) under the account-wide API bucket
// the Worker plans against (500 at once, 2/s); `PURGE_RATE_PER_SECOND` = `PURGE_BURST` = 100 put
// the purge bucket's floor ((calls − burst) / rate = 1 s) under the Contentstack floor (2.2 s),
// and the fake Cloudflare enforces that bucket.
//
// Writes target/bench/results/<BENCH_RESULT_NAME, default many-jobs>.json.
import os from 'node:os';
import { jobsPage, getJob } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { makeStack, addJob } from '../devkit/fakes/stack.mjs';
import { writeResult, sleep, plannedBucket } from './common.mjs';
import { threadMeter } from './workerd-cpu.mjs';

const STACKS = 5;
const JOBS_PER_STACK = 2;
const ITEMS = 1000;
const ADMIN = 'bench-admin-token';
const CF_TOKEN = 'cf_bench_token';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const CS_RATE = 10; // requests per second per stack, as Contentstack enforces (the fake's default)
const PAGE = 100; // job items per page (the API maximum)
const PURGE_BATCH_SIZE = 100;
const PURGE_RATE_PER_SECOND = 100;
const PURGE_BURST = 100;
// The Worker's model of Cloudflare's account-wide API limit (src/pace/mod.rs ACCOUNT_API_BUCKET).
const ACCOUNT_API = { rate: 1.8, burst: 450 };
// The jobs queue's consumer (wrangler.toml): up to 10 messages per batch, no `max_concurrency` set.
const QUEUE_MAX_BATCH = 10;
const POLL_MS = 50;
const TIMEOUT_MS = 170000;
const RESULT_NAME = process.env.BENCH_RESULT_NAME ?? 'many-jobs';

const RULES = {
  production: {
    zone_id: ZONE,
    kv_binding: 'CONTENT_KV',
    entry: {
      kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
      tags: ['cs-{environment}-{uid}'],
      urls: ['https://www.example.com/{content_type}/{uid}'],
    },
  },
};

const stacks = Array.from({ length: STACKS }, (_, i) => makeStack({ apiKey: `blt_many_jobs_stack_${i + 1}`, token: `cs_many_jobs_token_${i + 1}` }));
const sys = await startSystem({
  rules: RULES,
  adminToken: ADMIN,
  csRate: CS_RATE,
  stacks,
  cloudflare: { token: CF_TOKEN, bucket: { rate: PURGE_RATE_PER_SECOND, burst: PURGE_BURST } },
  vars: { PURGE_BATCH_SIZE, PURGE_RATE_PER_SECOND, PURGE_BURST, QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0 },
});
const { cs, cf, w } = sys;

let listPolls = 0;

/** Polls the job list until every id in `ids` is final; returns {id: {record, seenAt (epoch ms)}}. */
async function waitAllFinal(ids, timeoutMs) {
  const want = new Set(ids);
  const seen = {};
  const deadline = Date.now() + timeoutMs;
  while (Object.keys(seen).length < want.size) {
    if (Date.now() > deadline) {
      const left = [...want].filter((id) => !seen[id]);
      throw new Error(`timed out waiting for ${left.length} job(s): ${left.join(', ')}`);
    }
    // One request for all the jobs (one call to the job index, and live reads of up to 10 unfinished
    // jobs from their own objects): the list is newest first, 200 at most.
    listPolls++;
    const { jobs } = await jobsPage(w, ADMIN, { limit: 50 });
    const now = Date.now();
    for (const rec of jobs) {
      if (want.has(rec.job_id) && !seen[rec.job_id] && ['done', 'partial', 'failed'].includes(rec.status)) {
        seen[rec.job_id] = { record: rec, seenAt: now };
      }
    }
    if (Object.keys(seen).length < want.size) await sleep(POLL_MS);
  }
  return seen;
}

/** Largest number of invocations running at the same time, from their start and duration. */
function maxOverlap(lines) {
  const ev = [];
  for (const l of lines) {
    ev.push([l.started_ms, 1], [l.started_ms + l.duration_ms, -1]);
  }
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let best = 0;
  for (const [, d] of ev) {
    cur += d;
    best = Math.max(best, cur);
  }
  return best;
}

/**
 * The invocation lines grouped by overlap: sorted by start, a line joins the current group while it
 * starts before every line so far in the group has ended. With one batch at a time (Miniflare), a
 * group is one batch (its messages run at once) and no group holds more than the batch size; a
 * group larger than that means two batches ran at once (concurrent consumers).
 */
function overlapGroups(lines) {
  const sorted = [...lines].sort((a, b) => a.started_ms - b.started_ms);
  const groups = [];
  let g = null;
  for (const l of sorted) {
    const end = l.started_ms + l.duration_ms;
    if (g && l.started_ms < g.end) {
      g.lines.push(l);
      g.end = Math.max(g.end, end);
    } else {
      g = { start: l.started_ms, end, lines: [l] };
      groups.push(g);
    }
  }
  return groups.map((x) => ({
    start: x.start,
    end: x.end,
    span_ms: x.end - x.start,
    lines: x.lines.length,
    jobs: new Set(x.lines.map((l) => l.job_id)).size,
    start_spread_ms: Math.max(...x.lines.map((l) => l.started_ms)) - x.start,
    busy_ms: x.lines.reduce((a, l) => a + l.duration_ms, 0),
  }));
}

/** Milliseconds during which exactly k invocations ran, for each k ({k: ms}). */
function concurrencyProfile(lines) {
  const ev = [];
  for (const l of lines) ev.push([l.started_ms, 1], [l.started_ms + l.duration_ms, -1]);
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out = {};
  let cur = 0;
  let prev = ev[0]?.[0] ?? 0;
  for (const [t, d] of ev) {
    if (t > prev) out[cur] = (out[cur] ?? 0) + (t - prev);
    cur += d;
    prev = t;
  }
  delete out[0];
  return out;
}

let result;
try {
  // Warm-up: one 1-item job per stack, so the measured jobs find a warm isolate (compiled wasm,
  // the signing key and every stack's environments cached), as a busy Worker would.
  const warm = stacks.map((s) => addJob(s, { entries: 1 }));
  await Promise.all(warm.map((j) => sys.deliver(j, 'production')));
  const warmed = await waitAllFinal(warm.map((j) => j.jobId), 60000);
  for (const { record } of Object.values(warmed)) {
    if (record.status !== 'done') throw new Error(`warm-up job ended ${record.status}: ${JSON.stringify(record.errors)}`);
  }
  // Let the rate windows and the purge bucket clear.
  await sleep(1500);

  // Jobs interleaved by stack: s1, s2, …, s5, s1, s2, …
  const jobs = [];
  for (let k = 0; k < JOBS_PER_STACK; k++) {
    for (const s of stacks) jobs.push({ stack: s, job: addJob(s, { entries: ITEMS }) });
  }
  for (const { job } of jobs) if (job.items.length !== ITEMS) throw new Error(`job of ${job.items.length} items`);
  cs.reset();
  cf.reset();
  listPolls = 0;

  // workerd's threads, from just before the first delivery to the last job seen final: Miniflare
  // runs the Worker, its Durable Objects and the KV, Cache and Queue simulators in one process.
  const meter = threadMeter();
  meter.start();
  const epoch0 = Date.now();
  const t0 = performance.now();
  const sent = await Promise.all(jobs.map(async ({ job }) => {
    const sentAt = Date.now();
    await sys.deliver(job, 'production');
    return { sentAt, ackAt: Date.now() };
  }));
  const finals = await waitAllFinal(jobs.map(({ job }) => job.jobId), TIMEOUT_MS);
  const observedWallMs = performance.now() - t0;
  const machine = meter.stop();
  // The full records (with their timelines), read after the measured window.
  const full = {};
  for (const { job } of jobs) full[job.jobId] = await getJob(w, job.jobId, ADMIN);

  const ids = new Set(jobs.map(({ job }) => job.jobId));
  const inv = w.events('invocation').filter((e) => ids.has(e.job_id));
  const told = (id) => w.events('index_told').filter((e) => e.job_id === id).length + w.events('index_failed').filter((e) => e.job_id === id).length;
  const sum = (lines, k) => lines.reduce((a, e) => a + (e[k] ?? 0), 0);
  const since = (t) => (t === undefined || t === null ? null : t - epoch0);
  const firstSent = Math.min(...sent.map((s) => s.sentAt));

  // ---- per job
  const perJob = jobs.map(({ stack, job }, i) => {
    const { record: rec, seenAt } = finals[job.jobId];
    if (rec.status !== 'done') throw new Error(`job ${job.jobId} ended ${rec.status}: ${JSON.stringify(rec.errors)}`);
    const lines = inv.filter((e) => e.job_id === job.jobId);
    const finishedAt = rec.finished_at ? Date.parse(rec.finished_at) : null;
    // This job's own floor: its Contentstack reads at its stack's rate, and its share (1 / jobs) of
    // the purge bucket's burst and rate for its purge calls; the larger.
    const reads = 1 + Math.ceil(job.items.length / PAGE);
    const purgeCalls = 2 * Math.ceil(job.items.length / PURGE_BATCH_SIZE);
    const shareBurst = PURGE_BURST / jobs.length;
    const shareRate = PURGE_RATE_PER_SECOND / jobs.length;
    const jobFloor = {
      contentstack_reads_ms: (reads / CS_RATE) * 1000,
      purge_share_ms: (Math.max(0, purgeCalls - shareBurst) / shareRate) * 1000,
      // Not in the floor: the stack's rate is shared by its jobs, so together they need this long.
      stack_share_ms: ((reads * jobs.filter((j) => j.stack === stack).length) / CS_RATE) * 1000,
    };
    jobFloor.floor_ms = Math.max(jobFloor.contentstack_reads_ms, jobFloor.purge_share_ms);
    // Where the time went, from the job's timeline: offsets from its origin (the webhook's received_at).
    const tl = full[job.jobId]?.timeline;
    const evs = tl?.events ?? [];
    const firstOf = (k) => evs.find((e) => e.kind === k)?.t ?? null;
    const lastOf = (k) => evs.filter((e) => e.kind === k).at(-1)?.t ?? null;
    const webhookToDone = finishedAt === null ? null : finishedAt - sent[i].sentAt;
    return {
      job_id: job.jobId,
      stack: stack.apiKey,
      items: job.items.length,
      sent_at_ms: since(sent[i].sentAt),
      ack_ms: sent[i].ackAt - sent[i].sentAt,
      // From the record's finished_at (the Worker's clock, the same machine's); polling adds up to POLL_MS.
      webhook_to_done_ms: webhookToDone,
      floor: jobFloor,
      ratio_to_floor: webhookToDone === null ? null : webhookToDone / jobFloor.floor_ms,
      timeline: {
        origin_after_sent_ms: tl ? tl.origin_ms - sent[i].sentAt : null,
        first_pages_ms: firstOf('pages'),
        last_pages_ms: lastOf('pages'),
        first_purge_ms: firstOf('purge'),
        last_purge_ms: lastOf('purge'),
        end_ms: lastOf('end'),
        pages_events: evs.filter((e) => e.kind === 'pages').length,
        purge_events: evs.filter((e) => e.kind === 'purge').length,
        dropped: tl?.dropped ?? 0,
      },
      webhook_to_done_polled_ms: seenAt - sent[i].sentAt,
      finished_at_ms: since(finishedAt),
      started_at_ms: rec.started_at ? since(Date.parse(rec.started_at)) : null,
      invocations: lines.length,
      durable_object_calls: sum(lines, 'durable_object'),
      limiter_calls: sum(lines, 'limiter'),
      index_told: told(job.jobId),
      fetches: sum(lines, 'fetch'),
      kv_ops: sum(lines, 'kv'),
      queue_sends: sum(lines, 'queue'),
      invocation_ms: sum(lines, 'duration_ms'),
      purged: rec.purged,
      min: { contentstack_calls: 1 + Math.ceil(ITEMS / PAGE), purge_calls: 2 * Math.ceil(ITEMS / PURGE_BATCH_SIZE), kv_ops: ITEMS },
    };
  });

  // ---- per stack (the fake's request log)
  const api = cs.requests.filter((r) => r.path.startsWith('/v3/'));
  const perStack = stacks.map((s) => {
    const mine = api.filter((r) => r.apiKey === s.apiKey);
    const n = jobs.filter((j) => j.stack === s).length;
    const min = n * (1 + Math.ceil(ITEMS / PAGE));
    return {
      stack: s.apiKey,
      jobs: n,
      contentstack_calls: mine.length,
      item_pages: mine.filter((r) => r.path.endsWith('/items')).length,
      job_status_calls: mine.filter((r) => /\/v3\/bulk\/jobs\/[^/]+\/?$/.test(r.path)).length,
      environments_calls: mine.filter((r) => r.path.startsWith('/v3/environments')).length,
      rate_limited_429: mine.filter((r) => r.status === 429).length,
      max_per_second: cs.maxPerSecond(s.apiKey),
      first_call_ms: since(mine[0]?.at),
      last_call_ms: since(mine.at(-1)?.at),
      min_calls: min,
      floor_ms: (min / CS_RATE) * 1000,
    };
  });

  // ---- floors
  const busiest = perStack.reduce((a, b) => (b.min_calls > a.min_calls ? b : a));
  const purgeMin = perJob.reduce((a, j) => a + j.min.purge_calls, 0);
  const planned = plannedBucket({ rate: PURGE_RATE_PER_SECOND, burst: PURGE_BURST });
  const floorMs = {
    contentstack_busiest_stack: busiest.floor_ms,
    purge_bucket: (Math.max(0, purgeMin - PURGE_BURST) / PURGE_RATE_PER_SECOND) * 1000,
    purge_bucket_as_planned: (Math.max(0, purgeMin - planned.burst) / planned.rate) * 1000,
    account_api: (Math.max(0, purgeMin - ACCOUNT_API.burst) / ACCOUNT_API.rate) * 1000,
  };
  floorMs.floor = Math.max(floorMs.contentstack_busiest_stack, floorMs.purge_bucket, floorMs.account_api);
  // If queue invocations run one at a time (Miniflare's queue broker dispatches one batch at a
  // time), the stacks' Contentstack calls cannot overlap: every stack's minimum, one after another.
  floorMs.one_invocation_at_a_time = (perStack.reduce((a, s) => a + s.min_calls, 0) / CS_RATE) * 1000;

  // ---- totals
  const lastFinished = Math.max(...perJob.map((j) => j.finished_at_ms ?? -Infinity));
  const wallMs = lastFinished + epoch0 - firstSent;
  const doCalls = sum(inv, 'durable_object');
  const fetches = sum(inv, 'fetch');
  const invStart = Math.min(...inv.map((e) => e.started_ms));
  const invEnd = Math.max(...inv.map((e) => e.started_ms + e.duration_ms));
  const invBusyMs = sum(inv, 'duration_ms');
  const groups = overlapGroups(inv);
  const profile = concurrencyProfile(inv);
  const worst = perJob.reduce((a, b) => ((b.ratio_to_floor ?? -1) > (a.ratio_to_floor ?? -1) ? b : a));
  const purgeModes = {};
  const purgeSizes = {}; // {mode: {items in the call: calls}}
  for (const p of cf.purges) {
    const m = p.mode ?? 'unknown';
    purgeModes[m] = (purgeModes[m] ?? 0) + 1;
    purgeSizes[m] ??= {};
    purgeSizes[m][p.items.length] = (purgeSizes[m][p.items.length] ?? 0) + 1;
  }

  result = {
    stacks: STACKS,
    jobs_per_stack: JOBS_PER_STACK,
    items_per_job: ITEMS,
    contentstack_rate_per_second: CS_RATE,
    page_size: PAGE,
    purge_batch_size: PURGE_BATCH_SIZE,
    purge_rate_per_second: PURGE_RATE_PER_SECOND,
    purge_burst: PURGE_BURST,
    account_api_bucket: ACCOUNT_API,
    poll_ms: POLL_MS,
    rule: RULES.production,
    wall_ms: wallMs,
    wall_polled_ms: observedWallMs,
    deliveries_ms: Math.max(...sent.map((s) => s.ackAt)) - firstSent,
    floor_ms: floorMs,
    // What bounds the run on this machine: workerd's busiest thread's CPU over the window.
    machine: { cpus: os.cpus().length, ...machine },
    jobs: perJob,
    worst_job: { job_id: worst.job_id, index: perJob.indexOf(worst), webhook_to_done_ms: worst.webhook_to_done_ms, floor_ms: worst.floor.floor_ms, ratio: worst.ratio_to_floor },
    per_stack: perStack,
    contentstack: {
      calls: api.length,
      min_calls: perStack.reduce((a, s) => a + s.min_calls, 0),
      rate_limited_429: cs.rateLimited,
    },
    cloudflare: {
      purge_calls: cf.purges.length,
      purge_calls_ok: cf.purges.filter((p) => p.status === 200).length,
      by_mode: purgeModes,
      batch_sizes: purgeSizes,
      min_purge_calls: purgeMin,
      bucket_refusals: cf.bucketRefusals,
      first_purge_ms: since(cf.purges[0]?.at),
      last_purge_ms: since(cf.purges.at(-1)?.at),
    },
    invocations: {
      count: inv.length,
      max_concurrent: maxOverlap(inv),
      queue_max_batch_size: QUEUE_MAX_BATCH,
      // Lines grouped by overlap (see overlapGroups): one batch each when batches run one at a time.
      overlap_groups: {
        count: groups.length,
        max_lines: Math.max(0, ...groups.map((g) => g.lines)),
        larger_than_a_batch: groups.filter((g) => g.lines > QUEUE_MAX_BATCH).length,
        mean_lines: groups.length ? inv.length / groups.length : 0,
        max_start_spread_ms: Math.max(0, ...groups.map((g) => g.start_spread_ms)),
        summed_span_ms: groups.reduce((a, g) => a + g.span_ms, 0),
        idle_between_ms: groups.slice(1).reduce((a, g, k) => a + (g.start - groups[k].end), 0),
        // Each group's messages' summed time ÷ (its span × its messages): how full the batch kept its slots.
        slot_use: groups.reduce((a, g) => a + g.busy_ms, 0) / Math.max(1, groups.reduce((a, g) => a + g.span_ms * g.lines, 0)),
        sizes: groups.reduce((m, g) => ({ ...m, [g.lines]: (m[g.lines] ?? 0) + 1 }), {}),
        list: groups.map((g) => ({ start_ms: since(g.start), span_ms: g.span_ms, lines: g.lines, jobs: g.jobs, start_spread_ms: g.start_spread_ms })),
      },
      // {k: ms during which exactly k invocations ran}.
      concurrency_ms: profile,
      busy_ms: invBusyMs,
      span_ms: invEnd - invStart,
      first_started_ms: since(invStart),
      last_ended_ms: since(invEnd),
      kv_ops: sum(inv, 'kv'),
      min_kv_ops: ITEMS * jobs.length,
      // Operations by kind over every invocation (each costs Miniflare's simulator CPU on workerd's thread).
      ops_by_kind: Object.fromEntries(['kv', 'cache', 'queue', 'durable_object', 'fetch'].map((k) => [k, sum(inv, k)])),
      fetches,
      queue_sends: sum(inv, 'queue'),
      largest_subrequests: Math.max(0, ...inv.map((e) => e.subrequests ?? 0)),
      // Every invocation in start order: which job (index in `jobs`), its step, when and how long.
      timeline: [...inv].sort((a, b) => a.started_ms - b.started_ms).map((e) => ({
        job: jobs.findIndex(({ job }) => job.jobId === e.job_id),
        step: e.step,
        started_ms: since(e.started_ms),
        duration_ms: e.duration_ms,
        durable_object: e.durable_object,
        fetch: e.fetch,
        kv: e.kv,
      })),
    },
    durable_objects: {
      // The invocation lines count every Durable Object call in `durable_object` and the
      // rate limiters' share of them in `limiter` (src/budget.rs Spend::Limiter).
      calls: doCalls,
      limiter_calls: sum(inv, 'limiter'),
      ledger_calls: doCalls - sum(inv, 'limiter'),
      per_second_of_wall: doCalls / (wallMs / 1000),
      per_second_of_invocation_time: doCalls / (invBusyMs / 1000),
      // The job index: told by the jobs' objects, and this bench's list polls.
      index_told: perJob.reduce((a, j) => a + j.index_told, 0),
      index_told_max_per_job: Math.max(...perJob.map((j) => j.index_told)),
      bench_list_polls: listPolls,
    },
  };
} finally {
  await sys.close();
}

writeResult(RESULT_NAME, result);
const r = result;
console.error(`many-jobs: ${r.jobs.length} jobs × ${r.items_per_job} items from ${r.stacks} stacks: ` +
  `${(r.wall_ms / 1000).toFixed(2)} s first delivery → last done (floor ${(r.floor_ms.floor / 1000).toFixed(2)} s: ` +
  `busiest stack ${(r.floor_ms.contentstack_busiest_stack / 1000).toFixed(2)} s, purge bucket ${(r.floor_ms.purge_bucket / 1000).toFixed(2)} s), ` +
  `cs ${r.contentstack.calls}/${r.contentstack.min_calls} (429s ${r.contentstack.rate_limited_429}), cf ${r.cloudflare.purge_calls}/${r.cloudflare.min_purge_calls} ` +
  `(refused ${r.cloudflare.bucket_refusals}), DO calls ${r.durable_objects.calls} (${r.durable_objects.per_second_of_wall.toFixed(1)}/s), ` +
  `invocations ${r.invocations.count}, at most ${r.invocations.max_concurrent} at once, busy ${(r.invocations.busy_ms / 1000).toFixed(2)} s`);
for (const j of r.jobs) {
  console.error(`  ${j.stack} ${j.job_id}: webhook → done ${(j.webhook_to_done_ms / 1000).toFixed(2)} s ` +
    `(floor ${(j.floor.floor_ms / 1000).toFixed(2)} s, ${j.ratio_to_floor.toFixed(2)}×), ${j.invocations} invocations, DO ${j.durable_object_calls}`);
}
const og = r.invocations.overlap_groups;
console.error(`many-jobs: workerd's busiest thread ${(r.machine.busiest.cpu_ms / 1000).toFixed(2)} s CPU in ${(r.machine.wall_ms / 1000).toFixed(2)} s ` +
  `(${(r.machine.busiest.share * 100).toFixed(0)} %; ≥ ${r.machine.busy_share * 100} % busy in ${r.machine.busy_samples} of ${r.machine.samples} samples), all threads ${(r.machine.workerd_ms / 1000).toFixed(2)} s`);
console.error(`many-jobs: worst job ${r.worst_job.ratio.toFixed(2)}× its floor; invocation overlap groups ${og.count} ` +
  `(most lines ${og.max_lines}, larger than a batch ${og.larger_than_a_batch}, idle between ${(og.idle_between_ms / 1000).toFixed(2)} s)`);
