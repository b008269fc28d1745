// Platform limits and guarantees, black-box: the Worker against fakes that are as unkind as the real
// Contentstack and Cloudflare (purge token bucket, item limits per call, Retry-After, revoked tokens,
// branches, partially unsuccessful KV bulk deletes, hanging calls). Only observable behaviour is
// used — the admin API's job record, KV in Miniflare, the fakes' request logs and these log lines:
//
//   invocation  one per queue invocation: integer `fetch` (external HTTP fetches) and `service_ops`
//               (KV + Durable Object + Cache API + Queue operations, also given as `kv`,
//               `durable_object`, `cache`, `queue`), with `job_id`
//   redriven    the ledger's alarm drove a job that made no progress for PROGRESS_TIMEOUT_SECONDS
//   failed      a job ended failed
//
// and these job record fields besides the usual ones (status, environments, attempts, items, purged,
// errors): `first_pass_at`, `second_pass_at` (absent/null without a second purge pass), `drives`,
// `purged_by_environment` ({environment: counts}) and `api_key`.
//
// Every test first checks that its scenario really happened (the fault fired, the prefix really held
// more than one KV list page) and then checks exact outcomes. Budgets: SUBREQUEST_BUDGET and
// SERVICE_OPS_BUDGET default to 900 each. Run with: node --test --test-timeout=600000 tests/platform.test.mjs
import { test, describe, after, beforeEach } from 'node:test';
import fs from 'node:fs';
import assert from 'node:assert/strict';

import { waitFor, waitForFinal, waitForJob, getJob, listJobs, isFinal } from '../devkit/harness/worker.mjs';
import { startSystem, invocations, assertBudgets } from '../devkit/harness/system.mjs';
import { kvKeyOf, listPrefixOf, listAllKeys, seedKeys } from '../devkit/harness/kv.mjs';
import { makeStack, addJob } from '../devkit/fakes/stack.mjs';

const ADMIN = 'platform-admin-token';
const ZONE = 'zone0platform000000000000000000a';
const DEFAULT_BUDGET = 900;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const closers = [];
// What each scenario ended with, for RELIABILITY.md: test-output/platform.json.
const observed = [];
let scenario = '';
beforeEach((t) => {
  scenario = t.name;
});
after(async () => {
  for (const c of closers.reverse()) await c();
  fs.mkdirSync('test-output', { recursive: true });
  fs.writeFileSync('test-output/platform.json', JSON.stringify(observed, null, 2));
});

/** Starts the Worker and the fakes; the system is closed after the file. */
async function setup({ rules, vars = {}, cloudflare = true, stack, stacks } = {}) {
  const sys = await startSystem({
    rules,
    adminToken: ADMIN,
    cloudflare,
    stack,
    stacks,
    vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, ...vars },
  });
  closers.push(() => sys.close());
  return sys;
}

async function final(sys, job, timeoutMs = 180000) {
  const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs });
  const lines = invocations(sys.w, job.jobId);
  observed.push({
    scenario,
    status: rec.status,
    purged: rec.purged,
    environments: rec.environments,
    attempts: rec.attempts,
    drives: rec.drives,
    first_pass_at: rec.first_pass_at,
    second_pass_at: rec.second_pass_at,
    errors: rec.errors.slice(0, 2),
    invocations: lines.length,
    max_fetch: Math.max(0, ...lines.map((l) => l.fetch)),
    max_service_ops: Math.max(0, ...lines.map((l) => l.service_ops)),
    purge_calls_seen: sys.cf ? sys.cf.purges.length : 0,
    bucket_refusals: sys.cf ? sys.cf.bucketRefusals : 0,
  });
  return rec;
}
const envName = (stack, uid) => stack.environments.find((e) => e.uid === uid).name;
/** The job's items Contentstack published successfully, optionally in one environment. */
const okItems = (stack, job, env) =>
  job.items.filter((i) => i.publish_details.status === 'success' && (env === undefined || envName(stack, i.environment) === env));
const uniq = (xs) => [...new Set(xs)];

/** Successful purge calls of the fake, in start order. */
const okCalls = (cf, mode) => cf.purges.filter((p) => p.status === 200 && (mode === undefined || p.mode === mode)).sort((a, b) => a.at - b.at);

/** Polls the job record in the background: samples {sentAt, at, status}; stop() ends it. */
function watchStatus(w, jobId) {
  const samples = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const sentAt = Date.now();
      const j = await getJob(w, jobId, ADMIN).catch(() => null);
      samples.push({ sentAt, at: Date.now(), status: j?.status });
      if (isFinal(j)) return;
      await sleep(100);
    }
  })();
  return { samples, async stop() { stopped = true; await loop; } };
}

