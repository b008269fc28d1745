// Dashboard (docs/CONTRACT.md, "Endpoints" and "Job record"): the static dashboard in www/ served by the real Worker in
// Miniflare, driven in headless Chromium. Sign in (a wrong token first), watch a job arrive and
// finish without reloading, open it and compare its numbers with the API, dry-run it, replay
// it, check the phone layout, show the referrers a reference-aware purge pulled in, show the
// webhook health banner and a recovered job, a job's verification and its timeline, and save
// screenshots to test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { makeStack, addJob, addEntry, addReference, publishEntry, addWebhook, addExecution } from '../devkit/fakes/stack.mjs';
import { jobPayload, webhookRequest } from '../devkit/harness/sign.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(root, 'test-output');
const ADMIN = 'dashboard-admin-token-5c1e';
const CF_TOKEN = 'cf_dashboard_token';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const COUNT_FIELDS = ['kv_keys', 'kv_prefix_keys', 'cache_api', 'tags', 'urls', 'prefixes', 'hosts', 'api_calls'];
const HOSTILE = '<img src=x onerror="window.__pwned=1">';
// A referrer's uid with markup (no quotes or slashes, so it survives the look-up paths and tags).
const HOSTILE_UID = '<img src=x onerror=window.__pwned=2>';
// A verified URL with markup (put in a made-up record: the page must show it as text).
const HOSTILE_URL = 'https://x/<img src=x onerror=window.__pwned=3>';

// The fake stack's environments, plus "preview", whose URLs point at the fake site behind the
// cache (startSystem's `site`), so its rule can verify what it purged. The other environments
// and their jobs are as in the rest of this file.
const ENVIRONMENTS = [
  { name: 'production', uid: 'blt_env_prod', urls: [{ locale: 'en-us', url: 'https://www.example.com/' }, { locale: 'fr-fr', url: 'https://www.example.com/fr/' }] },
  { name: 'staging', uid: 'blt_env_stg', urls: [{ locale: 'en-us', url: 'https://staging.example.com/' }, { locale: 'fr-fr', url: 'https://staging.example.com/fr/' }] },
  { name: 'preview', uid: 'blt_env_preview', urls: [{ locale: 'en-us', url: 'https://preview.example.com/' }] },
  // Two domains, two Cloudflare zones (issue 20).
  { name: 'intl', uid: 'blt_env_intl', urls: [{ locale: 'en-us', url: 'https://intl.example.com/' }, { locale: 'de-de', url: 'https://intl.example.de/' }] },
];

const RULES = {
  production: {
    zone_id: ZONE,
    kv_binding: 'CONTENT_KV',
    resolve_urls: true,
    entry: {
      kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
      kv_prefixes: ['{environment}:{locale}:list:{content_type}:'],
      tags: ['cs-{environment}-{uid}'],
      urls: ['{base_url}{url}'],
    },
    asset: { kv_keys: ['{environment}:asset:{uid}'], tags: ['cs-{environment}-{uid}'] },
    // Reference-aware purge for one content type that only the references step creates
    // ("person"), so the other jobs of this file make no look-ups and stay as they were.
    references: { content_types: ['person'], depth: 2 },
  },
  staging: {
    kv_binding: 'CONTENT_KV',
    entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'] },
    asset: { kv_keys: ['{environment}:asset:{uid}'] },
  },
  intl: {
    zones: [
      { zone_id: 'zone0intl0com000000000000000000000', hosts: ['intl.example.com'] },
      { zone_id: 'zone0intl0de0000000000000000000000', hosts: ['*.example.de'] },
    ],
    entry: { tags: ['intl-{uid}'], urls: ['{base_url}e/{uid}'] },
  },
  // Verified invalidation (issue 12): every purged URL of a job is probed (up to 10).
  preview: {
    zone_id: ZONE,
    kv_binding: 'CONTENT_KV',
    resolve_urls: true,
    verify_sample: 10,
    // Warm the cache after the purge (issue 20): every purged URL, quickly.
    warm: 20,
    warm_rate: 50,
    entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'], urls: ['{base_url}{url}'] },
  },
};

const BROWSER_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// One system and one browser page for the whole file: each step below continues where the one
// before it left the page (signed in, on a view), so the steps run in order and a step is
// skipped once an earlier one has failed.
let sys;
let cs;
let w;
let browser;
let page;
let stack;
let started;
const pageErrors = [];

// Filled in by the steps, read by later ones.
let job; // the big publish job (two environments, two locales, some failures and skips)
let small; // the small unpublish job whose payload carries markup
let rec; // job's record after its first attempt
let rec2; // job's record after the replay (attempt 2)
let row; // job's row in the list
let refJob; // the job of two "person" entries whose referrers were purged too
let refRec; // its record
let missed; // the job whose delivery failed, taken in by the webhook health check
let verified; // the preview job whose purged URLs were probed (one of them pinned in the cache)
let vrec; // its record
let pinned; // the URL that stays cached

before(async () => {
  started = Date.now();
  sys = await startSystem({
    rules: RULES, adminToken: ADMIN, cloudflare: { token: CF_TOKEN },
    stack: makeStack({ environments: ENVIRONMENTS }), site: { environments: ['preview'] },
  });
  ({ stack, cs, w } = sys);
  job = addJob(stack, { environments: ['production', 'staging'], locales: ['en-us', 'fr-fr'], entries: 6, assets: 2, failedEvery: 7, withUrl: 0.7 });
  small = addJob(stack, { action: 'unpublish', environments: ['staging'], locales: ['en-us'], entries: 2 });
  const kv = await w.kv();
  for (const k of ['production:en-us:list:blog:page1', 'production:en-us:list:page:page1', 'production:fr-fr:list:author:page1']) await kv.put(k, 'cached');
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: BROWSER_ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // The wrong-token step makes Chromium log the 401 itself; anything else is a real error.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
  await mkdir(OUT, { recursive: true });
});

