// Several zones and warming after the purge (docs/CONTRACT.md, "Several zones" and "Warm after the
// purge"), against the compiled Worker in Miniflare with the tests' harness (devkit/harness/system.mjs;
// setups as in tests/zones.test.mjs and tests/warm.test.mjs).
//
// 1. Purge calls per zone ÷ the per-zone minimum. One rule with two zones (www.example.com → the
//    .com zone, *.example.de → the .de zone), per entry one KV key, one tag (`cs-{uid}`, sent to
//    both zones) and one URL (`{base_url}e/{uid}`, sent to the zone of its host: en-us on .com,
//    de-de on .de). A job of ENTRIES entries × 2 locales, second pass off (REPURGE_DELAY_SECONDS 0:
//    the first pass only). From the fake Cloudflare's purge log (calls answered 200): per zone, the
//    calls made ÷ Σ over kinds (tags, URLs) of ⌈unique items sent to that zone in that kind ÷ batch⌉.
//    Also the dry run's `purge_calls` (the Worker's own count of the calls it will make).
// 2. Warm pace. One rule with `warm: WARM`, `warm_rate: WARM_RATE` over a fake site (its URLs
//    `{base_url}e/{uid}`), WORKERS_PLAN free (45 fetches per invocation), so warming spans many
//    invocations. At the site, the warm requests (User-Agent ending in `(warm)`): pace = (requests
//    − 1) ÷ (last arrival − first arrival), ÷ warm_rate; and the most that arrived within any 1000 ms.
//
// Writes target/bench/results/<BENCH_RESULT_NAME, default zones-warm>.json.
import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { kvKeyOf, seedKeys, listAllKeys } from '../devkit/harness/kv.mjs';
import { addJob, setBaseUrl } from '../devkit/fakes/stack.mjs';
import { writeResult, quantile } from './common.mjs';

const ADMIN = 'bench-admin-token';
const RESULT_NAME = process.env.BENCH_RESULT_NAME ?? 'zones-warm';
const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

// ---- 1. several zones -----------------------------------------------------------------------

const COM = 'zone0com00000000000000000000000000';
const DE = 'zone0de000000000000000000000000000';
const ZONE_NAMES = { [COM]: 'www.example.com', [DE]: '*.example.de' };
const ENTRIES = 300;
const ZONE_LOCALES = ['en-us', 'de-de'];
const PURGE_BATCH_SIZE = 100; // the Worker's default (not Enterprise)
const PAGE = 100; // job items per page (the API maximum)

async function zones() {
  const zoneList = [
    { zone_id: COM, hosts: ['www.example.com'] },
    { zone_id: DE, hosts: ['*.example.de'] },
  ];
  const rules = {
    production: {
      zones: zoneList,
      kv_binding: 'CONTENT_KV',
      entry: {
        kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
        tags: ['cs-{uid}'],
        urls: ['{base_url}e/{uid}'],
      },
    },
  };
  const sys = await startSystem({
    rules,
    adminToken: ADMIN,
    cloudflare: { zoneHosts: Object.fromEntries(zoneList.map((z) => [z.zone_id, z.hosts])) },
    vars: { PURGE_BATCH_SIZE, QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, REPURGE_DELAY_SECONDS: 0 },
  });
  try {
    setBaseUrl(sys.stack, 'production', { 'en-us': 'https://www.example.com/', 'de-de': 'https://www.example.de/' });
    const kv = await sys.w.kv();
    const job = addJob(sys.stack, { locales: ZONE_LOCALES, entries: ENTRIES });
    await seedKeys(kv, job.items.map((it) => kvKeyOf('production', it)));

    const planRes = await sys.w.fetch('/api/plan', { method: 'POST', headers: auth, body: JSON.stringify({ job_id: job.jobId }) });
    if (planRes.status !== 200) throw new Error(`dry run answered ${planRes.status}: ${await planRes.text()}`);
    const plan = await planRes.json();

    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120_000 });
    const wallMs = Date.parse(rec.finished_at) - t0;
    if (rec.status !== 'done') throw new Error(`zones job ended ${rec.status}: ${JSON.stringify(rec.errors)}`);
    const kvLeft = (await listAllKeys(kv, 'production:')).length;

    const all = sys.cf.purges;
    const ok = all.filter((p) => p.status === 200);
    const perZone = [COM, DE].map((zone) => {
      const mine = ok.filter((p) => p.zoneId === zone);
      const kinds = {};
      for (const mode of [...new Set(mine.map((p) => p.mode))].sort()) {
        const calls = mine.filter((p) => p.mode === mode);
        const sent = calls.reduce((a, p) => a + p.items.length, 0);
        const unique = new Set(calls.flatMap((p) => p.items)).size;
        kinds[mode] = {
          calls: calls.length,
          items_sent: sent,
          unique_items: unique,
          min_calls: Math.ceil(unique / PURGE_BATCH_SIZE),
          largest_call: Math.max(...calls.map((p) => p.items.length)),
          batch_sizes: calls.map((p) => p.items.length),
        };
      }
      const calls = mine.length;
      const min = Object.values(kinds).reduce((a, k) => a + k.min_calls, 0);
      return {
        zone_id: zone,
        hosts: zoneList.find((z) => z.zone_id === zone).hosts,
        calls,
        min_calls: min,
        ratio: calls / min,
        kinds,
        refused: all.filter((p) => p.zoneId === zone && p.status !== 200).length,
        record: rec.purged.by_zone?.[zone] ?? null,
      };
    });
    const calls = perZone.reduce((a, z) => a + z.calls, 0);
    const min = perZone.reduce((a, z) => a + z.min_calls, 0);
    return {
      entries: ENTRIES,
      locales: ZONE_LOCALES,
      items: job.items.length,
      item_pages: Math.ceil(job.items.length / PAGE),
      purge_batch_size: PURGE_BATCH_SIZE,
      repurge_delay_seconds: 0,
      rule: rules.production,
      status: rec.status,
      wall_ms: wallMs,
      kv_keys_left: kvLeft,
      misrouted: sys.cf.misrouted,
      purge_calls: calls,
      min_purge_calls: min,
      ratio: calls / min,
      calls_not_200: all.length - ok.length,
      dry_run_purge_calls: plan.purge_calls,
      record_api_calls: rec.purged.api_calls,
      per_zone: perZone,
    };
  } finally {
    await sys.close();
  }
}