// ---------------------------------------------------------------------------------------------
describe('KV prefix sweeps larger than one list page, within the per-invocation budgets', () => {
  const PREFIX = 'production:en-us:list:blog:';
  const RULES = {
    production: {
      kv_binding: 'CONTENT_KV',
      on_failure: ['kv_prefix:production:en-us:list:blog:'],
      entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'], kv_prefixes: ['{environment}:{locale}:list:{content_type}:'] },
    },
  };
  // Near misses of the prefix, and other environments' and locales' lists: all must stay.
  const UNRELATED = ['production:en-us:list:blogx:1', 'production:en-us:list:blo', 'production:fr-fr:list:blog:1', 'staging:en-us:list:blog:1', 'config:site'];
  const LIST_KEYS = 2600;

  async function seedSweep(sys, job) {
    const kv = await sys.w.kv();
    const listKeys = Array.from({ length: LIST_KEYS }, (_, i) => `${PREFIX}page${String(i).padStart(5, '0')}`);
    const entryKeys = okItems(sys.stack, job).map((it) => kvKeyOf('production', it));
    await seedKeys(kv, [...listKeys, ...entryKeys, ...UNRELATED]);
    const held = await listAllKeys(kv, PREFIX);
    assert.equal(held.length, LIST_KEYS, 'the prefix holds the seeded keys');
    assert.ok(held.length > 1000, 'more than one KV list page');
    return { kv, entryKeys };
  }

  async function sweep(vars) {
    const sys = await setup({ rules: RULES, vars, stack: makeStack({ contentTypes: ['blog'] }) });
    const job = addJob(sys.stack, { entries: 5 });
    const { kv, entryKeys } = await seedSweep(sys, job);
    await sys.deliver(job, 'production');
    const rec = await final(sys, job, 300000);
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.deepEqual(await listAllKeys(kv, PREFIX), [], 'every key under the prefix is gone');
    for (const k of entryKeys) assert.equal(await kv.get(k), null, k);
    for (const k of UNRELATED) assert.equal(await kv.get(k), 'cached', `unrelated ${k} kept`);
    assert.equal(rec.purged.kv_prefix_keys, LIST_KEYS);
    assert.equal(rec.purged.kv_keys, entryKeys.length);
    return { sys, job, rec };
  }

  test('2,600 keys under one prefix with the default budgets', async () => {
    const { sys, job } = await sweep({});
    const lines = assertBudgets(sys.w, { jobId: job.jobId });
    // Each delete is one service operation, so 2,600 deletes cannot fit in fewer than 3 invocations.
    assert.ok(lines.length >= Math.ceil(LIST_KEYS / DEFAULT_BUDGET), `${lines.length} invocations`);
  });

  test('SERVICE_OPS_BUDGET 300: the sweep hands on across invocations and still ends exact', async () => {
    const { sys, job } = await sweep({ SERVICE_OPS_BUDGET: 300 });
    const lines = assertBudgets(sys.w, { jobId: job.jobId, serviceOps: 300 });
    assert.ok(lines.length > 1, 'handed on');
    assert.ok(lines.length >= Math.ceil(LIST_KEYS / 300), `${lines.length} invocations for ${LIST_KEYS} deletes`);
  });

  test('an on_failure sweep of 2,600 keys when the job cannot be resolved', async () => {
    const sys = await setup({ rules: RULES, vars: { QUEUE_MAX_ATTEMPTS: 2, RETRY_BASE_SECONDS: 0 }, stack: makeStack({ contentTypes: ['blog'] }) });
    const job = addJob(sys.stack, { entries: 5 });
    const { kv } = await seedSweep(sys, job);
    const statusPath = `/v3/bulk/jobs/${job.jobId}`;
    const fault = sys.cs.fault({ path: statusPath, status: 500, times: 100000 });
    await sys.deliver(job, 'production');
    const rec = await final(sys, job, 300000);
    assert.ok(fault.hits >= 1, 'the fault fired');
    assert.ok(!sys.cs.requests.some((r) => r.path === statusPath && r.status === 200), 'the job status never answered');
    assert.equal(rec.status, 'failed');
    assert.ok(sys.w.events('failed').some((e) => e.job_id === job.jobId), 'a failed log line');
    assert.deepEqual(await listAllKeys(kv, PREFIX), [], 'every key under the on_failure prefix is gone');
    for (const k of UNRELATED) assert.equal(await kv.get(k), 'cached', `unrelated ${k} kept`);
    assert.equal(rec.purged.kv_prefix_keys, LIST_KEYS);
    assertBudgets(sys.w);
  });
});

