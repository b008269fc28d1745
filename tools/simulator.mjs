#!/usr/bin/env node
// Local Contentstack + Cloudflare API simulator for `npm start` (the same fakes the tests use).
// Serves a demo stack (a few hundred entries and assets, two environments, two locales, four
// ready jobs, blog posts that reference authors, categories and assets), writes the Worker's demo settings to .wrangler/demo/demo.env, and a KV seed file
// with cached copies of every entry, asset and list page.
//
// It also starts a fake website behind Cloudflare's cache (devkit/fakes/site.mjs) on SITE_PORT
// (default 8790): the production environment's URLs and every asset URL point at it, every one of
// those pages is cached with a 30-minute-old copy, and the fake Cloudflare API's successful purges
// reach it. So the Worker's verification probes (the demo rule's `verify_sample`) see MISS after
// a purge, and the job ends `done` with `verification.production` all fresh.
//   DEMO_STUCK_URL=1       pins the first URL the publishProd job's verification probes: it stays
//                          a HIT whatever the purges say, so that job ends `partial` ("still cached");
//   DEMO_STUCK_URL=<url>   pins that URL or path of the site instead.
//
// The demo stack also holds a disabled, unhealthy webhook aimed at the local Worker, whose failed
// executions (a timeout, then a 500) carry a job that was never delivered (makeDemoStack's
// `missed`): the Worker's webhook health check (the cron; scripts/dev.sh triggers it once at
// start) reports the webhook and takes that job in.
import fs from 'node:fs';
import crypto from 'node:crypto';

import { startContentstack } from '../devkit/fakes/contentstack.mjs';
import { startCloudflare } from '../devkit/fakes/cloudflare.mjs';
import { startSite } from '../devkit/fakes/site.mjs';
import { makeDemoStack, setBaseUrl, findEnvironment } from '../devkit/fakes/stack.mjs';
import {
  stateDir, envFile, keyFile, infoFile, WORKER_PORT, CONTENTSTACK_PORT, CLOUDFLARE_PORT, SITE_PORT, DEMO_RULES,
  DEMO_ZONE, DEMO_ZONE_FR,
} from './demo-config.mjs';

fs.mkdirSync(stateDir, { recursive: true });

