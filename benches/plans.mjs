// Job cost under the Cloudflare plans' purge buckets (docs/CONTRACT.md "Processing", docs/ARCHITECTURE.md
// "Purge groups"): the same job under each plan's bucket, its wall time next to the floors the two
// limits set, and its purge calls next to the fewest that send every value once.
//
// The job: N items = N/2 entries × two locales (en-us, fr-fr), so every uid has an item on an early
// page (en-us) and one on a late page (fr-fr). One rule, one zone, per entry one KV key, one tag
// `cs-{uid}` (recurs: the uid's two locales give the same tag) and one URL `{base_url}e/{uid}` (the
// two locales give two URLs, www.example.com/e/… and www.example.com/fr/e/…; the template names the
// uid but not `{locale}`, so the Worker treats it as one that may recur too). Second pass off.
//
// The buckets: Pro, Business and Enterprise as src/config/cloudflare.rs sets them (read from that file,
// `CLOUDFLARE_PLAN` set and no override); Free scaled (`CLOUDFLARE_PLAN=free` with
// `PURGE_RATE_PER_SECOND` and `PURGE_BURST` overrides, default 0.5/s and 6: the real 5 per minute with
// a burst of 25 would not bind at 1,000 items and would take an hour at 10,000). The fake Cloudflare
// enforces the same bucket (429 code 1134 when empty). Enterprise sends 500 URLs a call
// (`PURGE_BATCH_SIZE` 500), the others 100; tags are 100 a call everywhere.
//
// Per case, from the job's own items (the floors need no measurement):
//   reading floor  = (1 + ⌈items ÷ 100⌉) ÷ 10 s (job status + item pages at Contentstack's 10/s);
//   unique minimum = Σ per zone and kind ⌈unique values ÷ batch⌉ (each value once);
//   purge floor    = max(0, unique minimum − burst) ÷ rate; the bucket binds when it exceeds the reading floor;
//   stream-everything floor = every value purged with its 8-page group (Σ over groups and kinds of
//     ⌈unique values in the group ÷ batch⌉ calls), each group's calls released when its last page is
//     read ((1 + pages so far) ÷ 10 s), drained through the bucket (full at the start);
//   deferred-mix floor = the Worker's choice: values whose template names the item ({uid} and {locale},
//     or {url}) released with their group, the rest (deferred) after the last page, drained through the
//     bucket. When every value is deferred, as here, that is reading floor + max(0, calls − burst) ÷ rate.
//   better floor = the smaller of the two.
// Measured: webhook → the record's `finished_at`, the purge calls answered 200 by the fake (per kind:
// items sent, unique), the calls the bucket refused, the Contentstack calls; for jobs of up to 1,000
// items also the dry run's `purge_calls`.
//
// Env: BENCH_PLAN_CASES (comma-separated plan:items, default
// free:1000,pro:1000,business:1000,enterprise:1000,pro:10000,business:10000,enterprise:10000);
// BENCH_FREE_RATE, BENCH_FREE_BURST (the scaled Free bucket). Writes target/bench/results/plans.json.
import fs from 'node:fs';
import path from 'node:path';
import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { addJob, findEnvironment } from '../devkit/fakes/stack.mjs';
import { writeResult, buildFromEnv, root, sleep, waitFinalCountingPolls, plannedBucket } from './common.mjs';

const CASES = (process.env.BENCH_PLAN_CASES ?? 'free:1000,pro:1000,business:1000,enterprise:1000,pro:10000,business:10000,enterprise:10000')
  .split(',').map((c) => {
    const [plan, items] = c.split(':');
    return { plan, items: Number(items) };
  });