// ---------------------------------------------------------------------------------------------
describe('one job, one delivery per environment', () => {
  const RULES = {
    production: { zone_id: ZONE, kv_binding: 'CONTENT_KV', entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'], tags: ['cs-{environment}-{uid}'] }, asset: { kv_keys: ['{environment}:asset:{uid}'], tags: ['cs-{environment}-{uid}'] } },
    staging: { zone_id: ZONE, kv_binding: 'CONTENT_KV', entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'], tags: ['cs-{environment}-{uid}'] }, asset: { kv_keys: ['{environment}:asset:{uid}'], tags: ['cs-{environment}-{uid}'] } },
  };

  /** Both environments' keys gone, both environments' tags purged exactly once, the record right. */
  async function checkBoth(sys, job, kv, rec) {
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.deepEqual([...rec.environments].sort(), ['production', 'staging']);
    assert.equal(rec.attempts, 1);
    const tags = okCalls(sys.cf, 'tags').flatMap((p) => p.items);
    for (const env of ['production', 'staging']) {
      const items = okItems(sys.stack, job, env);
      for (const it of items) assert.equal(await kv.get(kvKeyOf(env, it)), null, kvKeyOf(env, it));
      const want = uniq(items.map((it) => `cs-${env}-${it.uid}`)).sort();
      assert.deepEqual(tags.filter((t) => t.startsWith(`cs-${env}-`)).sort(), want, `${env} tags, each once`);
      assert.equal(rec.purged_by_environment[env].kv_keys, uniq(items.map((it) => kvKeyOf(env, it))).length, `${env} KV count`);
      assert.equal(rec.purged_by_environment[env].tags, want.length, `${env} tag count`);
    }
    assert.equal(await kv.get('keep:me'), 'cached');
    const list = await listJobs(sys.w, ADMIN, { limit: 100 });
    assert.deepEqual(list.filter((j) => ['accepted', 'processing'].includes(j.status)).map((j) => j.job_id), [], 'nothing left accepted/processing');
  }

  async function prepare(sys) {
    const job = addJob(sys.stack, { environments: ['production', 'staging'], entries: 12, assets: 3 });
    const kv = await sys.w.kv();
    await seedKeys(kv, [...job.items.map((it) => kvKeyOf(envName(sys.stack, it.environment), it)), 'keep:me']);
    return { job, kv };
  }
  const bothListed = (sys, job) => waitForJob(sys.w, job.jobId, (j) => isFinal(j) && j.environments.length === 2, {
    token: ADMIN,
    what: 'the job to finish with both environments',
    timeoutMs: 180000,
  });

  test('sent concurrently: both accepted, both purged, one record', async () => {
    const sys = await setup({ rules: RULES });
    const { job, kv } = await prepare(sys);
    const [a, b] = await Promise.all([sys.deliver(job, 'production'), sys.deliver(job, 'staging')]);
    assert.deepEqual([a.json.status, b.json.status], ['accepted', 'accepted']);
    await checkBoth(sys, job, kv, await bothListed(sys, job));
  });

  test('sent one after the other (the second after the first is done): the job reopens and ends done', async () => {
    const sys = await setup({ rules: RULES });
    const { job, kv } = await prepare(sys);
    const a = await sys.deliver(job, 'production');
    assert.equal(a.json.status, 'accepted');
    const first = await final(sys, job);
    assert.equal(first.status, 'done');
    assert.deepEqual(first.environments, ['production']);
    const b = await sys.deliver(job, 'staging');
    assert.equal(b.json.status, 'accepted');
    await checkBoth(sys, job, kv, await bothListed(sys, job));
  });
});

// ---------------------------------------------------------------------------------------------
describe('KV before the CDN', () => {
  test('every purge call names an item only after its KV keys and list prefixes are gone', async () => {
    const rules = {
      production: {
        zone_id: ZONE,
        kv_binding: 'CONTENT_KV',
        resolve_urls: true,
        entry: {
          kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
          kv_prefixes: ['{environment}:{locale}:list:{content_type}:'],
          tags: ['cs-{uid}', 'cs-ct-{content_type}'],
          urls: ['{base_url}{url}'],
        },
        asset: { kv_keys: ['{environment}:asset:{uid}'], tags: ['cs-{uid}'], urls: ['{url}'] },
      },
    };
    let kvRef;
    const byName = new Map(); // tag or URL naming an item -> the KV keys and list prefixes that must be gone
    const violations = [];
    let checks = 0;
    const sys = await setup({
      rules,
      vars: { HTTP_TIMEOUT_MS: 30000 },
      cloudflare: {
        onPurge: async (p) => {
          for (const name of p.items) {
            const need = byName.get(name);
            if (!need) continue; // a content-type tag names no single item
            checks += 1;
            for (const k of need.keys) if ((await kvRef.get(k)) !== null) violations.push(`${name} purged while KV key ${k} exists`);
            for (const pre of need.prefixes) {
              if ((await kvRef.list({ prefix: pre, limit: 1 })).keys.length) violations.push(`${name} purged while list prefix ${pre} holds keys`);
            }
          }
        },
      },
    });
    const { stack, cf, w } = sys;
    kvRef = await w.kv();
    const job = addJob(stack, { locales: ['en-us', 'fr-fr'], entries: 20, assets: 4, failedEvery: 9 });
    const base = (locale) => stack.environments[0].urls.find((u) => u.locale === locale).url;
    const need = (name) => byName.get(name) ?? byName.set(name, { keys: new Set(), prefixes: new Set() }).get(name);
    const seeded = [];
    for (const it of okItems(stack, job)) {
      const key = kvKeyOf('production', it);
      const names = [`cs-${it.uid}`];
      const n = { keys: [key], prefixes: [] };
      if (it.type === 'entry') {
        const prefix = listPrefixOf('production', it);
        n.prefixes.push(prefix);
        seeded.push(`${prefix}page1`, `${prefix}page2`);
        const url = stack.entries.get(it.uid).url;
        names.push(base(it.publish_locale).replace(/\/$/, '') + url);
      } else names.push(stack.assets.get(it.uid).url);
      seeded.push(key);
      for (const name of names) {
        const x = need(name);
        n.keys.forEach((k) => x.keys.add(k));
        n.prefixes.forEach((p) => x.prefixes.add(p));
      }
    }
    await seedKeys(kvRef, [...seeded, 'keep:me']);
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.ok(okCalls(cf).length > 0, 'purge calls were made');
    assert.ok(checks > 0, 'the hook checked items');
    assert.equal(checks, okCalls(cf).flatMap((p) => p.items).filter((n) => byName.has(n)).length, 'every item-naming name was checked');
    assert.deepEqual(cf.hookErrors, []);
    assert.deepEqual(violations, []);
    assert.equal(await kvRef.get('keep:me'), 'cached');
  });
});

// ---------------------------------------------------------------------------------------------
describe('second purge pass', () => {
  const RULES = {
    production: {
      zone_id: ZONE,
      kv_binding: 'CONTENT_KV',
      entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'], tags: ['cs-{uid}'] },
    },
  };

  async function run(repurge) {
    const sys = await setup({ rules: RULES, vars: { REPURGE_DELAY_SECONDS: repurge } });
    const job = addJob(sys.stack, { entries: 8 });
    const kv = await sys.w.kv();
    const keys = okItems(sys.stack, job).map((it) => kvKeyOf('production', it));
    await seedKeys(kv, [...keys, 'other:keep']);
    const tags = uniq(okItems(sys.stack, job).map((it) => `cs-${it.uid}`)).sort();
    return { sys, job, kv, keys, tags };
  }

  test('REPURGE_DELAY_SECONDS 3: the same purge set again ≥3 s after the last KV delete; done only after it', async () => {
    const { sys, job, kv, tags } = await run(3);
    // Watch KV: the last poll that still saw a job key was sent before the last delete happened.
    let lastSeenSent = 0;
    let kvGone = false;
    let stopKvWatch = false;
    const kvWatch = (async () => {
      while (!kvGone && !stopKvWatch) {
        const sent = Date.now();
        if ((await listAllKeys(kv, 'production:')).length > 0) lastSeenSent = sent;
        else kvGone = true;
        await sleep(25);
      }
    })();
    const watch = watchStatus(sys.w, job.jobId);
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    stopKvWatch = true;
    await watch.stop();
    await kvWatch;
    assert.ok(kvGone, 'the job keys are gone');
    assert.ok(lastSeenSent > 0, 'the KV watch saw the keys before they went');
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));

    // Two passes: split the successful tag calls at their largest gap.
    const calls = okCalls(sys.cf, 'tags');
    assert.ok(calls.length >= 2, `${calls.length} calls`);
    let cut = 1;
    for (let i = 1; i < calls.length; i++) if (calls[i].at - calls[i - 1].at > calls[cut].at - calls[cut - 1].at) cut = i;
    const [first, second] = [calls.slice(0, cut), calls.slice(cut)];
    const names = (cs) => cs.flatMap((p) => p.items).sort();
    assert.deepEqual(names(first), tags, 'first pass: each tag once');
    assert.deepEqual(names(second), tags, 'second pass: the same set, each once');
    assert.ok(second[0].at >= lastSeenSent + 3000, `second pass ${second[0].at - lastSeenSent} ms after KV still held a key`);

    assert.ok(rec.first_pass_at && rec.second_pass_at, JSON.stringify({ first: rec.first_pass_at, second: rec.second_pass_at }));
    assert.ok(Date.parse(rec.first_pass_at) < Date.parse(rec.second_pass_at));
    // Status: processing between the passes, done only after the second pass was answered.
    const firstEnd = Math.max(...first.map((p) => p.answeredAt));
    const secondEnd = Math.max(...second.map((p) => p.answeredAt));
    assert.ok(watch.samples.some((s) => s.status === 'processing' && s.sentAt >= firstEnd && s.at <= second[0].at), 'processing observed between the passes');
    for (const s of watch.samples.filter(isFinal)) assert.ok(s.at >= secondEnd, 'final before the second pass');
  });

  test('REPURGE_DELAY_SECONDS 0: purged once, no second pass', async () => {
    const { sys, job, tags } = await run(0);
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    await sleep(2000); // nothing comes later either
    assert.deepEqual(okCalls(sys.cf, 'tags').flatMap((p) => p.items).sort(), tags, 'each tag purged once');
    assert.equal(rec.second_pass_at ?? null, null);
    assert.equal((await getJob(sys.w, job.jobId, ADMIN)).status, 'done');
  });
});