after(async () => {
  await browser?.close().catch(() => {});
  await sys?.close().catch(() => {});
  if (started) console.log(`dashboard flow took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

let broken = null;
/** One step of the flow: a test that is skipped when an earlier step failed (it would start from a wrong page). */
function step(name, fn) {
  test(`dashboard: ${name}`, async (t) => {
    if (broken) {
      t.skip(`an earlier step failed: ${broken}`);
      return;
    }
    try {
      await fn(t);
    } catch (e) {
      broken = name;
      throw e;
    }
  });
}

const tid = (id) => `[data-testid="${id}"]`;
const jobView = () => page.locator('#view-job');
const text = async (loc) => (await loc.textContent()).trim();
const num = (s) => Number(String(s).replace(/[^\d]/g, ''));
const iso = (s) => new Date(s).toISOString();

async function api(p, init = {}) {
  const r = await w.fetch(p, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...init.headers } });
  return { status: r.status, body: await r.json() };
}

/** No page wider than the viewport (no horizontal scrollbar). */
async function assertNoHorizontalScroll(what) {
  const m = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
  assert.ok(m.sw <= m.cw, `${what}: page is ${m.sw}px wide in a ${m.cw}px viewport`);
}

/** Contentstack delivers a job webhook, correctly signed. */
async function deliver(payload) {
  const { init } = webhookRequest('', JSON.stringify(payload), { rsaKey: cs.privateKey });
  const ack = await w.fetch('/webhooks/contentstack', init);
  assert.equal(ack.status, 202, await ack.text());
}

step('the Worker serves the page at /, with its CSS and JS', async () => {
  const res = await page.goto(`${w.url}/`);
  assert.equal(res.status(), 200);
  // The scripts ran (the sign-in form is only shown by them).
  await page.locator(tid('token-input')).waitFor({ state: 'visible' });
});

step('a wrong token: a clear message, nothing stored, the form is still there', async () => {
  await page.locator(tid('token-input')).fill('not-the-token');
  await page.locator(tid('token-submit')).click();
  const err = page.locator(tid('token-error'));
  await err.waitFor({ state: 'visible' });
  assert.match(await text(err), /admin token was not accepted/i);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a rejected token is not stored');
  assert.ok(await page.locator(tid('token-input')).isVisible());
});

step('the right token: the (empty) job list, the token kept in session storage', async () => {
  await page.locator(tid('token-input')).fill(ADMIN);
  await page.locator(tid('token-submit')).click();
  await page.locator(tid('jobs-empty')).waitFor({ state: 'visible' });
  assert.ok(!(await page.locator(tid('token-error')).isVisible()));
  assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), [ADMIN], 'kept in session storage');
});

step('the list refreshes by itself: delivered jobs appear and reach done, newest first', async () => {
  // Two job webhooks (one with markup in an extra field, which must stay text).
  await deliver(jobPayload({ jobId: small.jobId, action: 'unpublish', environment: 'staging', apiKey: stack.apiKey, extra: { note: HOSTILE } }));
  await deliver(jobPayload({ jobId: job.jobId, apiKey: stack.apiKey }));

  const navigations = [];
  const onNav = (f) => { if (f === page.mainFrame()) navigations.push(f.url()); };
  page.on('framenavigated', onNav);
  row = page.locator(`${tid('job-row')}[data-job-id="${job.jobId}"]`);
  await row.waitFor({ state: 'visible', timeout: 20000 });
  await row.locator(`${tid('job-status')}[data-status="done"]`).waitFor({ timeout: 30000 });
  page.off('framenavigated', onNav);
  assert.equal(navigations.length, 0, 'the list updated without a page load');
  rec = await waitForFinal(w, job.jobId, { token: ADMIN });
  assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
  assert.match(await text(row), new RegExp(`${rec.items.success}/${rec.items.total}`));
  assert.match(await text(row), /production/);
  const smallRow = page.locator(`${tid('job-row')}[data-job-id="${small.jobId}"]`);
  await smallRow.locator(`${tid('job-status')}[data-status="done"]`).waitFor({ timeout: 30000 });
  assert.deepEqual(await page.locator(tid('job-row')).evaluateAll((rows) => rows.map((r) => r.dataset.jobId)),
    [job.jobId, small.jobId], 'newest first');
  await page.screenshot({ path: path.join(OUT, 'dashboard-jobs.png') });
});

step('the job page: status, attempts, items and purged counts match the record', async () => {
  await row.locator(tid('job-link')).click();
  await page.waitForURL((u) => u.hash === `#/jobs/${job.jobId}`);
  await jobView().locator(tid('job-detail')).waitFor({ state: 'visible' });
  assert.equal(await text(jobView().locator(tid('job-id'))), job.jobId);
  const status = jobView().locator(tid('job-status'));
  assert.equal(await status.getAttribute('data-status'), 'done');
  assert.match(await text(status), /\bdone$/, 'the status is written out, not only coloured');
  assert.equal(await text(jobView().locator(tid('job-attempts'))), '1');
  for (const k of ['total', 'success', 'failed', 'skipped']) {
    assert.equal(num(await text(jobView().locator(tid(`items-${k}`)))), rec.items[k], `items.${k}`);
  }
  const envNames = Object.keys(rec.purged_by_environment).sort();
  assert.deepEqual(envNames, ['production', 'staging']);
  assert.equal(await jobView().locator(tid('env-row')).count(), envNames.length);
  for (const env of envNames) {
    for (const f of COUNT_FIELDS) {
      const cell = jobView().locator(`${tid('env-row')}[data-env="${env}"] [data-field="${f}"]`);
      assert.equal(num(await text(cell)), rec.purged_by_environment[env][f], `${env}.${f}`);
    }
  }
  for (const f of COUNT_FIELDS) {
    assert.equal(num(await text(jobView().locator(`${tid('env-total')} [data-field="${f}"]`))), rec.purged[f], `total ${f}`);
  }
  assert.ok(rec.purged.kv_keys > 0 && rec.purged.kv_prefix_keys > 0 && rec.purged.tags > 0, JSON.stringify(rec.purged));
});

step('the job page: first pass, second pass and deliveries', async () => {
  // The record: one first pass per environment, and no second pass (REPURGE_DELAY_SECONDS is 0).
  assert.ok(rec.first_pass_at, `first_pass_at: ${JSON.stringify(rec)}`);
  assert.equal(rec.second_pass_at, null);
  assert.deepEqual(Object.keys(rec.passes).sort(), ['production', 'staging']);
  for (const [env, p] of Object.entries(rec.passes)) {
    assert.ok(p.first_pass_at, `${env} has a first pass`);
    assert.equal(p.second_pass_at ?? null, null, `${env} has no second pass`);
    assert.equal(p.second_due_ms ?? null, null, `${env} has no second pass due`);
  }
  assert.deepEqual(rec.scopes, { '*': { ...rec.scopes['*'], collected: true } }, 'one delivery, on the generic channel');

  // The page: the first pass as a time, the second pass as "none (…)", the delivery by name.
  const first = jobView().locator(`${tid('job-first-pass')} time`);
  assert.equal(await first.getAttribute('datetime'), iso(rec.first_pass_at));
  assert.ok((await text(first)).length > 0);
  const second = jobView().locator(tid('job-second-pass'));
  assert.match(await text(second), /^none \(off, or no KV and purge work\)$/);
  assert.equal(await second.locator('time').count(), 0, 'no time for a second pass that did not happen');
  assert.equal(await text(jobView().locator(tid('job-deliveries'))), 'any environment');
  assert.ok(!rec.drives, `drives: ${rec.drives}`);
  assert.equal(await jobView().locator(tid('job-drives')).count(), 0, 'no alarm drives, no drives fact');
});

step('the job page: skipped templates, no errors, one attempt, the pretty-printed payload', async () => {
  assert.ok(rec.skipped.length > 0, 'some entries have no url');
  assert.equal(await jobView().locator(tid('skipped-row')).count(), rec.skipped.length);
  assert.ok(await jobView().locator(tid('job-errors-empty')).isVisible());
  assert.equal(await jobView().locator(tid('attempt-row')).count(), 1);
  const shownPayload = await text(jobView().locator(tid('job-payload')));
  assert.deepEqual(JSON.parse(shownPayload), rec.payload);
  assert.ok(shownPayload.includes('\n  "'), 'pretty-printed');
});

step('dry run by job ID: the plan matches the API\'s and lists the KV keys', async () => {
  const apiPlan = await api('/api/plan', { method: 'POST', body: JSON.stringify({ job_id: job.jobId }) });
  assert.equal(apiPlan.status, 200, JSON.stringify(apiPlan.body));
  await page.locator(tid('nav-plan')).click();
  await page.waitForURL((u) => u.hash === '#/plan');
  await page.locator(tid('plan-input')).fill(job.jobId);
  await page.locator(tid('plan-submit')).click();
  const result = page.locator(tid('plan-result'));
  await result.locator(tid('plan-env')).first().waitFor({ state: 'visible', timeout: 20000 });
  assert.equal(await text(result.locator(tid('plan-job-id'))), job.jobId);
  assert.equal(num(await text(result.locator(tid('plan-actions')))), apiPlan.body.actions);
  assert.equal(num(await text(result.locator(tid('plan-purge-calls')))), apiPlan.body.purge_calls);
  for (const [env, p] of Object.entries(apiPlan.body.plan.environments)) {
    const section = result.locator(`${tid('plan-env')}[data-env="${env}"]`);
    const keys = await section.locator(tid('plan-kv-key')).allTextContents();
    assert.deepEqual(keys, p.kv_keys, `${env} KV keys`);
    assert.ok(keys.length > 0);
    assert.deepEqual(await section.locator(tid('plan-tag')).allTextContents(), p.tags, `${env} tags`);
  }
  assert.equal(await result.locator(tid('plan-skipped-row')).count(), apiPlan.body.plan.skipped.length);
  // Only an environment whose rule samples URLs shows what the verification would probe.
  const sampling = Object.values(apiPlan.body.verification ?? {}).filter((c) => c.verify_sample > 0).length;
  assert.equal(await result.locator(tid('plan-verification')).count(), sampling);
  await page.screenshot({ path: path.join(OUT, 'dashboard-plan.png'), fullPage: true });
  await page.setViewportSize({ width: 375, height: 800 });
  await assertNoHorizontalScroll('dry run at 375 px');
  await page.setViewportSize({ width: 1280, height: 900 });
});

step('dry run of a bad payload: a clear message, not a plan', async () => {
  await page.locator(tid('plan-input')).fill('{"job_id": ');
  await page.locator(tid('plan-submit')).click();
  await page.locator(tid('plan-error')).waitFor({ state: 'visible' });
  assert.match(await text(page.locator(tid('plan-error'))), /not valid JSON/);
});

step('replay: confirm, then the page follows attempt 2 until it is final', async () => {
  await page.goBack();
  await page.waitForURL((u) => u.hash === `#/jobs/${job.jobId}`);
  await jobView().locator(`${tid('job-status')}[data-status="done"]`).waitFor();
  await jobView().locator(tid('replay-button')).click();
  const dialog = page.locator(tid('replay-dialog'));
  await dialog.waitFor({ state: 'visible' });
  assert.match(await text(dialog), /attempt 2/);
  await dialog.locator(tid('replay-confirm')).click();
  await jobView().locator(tid('replay-status')).filter({ hasText: /attempt 2/i }).waitFor();
  await page.waitForFunction(() => {
    const v = document.querySelector('#view-job');
    return v.querySelector('[data-testid="job-attempts"]')?.textContent === '2'
      && v.querySelector('[data-testid="job-status"]')?.dataset.status === 'done';
  }, null, { timeout: 30000 });
  await jobView().locator(tid('replay-status')).filter({ hasText: /Attempt 2 finished: done/ }).waitFor();
  rec2 = await waitForFinal(w, job.jobId, { token: ADMIN });
  assert.equal(rec2.attempts, 2);
  assert.equal(await jobView().locator(tid('attempt-row')).count(), 2);
  assert.equal(num(await text(jobView().locator(`${tid('env-total')} [data-field="kv_keys"]`))), rec2.purged.kv_keys);
  // Attempt 2 made its own first pass, and again no second pass.
  assert.ok(rec2.first_pass_at && Date.parse(rec2.first_pass_at) >= Date.parse(rec.first_pass_at), `${rec.first_pass_at} then ${rec2.first_pass_at}`);
  assert.equal(rec2.second_pass_at, null);
  assert.equal(await jobView().locator(`${tid('job-first-pass')} time`).getAttribute('datetime'), iso(rec2.first_pass_at));
  assert.match(await text(jobView().locator(tid('job-second-pass'))), /^none \(/);
  assert.equal(await text(jobView().locator(tid('job-deliveries'))), 'any environment');

  // Desktop screenshot of the job page (docs/dashboard.png is a copy of a good one).
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT, 'dashboard-job.png'), fullPage: true });
});