const FREE_SCALED = { rate: Number(process.env.BENCH_FREE_RATE ?? 0.5), burst: Number(process.env.BENCH_FREE_BURST ?? 6) };
const ADMIN = 'bench-admin-token';
const ZONE = 'zone0plans000000000000000000000000';
const CS_RATE = 10; // Contentstack's requests per second per stack
const PAGE = 100; // job items per page
const GROUP_PAGES = 8; // pages per purge group (purge::group_of_skip)
const TAG_BATCH = 100; // tags, hosts and prefixes per call on every plan
const LOCALES = ['en-us', 'fr-fr'];
const BUILD = buildFromEnv();
const POLL_MS = 50;

const RULE = {
  zone_id: ZONE,
  kv_binding: 'CONTENT_KV',
  entry: {
    kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
    tags: ['cs-{uid}'],
    urls: ['{base_url}e/{uid}'],
  },
};
// Staging: KV only (no zone), for the warm-up job, which so spends no purge token.
const RULES = { production: RULE, staging: { kv_binding: 'CONTENT_KV', entry: { kv_keys: ['{environment}:{locale}:entry:{uid}'] } } };

/** The plans' buckets as src/config/cloudflare.rs sets them (`CloudflarePlan::purge_bucket`). */
function plansFromSource() {
  const text = fs.readFileSync(path.join(root, 'src/config/cloudflare.rs'), 'utf8');
  const num = (s) => {
    const m = /^\s*([\d.]+)\s*(?:\/\s*([\d.]+))?\s*$/.exec(s);
    if (!m) throw new Error(`plans: cannot read ${JSON.stringify(s)} in src/config/cloudflare.rs`);
    return m[2] ? Number(m[1]) / Number(m[2]) : Number(m[1]);
  };
  const out = {};
  for (const name of ['Free', 'Pro', 'Business', 'Enterprise']) {
    const m = new RegExp(`CloudflarePlan::${name}\\s*=>\\s*\\(([^,()]+),([^,()]+)\\)`).exec(text);
    if (!m) throw new Error(`plans: no purge bucket for ${name} in src/config/cloudflare.rs`);
    out[name.toLowerCase()] = { rate: num(m[1]), burst: num(m[2]) };
  }
  return out;
}
const PLANS = plansFromSource();

/** A template that names its item ({uid} and {locale}, or {url}) cannot recur: `Template::may_recur`. */
const namesItem = (t) => (t.includes('{uid}') && t.includes('{locale}')) || t.includes('{url}');

/** The job's items' purge values per kind, in page order: [{kind, template, value, index}]. */
function purgeValues(stack, items) {
  const env = findEnvironment(stack, 'production');
  const baseUrl = (locale) => (env.urls.find((u) => u.locale === locale) ?? env.urls.find((u) => !u.locale))?.url ?? '';
  const expand = (t, it) => {
    let s = t.replace('{base_url}', () => baseUrl(it.publish_locale));
    // The {base_url} slash rule: a base ending in "/" followed by a template "/" keeps one.
    s = s.replace(/([^:])\/\/+/g, '$1/');
    return s.replaceAll('{uid}', it.uid).replaceAll('{locale}', it.publish_locale).replaceAll('{environment}', 'production')
      .replaceAll('{content_type}', it.content_type?.uid ?? '');
  };
  const out = [];
  items.forEach((it, index) => {
    for (const t of RULE.entry.tags) out.push({ kind: 'tags', template: t, value: expand(t, it), index });
    for (const t of RULE.entry.urls) out.push({ kind: 'files', template: t, value: expand(t, it), index });
  });
  return out;
}

/** Call release times (s) drained through a token bucket, full at 0: the time of the last call. */
function drain(releases, { rate, burst }) {
  const rs = [...releases].sort((a, b) => a - b);
  let tokens = burst;
  let t = 0;
  let last = 0;
  for (const r of rs) {
    const now = Math.max(r, t);
    tokens = Math.min(burst, tokens + (now - t) * rate);
    t = now;
    if (tokens < 1) {
      t += (1 - tokens) / rate;
      tokens = 1;
    }
    tokens -= 1;
    last = t;
  }
  return last;
}