// ---- 2. warm pace ---------------------------------------------------------------------------

const WARM_ZONE = 'zone0warm000000000000000000000000';
const WARM = 300;
const WARM_RATE = 20;
const WARM_ENTRIES = 150; // × 2 locales = 300 URLs
const FREE_FETCHES = 45; // the Free plan's budget per invocation (WORKERS_PLAN free)

async function warm() {
  const rules = {
    production: {
      zone_id: WARM_ZONE,
      kv_binding: 'CONTENT_KV',
      entry: { kv_keys: ['{environment}:{locale}:entry:{uid}'], urls: ['{base_url}e/{uid}'] },
      warm: WARM,
      warm_rate: WARM_RATE,
    },
  };
  const sys = await startSystem({
    rules,
    adminToken: ADMIN,
    site: { environments: ['production'] },
    vars: { WORKERS_PLAN: 'free', REPURGE_DELAY_SECONDS: 0, QUEUE_MAX_ATTEMPTS: 5, RETRY_BASE_SECONDS: 0 },
  });
  try {
    const { w, stack, site } = sys;
    const job = addJob(stack, { locales: ['en-us', 'fr-fr'], entries: WARM_ENTRIES });
    const t0 = Date.now();
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(w, job.jobId, { token: ADMIN, timeoutMs: 180_000 });
    if (rec.status !== 'done') throw new Error(`warm job ended ${rec.status}: ${JSON.stringify(rec.errors)}`);

    const isWarm = (r) => /\(warm\)$/.test(r.headers['user-agent'] ?? '');
    const reqs = site.requests.filter(isWarm);
    const at = reqs.map((r) => r.at).sort((a, b) => a - b);
    if (at.length < 2) throw new Error(`${at.length} warm request(s) reached the site`);
    const spanMs = at.at(-1) - at[0];
    const pace = (at.length - 1) / (spanMs / 1000);
    // The most arrivals within any 1000 ms: a window [at[j], at[j] + 1000) slid over the arrivals.
    let most = 0;
    let mostAt = 0;
    for (let i = 0, j = 0; i < at.length; i++) {
      while (at[i] - at[j] >= 1000) j++;
      if (i - j + 1 > most) {
        most = i - j + 1;
        mostAt = at[j] - at[0];
      }
    }
    const gaps = at.slice(1).map((t, i) => t - at[i]).sort((a, b) => a - b);
    const inv = w.events('invocation').filter((e) => e.job_id === job.jobId && e.step === 'warm');
    const wr = rec.warm?.production ?? null;
    return {
      warm: WARM,
      warm_rate: WARM_RATE,
      urls: job.items.length,
      workers_plan: 'free',
      fetches_per_invocation: FREE_FETCHES,
      repurge_delay_seconds: 0,
      rule: rules.production,
      status: rec.status,
      wall_ms: Date.parse(rec.finished_at) - t0,
      warm_requests: at.length,
      unique_paths: new Set(reqs.map((r) => r.path)).size,
      first_warm_after_webhook_ms: at[0] - t0,
      span_ms: spanMs,
      pace_per_second: pace,
      pace_ratio: pace / WARM_RATE,
      // The floor of the span at warm_rate: (requests − 1) starts, each 1 s ÷ warm_rate after the one before.
      min_span_ms: ((at.length - 1) / WARM_RATE) * 1000,
      max_in_1000ms: most,
      max_in_1000ms_from_ms: mostAt,
      gap_ms: {
        min: gaps[0],
        p50: quantile(gaps, 0.5),
        p90: quantile(gaps, 0.9),
        max: gaps.at(-1),
        target: 1000 / WARM_RATE,
        below_target: gaps.filter((g) => g < 1000 / WARM_RATE).length,
      },
      invocations: {
        count: inv.length,
        largest_fetch: Math.max(0, ...inv.map((e) => e.fetch ?? 0)),
      },
      record: wr,
    };
  } finally {
    await sys.close();
  }
}

const result = { zones: await zones(), warm: await warm() };
writeResult(RESULT_NAME, result);

const z = result.zones;
const wm = result.warm;
console.error(`zones-warm: zones ${z.items} items: purge calls ${z.purge_calls} / minimum ${z.min_purge_calls} (${z.ratio.toFixed(2)}×; ` +
  z.per_zone.map((p) => `${ZONE_NAMES[p.zone_id]} ${p.calls}/${p.min_calls} = ${p.ratio.toFixed(2)}×`).join(', ') +
  `), dry run ${z.dry_run_purge_calls}, misrouted ${z.misrouted}, ${(z.wall_ms / 1000).toFixed(2)} s`);
console.error(`zones-warm: warm ${wm.warm_requests} requests at warm_rate ${wm.warm_rate}: ${wm.pace_per_second.toFixed(2)}/s ` +
  `(${wm.pace_ratio.toFixed(3)}× warm_rate) over ${(wm.span_ms / 1000).toFixed(2)} s, at most ${wm.max_in_1000ms} within 1000 ms, ` +
  `${wm.invocations.count} warm invocations (largest ${wm.invocations.largest_fetch} fetches)`);