step('phone width: no horizontal scrollbar on the job page or the list; tables become cards', async () => {
  await page.setViewportSize({ width: 375, height: 800 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await assertNoHorizontalScroll('job page at 375 px');
  assert.notEqual(await jobView().locator(`${tid('env-row')} >> nth=0`).evaluate((e) => getComputedStyle(e).display), 'table-row', 'rows are cards');
  await page.screenshot({ path: path.join(OUT, 'dashboard-job-phone.png'), fullPage: true });
  await page.locator(tid('job-back')).click();
  await row.waitFor({ state: 'visible' });
  await assertNoHorizontalScroll('job list at 375 px');
  await page.screenshot({ path: path.join(OUT, 'dashboard-jobs-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
});

step('paging: one job per page, then "load more" follows the cursor', async () => {
  await page.evaluate(() => { location.hash = '#/jobs?limit=1'; });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="job-row"]').length === 1);
  const more = page.locator(tid('jobs-more'));
  await more.waitFor({ state: 'visible' });
  while (await more.isVisible()) {
    await more.click();
    await page.waitForFunction(() => !document.querySelector('[data-testid="jobs-more"]').disabled);
  }
  assert.deepEqual(await page.locator(tid('job-row')).evaluateAll((rows) => rows.map((r) => r.dataset.jobId)), [job.jobId, small.jobId]);
});

step('markup in a payload is shown as text and never runs', async () => {
  await page.locator(`${tid('job-row')}[data-job-id="${small.jobId}"] ${tid('job-link')}`).click();
  await jobView().locator(`${tid('job-id')}:text-is("${small.jobId}")`).waitFor();
  await jobView().locator(tid('job-payload')).filter({ hasText: 'onerror' }).waitFor();
  const smallPayload = await text(jobView().locator(tid('job-payload')));
  assert.ok(smallPayload.includes(JSON.stringify(HOSTILE)), 'the markup is shown as text');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await text(jobView().locator(tid('job-action'))), 'unpublish');
  // This job came on the staging channel: its one delivery is named by environment.
  assert.equal(await text(jobView().locator(tid('job-deliveries'))), 'staging');
});

/** An entry of `contentType` that references `to`, published to production (en-us) at `version`. */
function referrer(to, contentType, version, uid) {
  const e = addEntry(stack, { uid, contentType, locales: ['en-us'], version: version + 1 });
  addReference(stack, e.uid, to);
  publishEntry(stack, e.uid, 'production', 'en-us', version);
  return e;
}

/** The referrer rows of a references table, by the `from` uid of the group each is in. */
async function referrerGroups(table) {
  return table.evaluate((t) => Object.fromEntries([...t.tBodies].map((b) => [
    b.querySelector('.referrer-group').dataset.fromUid,
    [...b.querySelectorAll('.referrer-row')].map((r) => r.dataset.uid).sort(),
  ])));
}

step('references: the job page lists each referrer under the job item that pulled it in', async () => {
  // Made here, after the list steps, so the entries of the first jobs (and the list) are unchanged.
  const personA = addEntry(stack, { contentType: 'person', locales: ['en-us'], version: 1 });
  const personB = addEntry(stack, { contentType: 'person', locales: ['en-us'], version: 1 });
  const postA = referrer(personA.uid, 'post', 3);
  const pageA = referrer(postA.uid, 'page', 1); // depth 2: it references postA
  const postB = referrer(personB.uid, 'post', 2);
  const hostile = referrer(personB.uid, 'post', 1, HOSTILE_UID);
  refJob = addJob(stack, { entryUids: [personA.uid, personB.uid] });
  await deliver(jobPayload({ jobId: refJob.jobId, apiKey: stack.apiKey }));
  refRec = await waitForFinal(w, refJob.jobId, { token: ADMIN });
  assert.equal(refRec.status, 'done', JSON.stringify(refRec.errors));
  const refs = refRec.references;
  assert.equal(refs.referrers, 4, JSON.stringify(refs));
  assert.equal(refs.pulled_in.length, 4);
  assert.equal(refs.truncated, false);

  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, refJob.jobId);
  await jobView().locator(`${tid('job-id')}:text-is("${refJob.jobId}")`).waitFor();
  const section = jobView().locator(tid('job-references'));
  await section.waitFor({ state: 'visible' });
  assert.equal(await section.getAttribute('id'), 'job-references');
  assert.equal(num(await text(section.locator(tid('job-references-lookups')))), refs.lookups);
  assert.equal(num(await text(section.locator(tid('job-references-referrers')))), 4);
  assert.equal(await section.locator(tid('job-references-truncated')).count(), 0, 'no look-up limit reached');
  assert.equal(await section.locator(tid('job-references-showing')).count(), 0, 'every referrer is listed');

  // Each row shows the record's referrer and sits under the job item it came from.
  const table = section.locator('#job-references-table');
  assert.equal(await table.locator('tr.referrer-row').count(), refs.pulled_in.length);
  for (const p of refs.pulled_in) {
    const r = table.locator(`tr.referrer-row[data-uid="${p.uid}"]`);
    assert.equal(await r.count(), 1, p.uid);
    assert.equal(await r.getAttribute('data-from-uid'), p.from.uid);
    const field = async (f) => text(r.locator(`[data-field="${f}"]`));
    assert.equal(await field('environment'), p.environment);
    assert.equal(await field('content_type'), p.content_type);
    assert.equal(await field('uid'), p.uid);
    assert.equal(await field('locale'), p.locale);
    assert.equal(await field('version'), String(p.version));
    assert.equal(await field('depth'), String(p.depth));
  }
  assert.deepEqual(await referrerGroups(table), {
    [personA.uid]: [postA.uid, pageA.uid].sort(),
    [personB.uid]: [postB.uid, hostile.uid].sort(),
  });
  assert.equal(await table.locator(`tr.referrer-row[data-uid="${pageA.uid}"]`).getAttribute('data-depth'), '2');
  const fromA = table.locator(`${tid('referrer-group')}[data-from-uid="${personA.uid}"]`);
  assert.equal(await text(fromA.locator(tid('from-type'))), 'entry');
  assert.equal(await text(fromA.locator(tid('from-content-type'))), 'person');
  assert.equal(await text(fromA.locator(tid('from-uid'))), personA.uid);
  assert.equal(await text(fromA.locator(tid('from-locale'))), 'en-us');

  // The uid with markup is text: no element made from it, nothing run.
  assert.equal(await text(table.locator(`tr.referrer-row[data-uid="${HOSTILE_UID}"] [data-field="uid"]`)), HOSTILE_UID);
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await section.screenshot({ path: path.join(OUT, 'dashboard-references.png') });
  await page.setViewportSize({ width: 375, height: 800 });
  await assertNoHorizontalScroll('job page with references at 375 px');
  await page.setViewportSize({ width: 1280, height: 900 });
});

step('references: an empty look-up says so; a job without references has no section', async () => {
  // The first big job's authors, blogs and pages are no "person": production counted no look-ups.
  const bigRefs = (await api(`/api/jobs/${job.jobId}`)).body.references;
  assert.equal(bigRefs.referrers, 0, JSON.stringify(bigRefs));
  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, job.jobId);
  await jobView().locator(`${tid('job-id')}:text-is("${job.jobId}")`).waitFor();
  await jobView().locator(tid('job-references-empty')).waitFor({ state: 'visible' });
  assert.equal(await jobView().locator('tr.referrer-row').count(), 0);
  // The small job went to staging only, whose rule has no references section.
  const smallRefs = (await api(`/api/jobs/${small.jobId}`)).body.references;
  assert.equal(smallRefs ?? null, null, JSON.stringify(smallRefs));
  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, small.jobId);
  await jobView().locator(`${tid('job-id')}:text-is("${small.jobId}")`).waitFor();
  await jobView().locator(tid('job-detail')).waitFor({ state: 'visible' });
  assert.ok(await jobView().locator(tid('job-references')).isHidden(), 'no References section');
  assert.equal(await jobView().locator('tr.referrer-row').count(), 0);
});