/** The floors of one job under one bucket, from its items (see the header). */
function floors(stack, items, bucket, batch) {
  const values = purgeValues(stack, items);
  const pages = Math.ceil(items.length / PAGE);
  const groups = Math.ceil(pages / GROUP_PAGES);
  const readingS = (1 + pages) / CS_RATE;
  const closeS = (g) => (1 + Math.min(pages, g * GROUP_PAGES)) / CS_RATE; // g = 1, 2, …
  const groupOf = (index) => 1 + Math.floor(index / (PAGE * GROUP_PAGES));
  const batchOf = (kind) => (kind === 'files' ? batch.files : batch.others);
  const calls = (n, kind) => Math.ceil(n / batchOf(kind));
  const kinds = [...new Set(values.map((v) => v.kind))];

  // Each value once: the unique minimum.
  const unique = {};
  for (const k of kinds) unique[k] = new Set(values.filter((v) => v.kind === k).map((v) => v.value)).size;
  const uniqueCalls = kinds.reduce((a, k) => a + calls(unique[k], k), 0);

  // Every value with its group.
  const streamReleases = [];
  const mixReleases = [];
  const perGroup = [];
  for (let g = 1; g <= groups; g++) {
    const row = { group: g, closes_s: closeS(g), stream_calls: 0, mix_streamed_calls: 0 };
    for (const k of kinds) {
      const mine = values.filter((v) => v.kind === k && groupOf(v.index) === g);
      const n = calls(new Set(mine.map((v) => v.value)).size, k);
      row.stream_calls += n;
      for (let i = 0; i < n; i++) streamReleases.push(closeS(g));
      const streamed = mine.filter((v) => namesItem(v.template));
      const m = calls(new Set(streamed.map((v) => v.value)).size, k);
      row.mix_streamed_calls += m;
      for (let i = 0; i < m; i++) mixReleases.push(closeS(g));
    }
    perGroup.push(row);
  }
  let deferredCalls = 0;
  for (const k of kinds) {
    const deferred = values.filter((v) => v.kind === k && !namesItem(v.template));
    deferredCalls += calls(new Set(deferred.map((v) => v.value)).size, k);
  }
  for (let i = 0; i < deferredCalls; i++) mixReleases.push(readingS);
  // For comparison only: the same choice if a `{base_url}` that differs per locale counted as naming the
  // locale (here it does differ, so no URL of this job recurs; the Worker defers them nonetheless).
  const namesItemByBase = (t) => namesItem(t) || (t.includes('{uid}') && t.includes('{base_url}'));
  const baseReleases = [];
  for (let g = 1; g <= groups; g++) {
    for (const k of kinds) {
      const streamed = values.filter((v) => v.kind === k && groupOf(v.index) === g && namesItemByBase(v.template));
      const m = calls(new Set(streamed.map((v) => v.value)).size, k);
      for (let i = 0; i < m; i++) baseReleases.push(closeS(g));
    }
  }
  for (const k of kinds) {
    const deferred = values.filter((v) => v.kind === k && !namesItemByBase(v.template));
    const m = calls(new Set(deferred.map((v) => v.value)).size, k);
    for (let i = 0; i < m; i++) baseReleases.push(readingS);
  }
  const purgeFloorS = Math.max(0, uniqueCalls - bucket.burst) / bucket.rate;
  const streamS = Math.max(readingS, drain(streamReleases, bucket));
  const mixS = Math.max(readingS, drain(mixReleases, bucket));
  return {
    pages,
    groups,
    unique_values: unique,
    unique_min_calls: uniqueCalls,
    stream_calls: streamReleases.length,
    mix_calls: mixReleases.length,
    mix_deferred_calls: deferredCalls,
    per_group: perGroup,
    reading_floor_ms: readingS * 1000,
    purge_floor_ms: purgeFloorS * 1000,
    bucket_binds: purgeFloorS > readingS,
    stream_floor_ms: streamS * 1000,
    mix_floor_ms: mixS * 1000,
    // The closed form of the brief, for the record: reading + (unique − burst) ÷ rate.
    mix_floor_closed_form_ms: (readingS + purgeFloorS) * 1000,
    better_floor_ms: Math.min(streamS, mixS) * 1000,
    better: streamS < mixS ? 'stream-everything' : mixS < streamS ? 'deferred-mix' : 'equal',
    base_url_mix_calls: baseReleases.length,
    base_url_mix_floor_ms: Math.max(readingS, drain(baseReleases, bucket)) * 1000,
  };
}