// ---------------------------------------------------------------------------------------------
describe('the purge token bucket and per-call limits', () => {
  const tagRule = (extra = {}) => ({ production: { zone_id: ZONE, entry: { tags: ['cs-{uid}'] }, ...extra } });
  // The harness sets PURGE_RATE_PER_SECOND for suites that do not care; here the plan decides.
  const planVars = (plan, more = {}) => ({ CLOUDFLARE_PLAN: plan, PURGE_RATE_PER_SECOND: undefined, PURGE_BURST: undefined, ...more });

  test('pro (5/s, burst 25) and 60 purge calls: the burst at once, then the rate, never refused', async () => {
    const sys = await setup({ rules: tagRule(), vars: planVars('pro', { PURGE_BATCH_SIZE: 1 }), cloudflare: { bucket: { rate: 5, burst: 25 } } });
    const job = addJob(sys.stack, { entries: 60 });
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    assert.equal(sys.cf.bucketRefusals, 0, 'a call was refused by the bucket');
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const calls = okCalls(sys.cf, 'tags');
    assert.equal(calls.length, 60);
    assert.deepEqual(calls.flatMap((p) => p.items).sort(), job.entries.map((e) => `cs-${e.uid}`).sort());
    // At the rate alone 20 calls take 4 s; with the burst they start together.
    assert.ok(calls[19].at - calls[0].at < 2000, `the first 20 calls took ${calls[19].at - calls[0].at} ms`);
    assert.equal(rec.purged.api_calls, 60);
    assertBudgets(sys.w);
  });

  test('more than 100 tags with PURGE_BATCH_SIZE 100: no call above 100 tags, none refused', async () => {
    const sys = await setup({ rules: tagRule(), vars: planVars('pro', { PURGE_BATCH_SIZE: 100 }), cloudflare: { bucket: { rate: 5, burst: 25 } } });
    const job = addJob(sys.stack, { entries: 250 });
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.ok(sys.cf.purges.every((p) => p.status === 200), JSON.stringify(sys.cf.purges.map((p) => p.status)));
    assert.equal(sys.cf.bucketRefusals, 0);
    const calls = okCalls(sys.cf, 'tags');
    for (const c of calls) assert.ok(c.items.length <= 100, `${c.items.length} tags in one call`);
    assert.equal(calls.length, 3);
    assert.equal(calls.flatMap((p) => p.items).length, 250);
    assertBudgets(sys.w);
  });

  test('enterprise with PURGE_BATCH_SIZE 250: URLs go 250 a call, tags still at most 100', async () => {
    const rules = tagRule({ entry: { tags: ['cs-{uid}'], urls: ['https://www.example.com/e/{uid}'] } });
    const sys = await setup({
      rules,
      vars: planVars('enterprise', { PURGE_BATCH_SIZE: 250 }),
      cloudflare: { bucket: { rate: 50, burst: 500 }, maxFilesPerCall: 500 },
    });
    const job = addJob(sys.stack, { entries: 300 });
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.ok(sys.cf.purges.every((p) => p.status === 200));
    const files = okCalls(sys.cf, 'files');
    assert.deepEqual(files.map((p) => p.items.length).sort((a, b) => b - a), [250, 50]);
    for (const c of okCalls(sys.cf, 'tags')) assert.ok(c.items.length <= 100, `${c.items.length} tags in one call`);
    assert.equal(okCalls(sys.cf, 'tags').flatMap((p) => p.items).length, 300);
  });

  test('PURGE_BATCH_SIZE 101 without enterprise is misconfigured at intake', async () => {
    const sys = await setup({ rules: tagRule(), vars: planVars('pro', { PURGE_BATCH_SIZE: 101 }) });
    const job = addJob(sys.stack, { entries: 1 });
    const r = await sys.deliver(job, 'production', { expect: 500 });
    assert.equal(r.json.error, 'misconfigured');
    await sleep(1000);
    assert.equal(sys.cs.requests.filter((x) => x.path.startsWith('/v3/')).length, 0, 'nothing was processed');
    assert.equal(sys.cf.purges.length, 0);
  });
});