// Keep one signing key across runs so a sent webhook verifies after a restart.
let keyPair;
if (fs.existsSync(keyFile)) {
  const privateKey = crypto.createPrivateKey(fs.readFileSync(keyFile));
  keyPair = { privateKey, publicKey: crypto.createPublicKey(privateKey) };
} else {
  keyPair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(keyFile, keyPair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

const demo = makeDemoStack({ workerUrl: `http://127.0.0.1:${WORKER_PORT}` });
const { stack } = demo;
const site = await startSite({ port: SITE_PORT });

// Production URLs and asset files live on the local site (asset paths kept: /v3/assets/…), so
// every URL the Worker purges and probes is on this machine: en-us on 127.0.0.1 and fr-fr on
// localhost, the demo's two zones (tools/demo-config.mjs).
setBaseUrl(stack, 'production', site.url);
const frSite = site.url.replace('127.0.0.1', 'localhost');
findEnvironment(stack, 'production').urls = findEnvironment(stack, 'production').urls
  .map((u) => (u.locale === 'fr-fr' ? { ...u, url: frSite + new URL(u.url).pathname } : u));
for (const a of stack.assets.values()) {
  const u = new URL(a.url);
  a.url = site.url + u.pathname;
}
// Every production page an entry has (each locale's base URL + its url, joined as the Worker's
// `{base_url}{url}` does) and every asset file, cached 30 minutes ago.
const joinBase = (base, p) => (base.endsWith('/') && p.startsWith('/') ? base + p.slice(1) : base + p);
const production = findEnvironment(stack, 'production');
const sitePages = [];
for (const e of stack.entries.values()) {
  if (!e.url) continue;
  for (const { locale, url } of production.urls) if (e.locales.includes(locale)) sitePages.push(joinBase(url, e.url));
}
for (const a of stack.assets.values()) sitePages.push(a.url);
for (const u of sitePages) site.cache(u, { ageSeconds: 1800 });

// Optional: one URL the purges never reach (see the header).
let stuck = null;
const stuckEnv = process.env.DEMO_STUCK_URL;
if (stuckEnv && stuckEnv !== '0') {
  stuck = stuckEnv === '1' ? firstProbe(demo.jobs.publishProd, DEMO_RULES.production.verify_sample) : stuckEnv;
  if (stuck && site.pin(stuck, { ageSeconds: 1800 }) === null) stuck = null;
}

/**
 * The first URL a job's production verification probes: the planned (sorted) production URLs of
 * its successful items, sampled as the Worker does (the middle of the first of `n` slices).
 */
function firstProbe(job, n) {
  const urls = new Set();
  for (const it of job.items) {
    if (it.publish_details.status !== 'success' || it.environment !== production.uid) continue;
    if (it.type === 'asset') { urls.add(stack.assets.get(it.uid).url); continue; }
    const e = stack.entries.get(it.uid);
    const base = production.urls.find((u) => u.locale === it.publish_locale)?.url;
    if (e?.url && base) urls.add(joinBase(base, e.url));
  }
  const sorted = [...urls].sort();
  if (sorted.length === 0) return null;
  return sorted[Math.floor(sorted.length / (2 * Math.min(n, sorted.length)))];
}

const cs = await startContentstack({ stacks: [stack], keyPair, port: CONTENTSTACK_PORT, rateLimitPerSecond: 10 });
// Each zone serves its own host only: a purge naming the other's URL is refused.
const cf = await startCloudflare({
  token: 'demo-cloudflare-token', port: CLOUDFLARE_PORT, site,
  zoneHosts: { [DEMO_ZONE]: ['127.0.0.1'], [DEMO_ZONE_FR]: ['localhost'] },
});

const adminToken = fs.existsSync(infoFile)
  ? JSON.parse(fs.readFileSync(infoFile, 'utf8')).adminToken
  : crypto.randomBytes(12).toString('hex');

const vars = {
  CONTENTSTACK_API_BASE: cs.url,
  CONTENTSTACK_APP_BASE: cs.url,
  CONTENTSTACK_API_KEYS: stack.apiKey,
  CONTENTSTACK_MANAGEMENT_TOKEN: stack.token,
  CLOUDFLARE_API_BASE: cf.url,
  CLOUDFLARE_API_TOKEN: 'demo-cloudflare-token',
  PURGE_RATE_PER_SECOND: '20',
  PURGE_BATCH_SIZE: '100',
  RETRY_BASE_SECONDS: '2',
  // The second purge pass after 10 s instead of 60, so the demo job ends soon (README).
  REPURGE_DELAY_SECONDS: '10',
  WEBHOOK_VERIFY: 'rsa',
  ADMIN_TOKEN: adminToken,
  ENVIRONMENTS: JSON.stringify(DEMO_RULES),
};
fs.writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}='${String(v)}'`).join('\n') + '\n', { mode: 0o600 }); // single quotes: literal values

// Cached copies in KV: every entry and asset in both environments and locales, plus list pages.
const seed = [];
for (const env of stack.environments) {
  for (const { locale } of env.urls) {
    for (const e of stack.entries.values()) {
      seed.push({ key: `${env.name}:${locale}:entry:${e.content_type}:${e.uid}`, value: JSON.stringify({ title: e.title, url: e.url ?? null }) });
    }
    for (const ct of stack.contentTypes) {
      for (let p = 1; p <= 3; p++) seed.push({ key: `${env.name}:${locale}:list:${ct}:page${p}`, value: '[]' });
    }
  }
  for (const a of stack.assets.values()) seed.push({ key: `${env.name}:asset:${a.uid}`, value: JSON.stringify({ url: a.url }) });
}
fs.writeFileSync(`${stateDir}/kv-seed.json`, JSON.stringify(seed));

const describe = (j) => ({ jobId: j.jobId, action: j.action, environments: j.environments, items: j.items.length });
const jobs = Object.fromEntries(Object.entries(demo.jobs).map(([name, j]) => [name, describe(j)]));
// `missed`: jobs only the webhook health check delivers (tools/send-webhook.mjs sends `jobs`).
const missed = Object.fromEntries(Object.entries(demo.missed).map(([name, j]) => [name, describe(j)]));
fs.writeFileSync(infoFile, JSON.stringify({
  adminToken, apiKey: stack.apiKey, workerPort: WORKER_PORT, siteUrl: site.url, stuckUrl: stuck, jobs, missed,
  webhook: { uid: demo.webhook.uid, name: demo.webhook.name, targetUrl: demo.webhook.targetUrl, executions: demo.webhook.executions.length },
}, null, 2));

fs.writeFileSync(`${stateDir}/ready`, String(process.pid));
console.log(`simulator: Contentstack on ${cs.url}, Cloudflare API on ${cf.url}; ${stack.entries.size} entries, ${stack.assets.size} assets, ${seed.length} cached KV keys`);
console.log(`simulator: site on ${site.url} with ${sitePages.length} cached pages (30 min old)${stuck ? `; pinned (never purged): ${stuck}` : ''}`);
console.log(`simulator: webhook "${demo.webhook.name}" is disabled, with ${demo.webhook.executions.length} failed deliveries of job ${demo.missed.missedPublish.jobId}`);

let lastPurges = 0;
let lastProbes = 0;
setInterval(() => {
  if (cf.purges.length !== lastPurges) {
    const fresh = cf.purges.slice(lastPurges);
    lastPurges = cf.purges.length;
    const items = fresh.reduce((n, p) => n + p.items.length, 0);
    console.log(`simulator: Cloudflare received ${fresh.length} purge call(s), ${items} item(s)`);
  }
  if (site.requests.length !== lastProbes) {
    const fresh = site.requests.slice(lastProbes);
    lastProbes = site.requests.length;
    const by = {};
    for (const r of fresh) by[r.cacheStatus ?? r.status] = (by[r.cacheStatus ?? r.status] ?? 0) + 1;
    console.log(`simulator: site answered ${fresh.length} request(s): ${Object.entries(by).map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }
}, 1000).unref();

const stop = async () => {
  await cs.close();
  await cf.close();
  await site.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
