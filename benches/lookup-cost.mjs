// Look-up cost: what `resolve_urls` and a `references` section cost in Contentstack calls, next
// to the least any implementation could make, and the wall time of the demo's 620-item job.
//
// The compiled Worker runs in Miniflare against the fake Contentstack (10 requests per second
// per stack) and the fake Cloudflare API, as in job-cost.mjs.
//
// - URL look-ups: jobs of 600 items (two locales, two content types and assets) and 10,000 items
//   (four content types and assets, one locale). Minimum = the item pages + ⌈uids per content
//   type and locale / 100⌉ (+ ⌈asset uids / 100⌉).
// - Demo job: `publishProd` of tools/simulator.mjs's stack with the demo's rules, second pass off.
// - References: 20 changed authors, each referenced by three posts published to the environment
//   (and one published elsewhere), at depth 1 and 2. Minimum at depth 1: one look-up per changed
//   entry; at depth 2, one more per referrer followed.
//
// Writes target/bench/results/lookup-cost.json.
import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { makeStack, addJob, addEntry, addReference, publishEntry, makeDemoStack } from '../devkit/fakes/stack.mjs';
import { DEMO_RULES } from '../tools/demo-config.mjs';

/** The demo's production rule with one zone of this test's and no warming (its zones serve the demo's hosts). */
const oneZone = ({ zones, warm, warm_rate, ...rule }) => rule;
import { writeResult } from './common.mjs';

const ADMIN = 'bench-admin-token';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const CS_RATE = 10;
const BASE = 'https://www.example.com';
const VARS = { PURGE_RATE_PER_SECOND: 50, QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, REPURGE_DELAY_SECONDS: 0 };

const isQuery = (r) => /\/(entries|assets)$/.test(r.path) && r.url.includes('query=');
const isSingle = (r) => /^\/v3\/(content_types\/[^/]+\/entries|assets)\/[^/]+$/.test(r.path);
const isReferences = (r) => r.path.endsWith('/references');

/** Contentstack calls of one job, by kind. */
function calls(cs) {
  const api = cs.requests.filter((r) => r.path.startsWith('/v3/'));
  return {
    all: api.length,
    item_pages: api.filter((r) => r.path.endsWith('/items')).length,
    url_queries: api.filter(isQuery).length,
    single_lookups: api.filter(isSingle).length,
    references: api.filter(isReferences).length,
    rate_limited: cs.rateLimited,
  };
}

/** Item pages + ⌈uids per content type and locale / 100⌉, assets as one group. */
function urlMinimum(job) {
  const groups = new Map();
  for (const it of job.items) {
    if (it.publish_details.status !== 'success') continue;
    const k = it.type === 'asset' ? 'asset' : `${it.content_type.uid}/${it.locale}`;
    if (!groups.has(k)) groups.set(k, new Set());
    groups.get(k).add(it.uid);
  }
  const lookups = [...groups.values()].reduce((n, u) => n + Math.ceil(u.size / 100), 0);
  // Pages of successful items (the Worker asks for those only); paging stops at the first short
  // page: one more when the total is a multiple of 100.
  const success = job.items.filter((i) => i.publish_details.status === 'success').length;
  const pages = Math.floor(success / 100) + 1;
  return { item_pages: pages, url_queries: lookups };
}

async function runJob(sys, job, timeoutMs = 600000) {
  sys.cs.reset();
  sys.cf.reset();
  const t0 = performance.now();
  await sys.deliver(job, 'production');
  const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs, intervalMs: 25 });
  const wallMs = performance.now() - t0;
  if (rec.status !== 'done') throw new Error(`job ${job.jobId} ended ${rec.status}: ${JSON.stringify(rec.errors)}`);
  return { rec, wallMs, calls: calls(sys.cs) };
}

const result = { contentstack_rate_per_second: CS_RATE, urls: [], demo: null, references: [] };