step('references: a truncated look-up and a capped list are said in words', async () => {
  // The fakes would need hundreds of look-ups for this: the page is given a made-up record instead.
  const id = 'references-truncated-job';
  const fromAsset = { item_type: 'asset', uid: 'blt_asset_1', locale: 'en-us' };
  const made = {
    ...refRec,
    job_id: id,
    references: {
      ...refRec.references,
      lookups: 1000,
      referrers: 250,
      truncated: true,
      by_environment: { production: { lookups: 1000, referrers: 250, truncated: true }, staging: { lookups: 0, referrers: 0, truncated: false } },
      pulled_in: [...refRec.references.pulled_in, { environment: 'production', content_type: 'post', uid: 'blt_post_of_asset', locale: 'en-us', depth: 1, from: fromAsset }],
    },
  };
  await page.route(`**/api/jobs/${id}`, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(made) }));
  try {
    await page.evaluate((jid) => { location.hash = `#/jobs/${jid}`; }, id);
    await jobView().locator(`${tid('job-id')}:text-is("${id}")`).waitFor();
    const section = jobView().locator(tid('job-references'));
    await section.locator(tid('job-references-truncated')).waitFor({ state: 'visible' });
    const badge = section.locator(tid('job-references-truncated'));
    assert.equal(await text(badge.locator('.badge-text')), 'look-up limit reached: on_failure purge ran');
    assert.match(await badge.getAttribute('class'), /\bbadge-warn\b/);
    assert.match(await text(section.locator(tid('job-references-showing'))), /^Showing 5 of 250 referrers/);
    assert.match(await text(section.locator(`${tid('job-references-by-environment')} [data-env="production"]`)), /look-up limit reached/);
    const fromAssetRow = section.locator(`${tid('referrer-group')}[data-from-uid="blt_asset_1"]`);
    assert.equal(await fromAssetRow.getAttribute('data-from-type'), 'asset');
    assert.equal(await fromAssetRow.locator(tid('from-content-type')).count(), 0, 'an asset has no content type');
    assert.equal(await text(section.locator('tr.referrer-row[data-uid="blt_post_of_asset"] [data-field="version"]')), '—');
    await section.screenshot({ path: path.join(OUT, 'dashboard-references-truncated.png') });
    await page.setViewportSize({ width: 375, height: 800 });
    await assertNoHorizontalScroll('truncated references at 375 px');
    await section.screenshot({ path: path.join(OUT, 'dashboard-references-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
  } finally {
    await page.unroute(`**/api/jobs/${id}`);
  }
});

step('references: the dry run lists the same referrers', async () => {
  const apiPlan = await api('/api/plan', { method: 'POST', body: JSON.stringify({ job_id: refJob.jobId }) });
  assert.equal(apiPlan.status, 200, JSON.stringify(apiPlan.body));
  const refs = apiPlan.body.references;
  assert.ok(refs && refs.pulled_in.length === 4, JSON.stringify(refs));
  await page.locator(tid('nav-plan')).click();
  await page.waitForURL((u) => u.hash === '#/plan');
  await page.locator(tid('plan-input')).fill(refJob.jobId);
  await page.locator(tid('plan-submit')).click();
  const section = page.locator(`${tid('plan-result')} ${tid('plan-references')}`);
  await section.waitFor({ state: 'visible', timeout: 20000 });
  assert.equal(num(await text(section.locator(tid('plan-references-lookups')))), refs.lookups);
  assert.equal(num(await text(section.locator(tid('plan-references-referrers')))), refs.referrers);
  assert.equal(await section.locator(tid('plan-references-on-failure')).count(), 0);
  const table = section.locator('#plan-references-table');
  assert.deepEqual(await table.locator(tid('plan-referrer-row')).evaluateAll((rows) => rows.map((r) => r.dataset.uid).sort()),
    refs.pulled_in.map((p) => p.uid).sort());
  const groups = {};
  for (const p of refs.pulled_in) (groups[p.from.uid] ??= []).push(p.uid);
  for (const g of Object.values(groups)) g.sort();
  assert.deepEqual(await referrerGroups(table), groups);
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
});

// ------------------------------------------------------------------ issue 12: webhook health, verification, timeline
// These steps need the Worker's side of issue 12: GET /api/health and the cron check
// (w.scheduled()), records with `source: "recovered"`, `verification` (rule `verify_sample`,
// the fake site of startSystem's `site`) and `timeline`.

/** The lanes of the timeline, in order (www/js/timeline.js). */
const TIMELINE_LANES = ['pages', 'lookups', 'kv', 'purge', 'second', 'verify', 'warm'];

/** The duration the dashboard shows per lane: last − first event of the lane (www/js/timeline.js). */
function laneDurations(tl) {
  const events = tl.events.slice().sort((a, b) => a.t - b.t);
  const second = events.filter((e) => e.kind === 'second_pass').map((e) => e.t);
  const secondFrom = second.length ? Math.min(...second) : Infinity;
  const lanes = {};
  const add = (lane, t) => { (lanes[lane] ??= []).push(t); };
  for (const e of events) {
    if (['pages', 'lookups', 'kv', 'verify', 'warm'].includes(e.kind)) add(e.kind, e.t);
    else if (e.kind === 'purge') add(e.t >= secondFrom ? 'second' : 'purge', e.t);
    else if (e.kind === 'second_pass') add('second', e.t);
  }
  // Verification starts when the first pass it checks ends.
  const firstPass = events.filter((e) => e.kind === 'first_pass').map((e) => e.t);
  if (lanes.verify && firstPass.length) add('verify', Math.min(...firstPass));
  return Object.fromEntries(Object.entries(lanes).map(([k, ts]) => [k, Math.max(...ts) - Math.min(...ts)]));
}

step('health: before the first check the list says "not checked yet"', async () => {
  const h = await api('/api/health');
  assert.equal(h.status, 200, JSON.stringify(h.body));
  assert.equal(h.body.checked_at, null);
  assert.equal((await w.fetch('/api/health')).status, 401, 'admin only');
  await page.evaluate(() => { location.hash = '#/jobs'; });
  await page.locator(tid('jobs-refresh')).click();
  const ok = page.locator('#health-ok');
  await ok.filter({ hasText: 'not checked yet' }).waitFor({ state: 'visible' });
  assert.ok(await page.locator('#health-banner').isHidden());
  assert.ok(await page.locator('#health-recovered').isHidden());
});

step('health: a disabled webhook missed a job: the check recovers it; a red banner says how to fix it', async () => {
  missed = addJob(stack, { environments: ['production'], locales: ['en-us'], entries: 2 });
  const hook = addWebhook(stack, {
    name: `Purge worker ${HOSTILE}`, targetUrl: `${w.url}/webhooks/contentstack`, disabled: true, unhealthy: true,
  });
  addExecution(stack, hook.uid, { status: 500, retryCount: 4, payload: jobPayload({ jobId: missed.jobId, apiKey: stack.apiKey }) });
  await w.scheduled();
  const h = (await api('/api/health')).body;
  assert.ok(h.checked_at, JSON.stringify(h));
  assert.equal(h.error, null, JSON.stringify(h));
  const seen = h.webhooks.find((x) => x.uid === hook.uid);
  assert.ok(seen && seen.disabled === true, JSON.stringify(h.webhooks));
  assert.deepEqual(h.recovered.map((r) => r.job_id), [missed.jobId]);
  const mrec = await waitForFinal(w, missed.jobId, { token: ADMIN });
  assert.equal(mrec.source, 'recovered');

  await page.evaluate(() => { location.hash = '#/jobs'; });
  await page.locator(tid('jobs-refresh')).click();
  const banner = page.locator('#health-banner');
  await banner.waitFor({ state: 'visible' });
  assert.equal(await banner.getAttribute('role'), 'alert');
  const item = banner.locator(`${tid('health-webhook')}[data-uid="${hook.uid}"]`);
  assert.equal(await item.getAttribute('data-state'), 'disabled');
  assert.equal(await text(item.locator(tid('health-webhook-name'))), `Purge worker ${HOSTILE}`, 'the name is text');
  assert.equal(await text(item.locator(tid('health-webhook-api-key'))), stack.apiKey);
  if (seen.last_failure_at) {
    assert.equal(await item.locator(`${tid('health-webhook-last-failure')} time`).getAttribute('datetime'), iso(seen.last_failure_at));
  }
  assert.match(await text(banner.locator(tid('health-fix'))),
    /does not re-enable it by itself: open Settings › Webhooks in Contentstack, fix the cause, then enable the webhook again; missed jobs are recovered by the next check/);
  assert.ok(await page.locator('#health-ok').isHidden(), 'no "healthy" line under a red banner');

  // What the check took in: a link to the job, and the job marked in the list.
  const recovered = page.locator('#health-recovered');
  await recovered.waitFor({ state: 'visible' });
  assert.deepEqual(await recovered.locator(tid('health-recovered-link')).evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    [`#/jobs/${missed.jobId}`]);
  const missedRow = page.locator(`${tid('job-row')}[data-job-id="${missed.jobId}"]`);
  await missedRow.locator(`${tid('job-status')}[data-status="${mrec.status}"]`).waitFor();
  assert.equal(await text(missedRow.locator('.mark-recovered')), 'recovered');
  assert.equal(await page.locator(`${tid('job-row')}[data-job-id="${job.jobId}"] .mark-recovered`).count(), 0, 'a delivered job has no mark');
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await page.screenshot({ path: path.join(OUT, 'dashboard-health.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await assertNoHorizontalScroll('job list with the health banner at 390 px');
  await page.screenshot({ path: path.join(OUT, 'dashboard-health-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });

  // The job page says so too.
  await recovered.locator(tid('health-recovered-link')).click();
  await jobView().locator(`${tid('job-id')}:text-is("${missed.jobId}")`).waitFor();
  await jobView().locator(`#job-source-slot ${tid('job-recovered')}`).filter({ hasText: /^recovered$/ }).waitFor();
});

step('verification: a URL pinned in the cache is listed in red, the others fresh', async () => {
  verified = addJob(stack, { environments: ['preview'], locales: ['en-us'], entries: 4, withUrl: 1 });
  const plan = await api('/api/plan', { method: 'POST', body: JSON.stringify({ job_id: verified.jobId }) });
  assert.equal(plan.status, 200, JSON.stringify(plan.body));
  const urls = plan.body.plan.environments.preview.files;
  assert.ok(urls.length >= 2 && urls.every((u) => u.startsWith(sys.site.url)), JSON.stringify(urls));
  pinned = urls[0];
  sys.site.pin(pinned);
  sys.site.cache(urls[1], { ageSeconds: 600 }); // cached before the purge, gone after it
  await deliver(jobPayload({ jobId: verified.jobId, apiKey: stack.apiKey }));
  vrec = await waitForFinal(w, verified.jobId, { token: ADMIN });
  const v = vrec.verification && vrec.verification.preview;
  assert.ok(v, JSON.stringify(vrec.verification));
  assert.equal(vrec.status, 'partial', JSON.stringify(vrec.errors));
  assert.deepEqual(v.stale, [pinned]);
  assert.equal(v.checked, urls.length);
  assert.equal(v.fresh, urls.length - 1);

  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, verified.jobId);
  await jobView().locator(`${tid('job-id')}:text-is("${verified.jobId}")`).waitFor();
  const section = jobView().locator('#job-verification');
  await section.waitFor({ state: 'visible' });
  const env = section.locator(`${tid('verify-env')}[data-env="preview"]`);
  assert.equal(num(await text(env.locator(tid('verify-checked')))), v.checked);
  assert.equal(num(await text(env.locator(tid('verify-fresh')))), v.fresh);
  assert.equal(await env.locator(tid('verify-state')).getAttribute('data-state'), 'stale');
  assert.deepEqual(await env.locator(tid('verify-stale-url')).allTextContents(), [pinned]);
  // Red: the stale URL has the colour of the errors (the job's "still cached" error is listed below).
  const [staleColour, errorColour] = await page.evaluate(() => [
    getComputedStyle(document.querySelector('#job-verification .verify-list-stale code')).color,
    getComputedStyle(document.querySelector('#job-errors .errors li')).color,
  ]);
  assert.equal(staleColour, errorColour, 'the stale URL is red, like the errors');
  assert.equal(await env.locator(tid('verify-pass')).getAttribute('data-pass'), String(v.pass));
  assert.equal(await env.locator(`${tid('verify-at')} time`).getAttribute('datetime'), iso(v.at));
  assert.ok((await text(section.locator(tid('job-verification-note')))).includes(`A probe sees ${v.scope} only`));
  assert.ok((await jobView().locator(tid('job-error-row')).allTextContents()).some((e) => e.includes(pinned)), 'the error names the URL');
  await section.screenshot({ path: path.join(OUT, 'dashboard-verification.png') });
});

step('the dry run lists the URLs the verification would probe', async () => {
  const plan = await api('/api/plan', { method: 'POST', body: JSON.stringify({ job_id: verified.jobId }) });
  assert.equal(plan.status, 200, JSON.stringify(plan.body));
  const check = plan.body.verification && plan.body.verification.preview;
  assert.ok(check && check.verify_sample === 10 && check.urls.length >= 2, JSON.stringify(plan.body.verification));
  await page.evaluate(() => { location.hash = '#/plan'; });
  await page.locator(tid('plan-input')).fill(verified.jobId);
  await page.locator(tid('plan-submit')).click();
  const env = page.locator(`${tid('plan-result')} ${tid('plan-env')}[data-env="preview"]`);
  await env.waitFor({ state: 'visible', timeout: 20000 });
  assert.deepEqual(await env.locator(tid('plan-verify-url')).allTextContents(), check.urls);
  assert.equal(await page.locator(`${tid('plan-result')} ${tid('plan-verification')}`).count(), 1, 'one environment, one verification');
  // Back to the job, where the next step continues.
  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, verified.jobId);
  await jobView().locator(`${tid('job-id')}:text-is("${verified.jobId}")`).waitFor();
});

step('timeline: inline SVG with its lanes, markers, legend and "where the time went"; fits 390 px', async () => {
  const tl = vrec.timeline;
  assert.ok(tl && Array.isArray(tl.events) && tl.events.length > 0, JSON.stringify(tl));
  const section = jobView().locator('#job-timeline');
  await section.waitFor({ state: 'visible' });
  const svg = section.locator(tid('timeline-svg'));
  assert.equal(await svg.evaluate((e) => e.namespaceURI), 'http://www.w3.org/2000/svg');
  assert.match(await svg.getAttribute('viewBox'), /^0 0 \d+ \d+$/);
  assert.equal(await svg.getAttribute('width'), '100%');
  assert.deepEqual(await svg.locator(tid('timeline-lane')).evaluateAll((gs) => gs.map((g) => g.dataset.lane)), TIMELINE_LANES);
  // One mark per lane event, drawn at its own time; the verification after the first pass is red.
  const kinds = (k) => tl.events.filter((e) => e.kind === k);
  assert.equal(await svg.locator('[data-lane="pages"] .tl-mark').count(), kinds('pages').length);
  assert.equal(await svg.locator('[data-lane="kv"] .tl-mark').count(), kinds('kv').length);
  assert.equal(await svg.locator('[data-lane="verify"] .tl-mark').count(), kinds('verify').length);
  assert.ok(kinds('verify').length >= 1 && (await svg.locator('[data-lane="verify"] .tl-verify-bad').count()) >= 1, 'a red verification mark');
  const markers = await svg.locator(tid('timeline-marker')).evaluateAll((gs) => gs.map((g) => g.dataset.kind));
  assert.ok(markers.includes('first_pass') && markers.includes('end'), JSON.stringify(markers));
  assert.ok((await svg.locator('.tl-mark title').count()) >= kinds('pages').length, 'a tooltip per mark');
  assert.equal((await svg.locator(tid('timeline-tick')).allTextContents())[0], '0 s');
  assert.ok((await svg.locator('desc').textContent()).length > 20, 'a text description');
  assert.equal(await svg.getAttribute('role'), 'img');
  assert.ok((await section.locator(tid('timeline-legend')).locator('li').count()) >= 3, 'a legend');
  // Where the time went: one row per lane with events, its duration last − first.
  const durations = laneDurations(tl);
  const rows = section.locator(tid('timeline-summary-row'));
  assert.deepEqual((await rows.evaluateAll((rs) => rs.map((r) => r.dataset.lane))).sort(), Object.keys(durations).sort());
  for (const [lane, ms] of Object.entries(durations)) {
    assert.equal(Number(await section.locator(`${tid('timeline-summary-row')}[data-lane="${lane}"]`).getAttribute('data-ms')), ms, `${lane} duration`);
  }
  await section.screenshot({ path: path.join(OUT, 'dashboard-timeline.png') });

  // A phone: the chart is redrawn for the width, and nothing is wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForFunction(() => document.querySelector('#job-timeline [data-testid="timeline-svg"]')?.dataset.compact === 'true');
  await assertNoHorizontalScroll('job page with verification and timeline at 390 px');
  const box = await svg.evaluate((e) => { const r = e.getBoundingClientRect(); return { left: r.left, right: r.right }; });
  assert.ok(box.left >= 0 && box.right <= 390, `the SVG spans ${box.left}–${box.right} px`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT, 'dashboard-job-issue12-phone.png'), fullPage: true });
  await section.screenshot({ path: path.join(OUT, 'dashboard-timeline-phone.png') });
  await page.setViewportSize({ width: 1280, height: 900 });
});

step('verification and timeline: markup in a URL stays text; a second pass a minute later; no timeline, no section', async () => {
  // Made-up records (the real Worker has no second pass here: REPURGE_DELAY_SECONDS is 0).
  const id = 'issue12-made-up-job';
  const later = {
    ...vrec,
    job_id: id,
    verification: { preview: { ...vrec.verification.preview, pass: 2, unreachable: [HOSTILE_URL] } },
    timeline: {
      ...vrec.timeline,
      events: [...vrec.timeline.events.filter((e) => e.kind !== 'end'),
        { t: 61000, kind: 'second_pass', env: 'preview' }, { t: 61200, kind: 'purge', n: 1 },
        { t: 61900, kind: 'verify', env: 'preview', n: 1, stale: 0 }, { t: 62000, kind: 'end', status: 'done' }],
    },
  };
  const bare = { ...vrec, job_id: `${id}-bare`, verification: undefined, timeline: undefined, source: 'recovered' };
  await page.route(`**/api/jobs/${id}`, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(later) }));
  await page.route(`**/api/jobs/${id}-bare`, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(bare) }));
  try {
    await page.evaluate((jid) => { location.hash = `#/jobs/${jid}`; }, id);
    await jobView().locator(`${tid('job-id')}:text-is("${id}")`).waitFor();
    const env = jobView().locator(`${tid('verify-env')}[data-env="preview"]`);
    await env.waitFor({ state: 'visible' });
    assert.deepEqual(await env.locator(tid('verify-unreachable-url')).allTextContents(), [HOSTILE_URL]);
    assert.equal(await env.locator(tid('verify-pass')).getAttribute('data-pass'), '2');
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    const svg = jobView().locator(tid('timeline-svg'));
    await svg.locator('[data-lane="second"] .tl-mark').first().waitFor();
    assert.equal(await svg.locator(tid('timeline-gap')).count(), 1, 'the minute of waiting is drawn shorter');
    assert.ok((await svg.locator(tid('timeline-marker')).evaluateAll((gs) => gs.map((g) => g.dataset.kind))).includes('second_pass'));
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.querySelector('#job-timeline [data-testid="timeline-svg"]')?.dataset.compact === 'true');
    await assertNoHorizontalScroll('made-up second pass at 390 px');
    await jobView().locator('#job-timeline').screenshot({ path: path.join(OUT, 'dashboard-timeline-second-pass-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.evaluate((jid) => { location.hash = `#/jobs/${jid}`; }, `${id}-bare`);
    await jobView().locator(`${tid('job-id')}:text-is("${id}-bare")`).waitFor();
    await jobView().locator(tid('job-recovered')).waitFor();
    assert.ok(await jobView().locator('#job-timeline').isHidden(), 'no timeline in the record, no section');
    assert.ok(await jobView().locator('#job-verification').isHidden(), 'no verification in the record, no section');
  } finally {
    await page.unroute(`**/api/jobs/${id}`);
    await page.unroute(`**/api/jobs/${id}-bare`);
  }
});

step('several zones: the job page and the dry run show each zone with its counts, at desktop and phone width', async () => {
  const intl = addJob(stack, { environments: ['intl'], locales: ['en-us', 'de-de'], entries: 3 });
  await deliver(jobPayload({ jobId: intl.jobId, environment: 'intl', apiKey: stack.apiKey }));
  const irec = await waitForFinal(w, intl.jobId, { token: ADMIN, timeoutMs: 60000 });
  assert.equal(irec.status, 'done', JSON.stringify(irec.errors));
  const byZone = irec.purged_by_environment.intl.by_zone;
  assert.equal(Object.keys(byZone).length, 2, 'the record counts two zones');
  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, intl.jobId);
  await jobView().locator(`${tid('job-id')}:text-is("${intl.jobId}")`).waitFor();
  const rows = jobView().locator(tid('zone-table-row'));
  await rows.first().waitFor();
  assert.equal(await rows.count(), 2, 'one row per zone');
  for (const [zone, c] of Object.entries(byZone)) {
    const r = jobView().locator(`${tid('zone-table-row')}[data-zone="${zone}"]`);
    assert.equal(num(await text(r.locator('[data-field="urls"]'))), c.urls, `${zone} URLs`);
    assert.equal(num(await text(r.locator('[data-field="tags"]'))), c.tags, `${zone} tags`);
    assert.equal(num(await text(r.locator('[data-field="api_calls"]'))), c.api_calls, `${zone} calls`);
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await assertNoHorizontalScroll('job page with zones at 390 px');
  await jobView().locator(tid('zone-table')).screenshot({ path: path.join(OUT, 'dashboard-zones-phone.png') });
  await page.setViewportSize({ width: 1280, height: 900 });

  const apiPlan = await api('/api/plan', { method: 'POST', body: JSON.stringify({ job_id: intl.jobId, environment: 'intl' }) });
  assert.equal(apiPlan.status, 200, JSON.stringify(apiPlan.body));
  await page.locator(tid('nav-plan')).click();
  await page.waitForURL((u) => u.hash === '#/plan');
  await page.locator(tid('plan-input')).fill(intl.jobId);
  await page.locator(tid('plan-submit')).click();
  const section = page.locator(`${tid('plan-result')} ${tid('plan-env')}[data-env="intl"]`);
  await section.waitFor({ state: 'visible', timeout: 20000 });
  const planRows = section.locator(tid('plan-zone-table-row'));
  assert.equal(await planRows.count(), 2, 'the dry run shows both zones');
  for (const [zone, z] of Object.entries(apiPlan.body.plan.environments.intl.zones)) {
    const r = section.locator(`${tid('plan-zone-table-row')}[data-zone="${zone}"]`);
    assert.equal(num(await text(r.locator('[data-field="urls"]'))), z.files.length, `${zone} URLs in the plan`);
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await assertNoHorizontalScroll('dry run with zones at 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Warm: the preview job warmed what it purged; its page and its dry run say so.
  const v = await waitForFinal(w, verified.jobId, { token: ADMIN, timeoutMs: 60000 });
  assert.ok(v.warm?.preview?.requested > 0, `the preview job warmed its URLs: ${JSON.stringify(v.warm)}`);
  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, verified.jobId);
  await jobView().locator(`${tid('job-id')}:text-is("${verified.jobId}")`).waitFor();
  const warmRow = jobView().locator(`${tid('warm-row')}[data-env="preview"]`);
  await warmRow.waitFor();
  for (const f of ['requested', 'ok', 'failed']) {
    assert.equal(num(await text(warmRow.locator(`[data-field="${f}"]`))), v.warm.preview[f], `warm ${f}`);
  }
  assert.ok(await jobView().locator('[data-lane="warm"] .tl-mark').count() > 0, 'marks in the warm lane of the timeline');
  await page.setViewportSize({ width: 390, height: 844 });
  await assertNoHorizontalScroll('job page with warm figures at 390 px');
  await jobView().locator(tid('warm-table')).screenshot({ path: path.join(OUT, 'dashboard-warm-phone.png') });
  await page.setViewportSize({ width: 1280, height: 900 });
  const vPlan = await api('/api/plan', { method: 'POST', body: JSON.stringify({ job_id: verified.jobId }) });
  assert.ok(vPlan.body.plan.environments.preview.warm.length > 0, 'the dry run lists the URLs it would warm');
  await page.locator(tid('nav-plan')).click();
  await page.waitForURL((u) => u.hash === '#/plan');
  await page.locator(tid('plan-input')).fill(verified.jobId);
  await page.locator(tid('plan-submit')).click();
  const pv = page.locator(`${tid('plan-result')} ${tid('plan-env')}[data-env="preview"]`);
  await pv.waitFor({ state: 'visible', timeout: 20000 });
  assert.deepEqual(await pv.locator(tid('plan-warm-url')).allTextContents(), vPlan.body.plan.environments.preview.warm);
});

step('forget the token: back to the sign-in form, nothing left in session storage', async () => {
  await page.locator(tid('token-forget')).click();
  await page.locator(tid('token-input')).waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

step('no script errors on the page', async () => {
  assert.deepEqual(pageErrors, []);
});