// ---------------------------------------------------------------------------------------------
describe('Cloudflare answers', () => {
  test('purge_mode "invalidate" uses invalidate_cache only', async () => {
    const rules = { production: { zone_id: ZONE, purge_mode: 'invalidate', entry: { tags: ['cs-{uid}'], urls: ['https://www.example.com/e/{uid}'] } } };
    const sys = await setup({ rules });
    const job = addJob(sys.stack, { entries: 40 });
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.ok(sys.cf.purges.length > 0);
    assert.deepEqual(uniq(sys.cf.purges.map((p) => p.endpoint)), ['invalidate_cache']);
    assert.deepEqual(sys.cf.purged('tags', ZONE, 'invalidate_cache').sort(), job.entries.map((e) => `cs-${e.uid}`).sort());
    assert.deepEqual(sys.cf.purged('files', ZONE, 'invalidate_cache').sort(), job.entries.map((e) => `https://www.example.com/e/${e.uid}`).sort());
    assert.deepEqual(sys.cf.purged('tags', undefined, 'purge_cache'), []);
  });

  test('a purge 429 with Retry-After: 45: nothing is sent again sooner, and the job completes', async () => {
    const sys = await setup({ rules: { production: { zone_id: ZONE, entry: { tags: ['cs-{uid}'] } } } });
    const job = addJob(sys.stack, { entries: 5 });
    const fault = sys.cf.fault({ path: '/purge_cache', status: 429, retryAfter: 45, times: 1 });
    await sys.deliver(job, 'production');
    const rec = await final(sys, job, 300000);
    assert.equal(fault.hits, 1, 'the 429 fired');
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    const refused = sys.cf.purges.find((p) => p.status === 429);
    const later = sys.cf.purges.filter((p) => p.at > refused.at);
    assert.ok(later.length >= 1, 'the call was retried');
    for (const p of later) assert.ok(p.at - refused.answeredAt >= 45000, `a purge call ${p.at - refused.answeredAt} ms after the 429`);
    assert.deepEqual(sys.cf.purged('tags').sort(), job.entries.map((e) => `cs-${e.uid}`).sort());
  });
});