const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

async function runCase({ plan, items: n }) {
  const scaled = plan === 'free';
  const bucket = scaled ? FREE_SCALED : PLANS[plan];
  if (!bucket) throw new Error(`plans: unknown plan ${plan}`);
  const enterprise = plan === 'enterprise';
  const batch = { files: enterprise ? 500 : 100, others: TAG_BATCH };
  const sys = await startSystem({
    rules: RULES,
    adminToken: ADMIN,
    csRate: CS_RATE,
    cloudflare: { bucket, maxFilesPerCall: batch.files },
    vars: {
      CLOUDFLARE_PLAN: plan,
      // The plan's own bucket unless scaled (undefined removes the harness's default override of 50/s).
      PURGE_RATE_PER_SECOND: scaled ? bucket.rate : undefined,
      PURGE_BURST: scaled ? bucket.burst : undefined,
      PURGE_BATCH_SIZE: batch.files,
      QUEUE_MAX_ATTEMPTS: 3,
      RETRY_BASE_SECONDS: 0,
      REPURGE_DELAY_SECONDS: 0,
    },
    worker: BUILD.worker,
  });
  const { stack, cs, cf, w } = sys;
  try {
    // Warm-up: a 1-item job in staging (KV only: no purge token spent), so the measured job finds a
    // warm isolate (compiled module, key, configuration, the stack's environments cached).
    const warm = addJob(stack, { environments: ['staging'], locales: ['en-us'], entries: 1 });
    await sys.deliver(warm, 'staging');
    await waitForFinal(w, warm.jobId, { token: ADMIN, intervalMs: 25 });

    const job = addJob(stack, { environments: ['production'], locales: LOCALES, entries: n / LOCALES.length });
    if (job.items.length !== n) throw new Error(`job of ${job.items.length} items, wanted ${n}`);
    const f = floors(stack, job.items, bucket, batch);

    let dryRunCalls = null;
    if (n <= 1000) {
      const r = await w.fetch('/api/plan', { method: 'POST', headers: auth, body: JSON.stringify({ job_id: job.jobId }) });
      if (r.status !== 200) throw new Error(`dry run answered ${r.status}: ${await r.text()}`);
      dryRunCalls = (await r.json()).purge_calls;
    }
    // Contentstack's window and the fake's own: a quiet second before the job.
    await sleep(1200);
    cs.reset();
    cf.reset(); // the fake's bucket full again

    const epoch0 = Date.now();
    await sys.deliver(job, 'production');
    const { record: rec, polls } = await waitFinalCountingPolls(w, job.jobId, ADMIN, { timeoutMs: 600_000, intervalMs: POLL_MS });
    const polledMs = Date.now() - epoch0;
    if (rec.status !== 'done') throw new Error(`${plan} ${n}: job ended ${rec.status}: ${JSON.stringify(rec.errors)}`);
    const wallMs = Date.parse(rec.finished_at) - epoch0;

    const ok = cf.purges.filter((p) => p.status === 200);
    const kinds = {};
    for (const mode of [...new Set(ok.map((p) => p.mode))].sort()) {
      const calls = ok.filter((p) => p.mode === mode);
      const unique = new Set(calls.flatMap((p) => p.items)).size;
      const b = mode === 'files' ? batch.files : batch.others;
      kinds[mode] = {
        calls: calls.length,
        items_sent: calls.reduce((a, p) => a + p.items.length, 0),
        unique_items: unique,
        min_calls: Math.ceil(unique / b),
        batch: b,
        largest_call: Math.max(...calls.map((p) => p.items.length)),
      };
    }
    const calls = ok.length;
    const minCalls = Object.values(kinds).reduce((a, k) => a + k.min_calls, 0);
    const csApi = cs.requests.filter((r) => r.path.startsWith('/v3/'));
    const pageReqs = csApi.filter((r) => r.path.endsWith('/items'));
    const lastPageMs = pageReqs.at(-1)?.at - epoch0;
    // What the Worker's own margins allow from its measured last page: every call deferred there,
    // drained through the bucket it plans against.
    const planned = plannedBucket(bucket);
    const plannedFromLastPageMs = Number.isFinite(lastPageMs)
      ? lastPageMs + drain(Array(f.mix_deferred_calls).fill(0), planned) * 1000
      : null;
    const inv = w.events('invocation').filter((e) => e.job_id === job.jobId);
    const row = {
      plan,
      scaled,
      items: n,
      entries: n / LOCALES.length,
      bucket,
      planned_bucket: planned,
      batch,
      status: rec.status,
      wall_ms: wallMs,
      polled_wall_ms: polledMs,
      polls,
      floors: f,
      purge_calls: calls,
      unique_min_calls_measured: minCalls,
      calls_ratio: calls / f.unique_min_calls,
      achieved_ratio: wallMs / f.better_floor_ms,
      kinds,
      calls_not_200: cf.purges.length - ok.length,
      bucket_refusals: cf.bucketRefusals,
      dry_run_purge_calls: dryRunCalls,
      record_api_calls: rec.purged?.api_calls ?? null,
      contentstack: {
        calls: csApi.length,
        item_pages: pageReqs.length,
        rate_limited_429: cs.rateLimited,
      },
      timeline: {
        last_item_page_ms: lastPageMs,
        first_purge_ms: cf.purges[0] ? cf.purges[0].at - epoch0 : null,
        last_purge_ms: cf.purges.at(-1) ? cf.purges.at(-1).at - epoch0 : null,
      },
      planned_from_last_page_ms: plannedFromLastPageMs,
      invocations: inv.length,
      // Where the time went: each queue invocation (from the webhook), the item pages and the purge calls.
      trace: {
        invocations: inv.map((e) => ({ step: e.step, started_ms: e.started_ms - epoch0, duration_ms: e.duration_ms, pages: e.pages, kv: e.kv, cache: e.cache, durable_object: e.durable_object, fetch: e.fetch, steps: e.steps })),
        item_pages_ms: pageReqs.map((r) => r.at - epoch0),
        purge_calls_ms: cf.purges.map((p) => p.at - epoch0),
      },
    };
    console.error(`plans ${plan}${scaled ? ' (scaled)' : ''} ${n}: ${(wallMs / 1000).toFixed(2)} s, floors reading ${(f.reading_floor_ms / 1000).toFixed(2)} / purge ${(f.purge_floor_ms / 1000).toFixed(2)} / ` +
      `stream ${(f.stream_floor_ms / 1000).toFixed(2)} / mix ${(f.mix_floor_ms / 1000).toFixed(2)} s → ${row.achieved_ratio.toFixed(2)}× the better; ` +
      `calls ${calls} / unique ${f.unique_min_calls} (${row.calls_ratio.toFixed(2)}×; stream-everything ${f.stream_calls}), refused ${row.bucket_refusals}, dry run ${dryRunCalls ?? '—'}`);
    return row;
  } finally {
    await sys.close();
  }
}

const rows = [];
for (const c of CASES) rows.push(await runCase(c));
writeResult(process.env.BENCH_RESULT_NAME ?? 'plans', {
  build: BUILD.label,
  rule: RULE,
  locales: LOCALES,
  contentstack_rate_per_second: CS_RATE,
  page_size: PAGE,
  group_pages: GROUP_PAGES,
  plans_source: PLANS,
  free_scaled: FREE_SCALED,
  poll_ms: POLL_MS,
  rows,
});
