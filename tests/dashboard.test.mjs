// Dashboard (docs/CONTRACT.md, "Endpoints" and "Job record"): the static dashboard in www/ served by the real Worker in
// Miniflare, driven in headless Chromium. Sign in (a wrong token first), watch a job arrive and
// finish without reloading, open it and compare its numbers with the API, dry-run it, replay
// it, check the phone layout, and save screenshots to test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';
import { jobPayload, webhookRequest } from '../devkit/harness/sign.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(root, 'test-output');
const ADMIN = 'dashboard-admin-token-5c1e';
const CF_TOKEN = 'cf_dashboard_token';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const COUNT_FIELDS = ['kv_keys', 'kv_prefix_keys', 'cache_api', 'tags', 'urls', 'prefixes', 'hosts', 'api_calls'];
const HOSTILE = '<img src=x onerror="window.__pwned=1">';

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
  },
  staging: {
    kv_binding: 'CONTENT_KV',
    entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'] },
    asset: { kv_keys: ['{environment}:asset:{uid}'] },
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

before(async () => {
  started = Date.now();
  sys = await startSystem({ rules: RULES, adminToken: ADMIN, cloudflare: { token: CF_TOKEN } });
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

step('forget the token: back to the sign-in form, nothing left in session storage', async () => {
  await page.locator(tid('token-forget')).click();
  await page.locator(tid('token-input')).waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

step('no script errors on the page', async () => {
  assert.deepEqual(pageErrors, []);
});