// ---- URL look-ups ---------------------------------------------------------------------------
{
  const stack = makeStack({ contentTypes: ['blog', 'page', 'product', 'landing'] });
  for (const e of stack.environments) e.urls = [{ locale: 'en-us', url: `${BASE}/` }, { locale: 'fr-fr', url: `${BASE}/fr/` }];
  const sys = await startSystem({
    rules: { production: { zone_id: ZONE, resolve_urls: true, entry: { urls: ['{base_url}{url}'] }, asset: { urls: ['{url}'] } } },
    adminToken: ADMIN, stack, csRate: CS_RATE, vars: VARS,
  });
  try {
    for (const [label, o] of [
      ['600 items (2 locales)', { entries: 250, assets: 50, locales: ['en-us', 'fr-fr'] }],
      ['10,000 items', { entries: 9000, assets: 1000, locales: ['en-us'] }],
    ]) {
      const job = addJob(stack, { ...o, withUrl: 1 });
      const { wallMs, calls: c } = await runJob(sys, job);
      const min = urlMinimum(job);
      result.urls.push({ label, items: job.items.length, wall_ms: wallMs, measured: c, min });
      console.error(`lookup-cost urls ${label}: pages ${c.item_pages}/${min.item_pages}, queries ${c.url_queries}/${min.url_queries}, singles ${c.single_lookups}, ${(wallMs / 1000).toFixed(2)} s`);
    }
  } finally {
    await sys.close();
  }
}

// ---- the demo job ---------------------------------------------------------------------------
{
  const demo = makeDemoStack();
  // Verification off: its probes would request www.example.com and cost time unrelated to look-ups.
  const rules = { ...DEMO_RULES, production: { ...oneZone(DEMO_RULES.production), zone_id: ZONE, verify_sample: 0 } };
  const sys = await startSystem({ rules, adminToken: ADMIN, stack: demo.stack, csRate: CS_RATE, vars: VARS });
  try {
    const job = demo.jobs.publishProd;
    const { wallMs, calls: c } = await runJob(sys, job);
    const min = urlMinimum(job);
    result.demo = { items: job.items.length, wall_ms: wallMs, measured: c, min, floor_ms: ((min.item_pages + min.url_queries + 2) / CS_RATE) * 1000 };
    console.error(`lookup-cost demo: ${(wallMs / 1000).toFixed(2)} s, ${c.all} Contentstack calls`);
  } finally {
    await sys.close();
  }
}

// ---- references ----------------------------------------------------------------------------
for (const depth of [1, 2]) {
  const stack = makeStack({ contentTypes: ['author', 'post'] });
  const rules = {
    production: { zone_id: ZONE, entry: { tags: ['cs-{uid}'] }, references: { content_types: ['author'], depth } },
  };
  let sys;
  try {
    sys = await startSystem({ rules, adminToken: ADMIN, stack, csRate: CS_RATE, vars: VARS });
  } catch (e) {
    // An older build without the references section: nothing to measure.
    result.references.push({ depth, error: e.message });
    continue;
  }
  try {
    const authors = [];
    for (let a = 0; a < 20; a++) {
      const author = addEntry(stack, { contentType: 'author', locales: ['en-us'], version: 1 });
      for (let p = 0; p < 4; p++) {
        const post = addEntry(stack, { contentType: 'post', locales: ['en-us'], version: 2 });
        addReference(stack, post.uid, author.uid);
        publishEntry(stack, post.uid, p < 3 ? 'production' : 'staging', 'en-us', 2);
      }
      authors.push(author.uid);
    }
    const job = addJob(stack, { entryUids: authors });
    const { rec, wallMs, calls: c } = await runJob(sys, job);
    const changed = authors.length;
    const followed = depth > 1 ? rec.references?.referrers ?? 0 : 0;
    result.references.push({
      depth, changed, wall_ms: wallMs, measured: c, references: rec.references ?? null,
      min: { lookups: changed + followed },
    });
    console.error(`lookup-cost references depth ${depth}: ${c.references} look-ups for ${changed} changed entries, ${rec.references?.referrers} referrers, ${(wallMs / 1000).toFixed(2)} s`);
  } finally {
    await sys.close();
  }
}

writeResult(process.env.BENCH_RESULT_NAME ?? 'lookup-cost', result);