// ---------------------------------------------------------------------------------------------
describe('Contentstack answers', () => {
  test('a revoked management token: failed at once (one job-status call), the 401 named, on_failure ran', async () => {
    const rules = { production: { zone_id: ZONE, kv_binding: 'CONTENT_KV', on_failure: ['tag:cs-{environment}-all'], entry: { tags: ['cs-{uid}'] } } };
    const sys = await setup({ rules, vars: { QUEUE_MAX_ATTEMPTS: 5 } });
    const job = addJob(sys.stack, { entries: 3 });
    sys.cs.revokeToken(sys.stack.apiKey);
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    await sleep(1500); // nothing retried later either
    const statusCalls = sys.cs.requests.filter((r) => r.path === `/v3/bulk/jobs/${job.jobId}`);
    assert.deepEqual(statusCalls.map((r) => r.status), [401], 'exactly one job-status request, answered 401');
    assert.equal(sys.cs.requests.filter((r) => r.path.endsWith('/items')).length, 0);
    assert.equal(rec.status, 'failed');
    assert.ok(rec.errors.some((e) => /401/.test(typeof e === 'string' ? e : JSON.stringify(e))), JSON.stringify(rec.errors));
    assert.deepEqual(sys.cf.purged('tags'), ['cs-production-all'], 'the on_failure purge, once');
  });

  test('a job on branch develop: every call about its items and entries carries branch: develop', async () => {
    const rules = {
      production: {
        zone_id: ZONE,
        kv_binding: 'CONTENT_KV',
        resolve_urls: true,
        entry: { kv_keys: ['{environment}:{locale}:entry:{uid}'], tags: ['cs-{branch}-{uid}'], urls: ['{base_url}{url}'] },
        asset: { tags: ['cs-{branch}-{uid}'], urls: ['{url}'] },
      },
    };
    const sys = await setup({ rules });
    const job = addJob(sys.stack, { branch: 'develop', entries: 6, assets: 2 });
    assert.equal(job.body.branch, 'develop');
    const kv = await sys.w.kv();
    await seedKeys(kv, job.entries.map((e) => `production:en-us:entry:${e.uid}`));
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    // Per-item look-ups (/entries/{uid}, /assets/{uid}) and batched ones (/entries?query=, /assets?query=).
    const about = sys.cs.requests.filter((r) => /\/items$|\/entries(\/|$)|\/assets(\/|$)/.test(r.path));
    assert.ok(about.some((r) => r.path.endsWith('/items')), 'items were read');
    assert.ok(about.some((r) => /\/entries(\/|$)/.test(r.path)), 'entries were read');
    assert.ok(about.some((r) => /\/assets(\/|$)/.test(r.path)), 'assets were read');
    for (const r of about) assert.equal(r.branch, 'develop', `${r.path} sent branch ${r.branch}`);
    // The job status is read before its branch is known; it may carry none or develop.
    for (const r of sys.cs.requests.filter((x) => x.path === `/v3/bulk/jobs/${job.jobId}`)) assert.ok([null, 'develop'].includes(r.branch));
    assert.deepEqual(sys.cf.purged('tags').sort(), [...job.entries, ...job.assets].map((x) => `cs-develop-${x.uid}`).sort());
    assert.equal(rec.purged.kv_keys, 6);
  });
});

// ---------------------------------------------------------------------------------------------
describe('several stacks', () => {
  test('rules scoped "<api_key>/production" win over the plain rule, each stack purging by its own', async () => {
    const A = makeStack({ apiKey: 'blt_platform_stack_a', token: 'cs_token_a' });
    const B = makeStack({ apiKey: 'blt_platform_stack_b', token: 'cs_token_b' });
    const rule = (zone, p) => ({ zone_id: zone, kv_binding: 'CONTENT_KV', entry: { kv_keys: [`${p}:{locale}:{uid}`], tags: [`${p}-{uid}`] } });
    const rules = {
      [`${A.apiKey}/production`]: rule('zone-a', 'a'),
      [`${B.apiKey}/production`]: rule('zone-b', 'b'),
      production: rule('zone-plain', 'plain'),
    };
    const sys = await setup({ rules, stacks: [A, B] });
    const jobA = addJob(A, { entries: 4 });
    const jobB = addJob(B, { entries: 3 });
    const kv = await sys.w.kv();
    const keys = (p, job) => job.entries.map((e) => `${p}:en-us:${e.uid}`);
    // Every job's uids under every prefix: only the job's own stack's prefix may go.
    await seedKeys(kv, ['a', 'b', 'plain'].flatMap((p) => [...keys(p, jobA), ...keys(p, jobB)]));
    await Promise.all([sys.deliver(jobA, 'production'), sys.deliver(jobB, 'production')]);
    const [recA, recB] = [await final(sys, jobA), await final(sys, jobB)];
    for (const [rec, stack] of [[recA, A], [recB, B]]) {
      assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
      assert.equal(rec.api_key, stack.apiKey);
    }
    assert.deepEqual(sys.cf.purged('tags', 'zone-a').sort(), jobA.entries.map((e) => `a-${e.uid}`).sort());
    assert.deepEqual(sys.cf.purged('tags', 'zone-b').sort(), jobB.entries.map((e) => `b-${e.uid}`).sort());
    assert.deepEqual(uniq(sys.cf.purges.map((p) => p.zoneId)).sort(), ['zone-a', 'zone-b']);
    const left = new Set(await listAllKeys(kv));
    const gone = new Set([...keys('a', jobA), ...keys('b', jobB)]);
    for (const k of ['a', 'b', 'plain'].flatMap((p) => [...keys(p, jobA), ...keys(p, jobB)])) {
      assert.equal(left.has(k), !gone.has(k), `${k} should ${gone.has(k) ? 'be gone' : 'remain'}`);
    }
    assert.equal(recA.purged.kv_keys, 4);
    assert.equal(recB.purged.kv_keys, 3);
    // Each stack's calls were made with its own api_key and token (the fake rejects anything else).
    for (const [stack, job] of [[A, jobA], [B, jobB]]) {
      const calls = sys.cs.requests.filter((r) => r.path.includes(job.jobId));
      assert.ok(calls.length > 0 && calls.every((r) => r.apiKey === stack.apiKey && r.status === 200));
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('KV REST bulk deletes', () => {
  test('keys a bulk delete reports unsuccessful are retried and end deleted', async () => {
    const NS = '0f2ac74b498b48028cb68387c421e279';
    let kvRef;
    const rules = {
      production: {
        kv_binding: 'CONTENT_KV',
        kv_namespace_id: NS,
        entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'], kv_prefixes: ['{environment}:{locale}:list:{content_type}:'] },
      },
    };
    const sys = await setup({
      rules,
      vars: { CLOUDFLARE_ACCOUNT_ID: 'acc123' },
      cloudflare: {
        unsuccessfulOnce: 7,
        onKvBulkDelete: async (account, ns, keys) => {
          if (account !== 'acc123' || ns !== NS) throw new Error(`bulk delete on ${account}/${ns}`);
          for (const k of keys) await kvRef.delete(k);
        },
      },
    });
    kvRef = await sys.w.kv();
    const job = addJob(sys.stack, { entries: 60 });
    const entryKeys = okItems(sys.stack, job).map((it) => kvKeyOf('production', it));
    const listKeys = uniq(job.entries.map((e) => e.content_type)).flatMap((ct) => Array.from({ length: 40 }, (_, i) => `production:en-us:list:${ct}:p${i}`));
    await seedKeys(kvRef, [...entryKeys, ...listKeys, 'production:en-us:list:other:p1', 'config:site']);
    await sys.deliver(job, 'production');
    const rec = await final(sys, job);
    const first = sys.cf.kvBulkDeletes.find((d) => d.status === 200);
    assert.ok(first, 'the bulk API was used');
    assert.equal(first.unsuccessful.length, 7, 'the first bulk delete reported 7 keys unsuccessful');
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    for (const k of first.unsuccessful) assert.equal(await kvRef.get(k), null, `${k} was not retried`);
    const left = await listAllKeys(kvRef);
    assert.deepEqual(left.sort(), ['config:site', 'production:en-us:list:other:p1']);
    assert.equal(rec.purged.kv_keys, entryKeys.length);
    assert.equal(rec.purged.kv_prefix_keys, listKeys.length);
  });
});

// ---------------------------------------------------------------------------------------------
describe('no job left behind', () => {
  test('a job stuck on a hanging call is driven again by the alarm and ends done, counted once', async () => {
    const rules = { production: { zone_id: ZONE, kv_binding: 'CONTENT_KV', entry: { kv_keys: ['{environment}:{locale}:entry:{uid}'], tags: ['cs-{uid}'] } } };
    const sys = await setup({ rules, vars: { PROGRESS_TIMEOUT_SECONDS: 3, HTTP_TIMEOUT_MS: 60000, QUEUE_MAX_ATTEMPTS: 5 } });
    const job = addJob(sys.stack, { entries: 20 });
    const kv = await sys.w.kv();
    const keys = job.entries.map((e) => `production:en-us:entry:${e.uid}`);
    await seedKeys(kv, [...keys, 'keep:me']);
    const HANG_MS = 10000;
    const hang = sys.cs.hang('/items', HANG_MS);
    await sys.deliver(job, 'production');
    await waitFor(() => sys.w.events('redriven').some((e) => e.job_id === job.jobId), { what: 'a redriven log line', timeoutMs: 60000 });
    assert.equal(hang.hits, 1, 'the items call hung');
    const rec = await final(sys, job);
    // Let the hung invocation finish too, then read the record again: its `invocation` line is
    // logged once its work is done (it started before the hung call and ended after the hang);
    // 4 s more let anything it handed on run.
    const hung = sys.cs.requests.find((r) => r.fault && r.path.endsWith('/items'));
    assert.ok(hung, 'the hung items call was recorded');
    await waitFor(
      () => invocations(sys.w, job.jobId).some((l) => l.started_ms <= hung.at + 100 && l.started_ms + l.duration_ms >= hung.at + HANG_MS - 100),
      { what: 'the hung invocation to finish', timeoutMs: 60000 },
    );
    await sleep(4000);
    const later = await getJob(sys.w, job.jobId, ADMIN);
    for (const r of [rec, later]) {
      assert.equal(r.status, 'done', JSON.stringify(r.errors));
      assert.ok(r.drives >= 1, `drives ${r.drives}`);
      assert.equal(r.purged.kv_keys, 20, 'KV keys counted once');
      assert.equal(r.purged.tags, 20, 'tags counted once');
    }
    for (const k of keys) assert.equal(await kv.get(k), null, k);
    assert.equal(await kv.get('keep:me'), 'cached');
    assert.deepEqual(uniq(sys.cf.purged('tags')).sort(), job.entries.map((e) => `cs-${e.uid}`).sort());
  });
});
