// Dashboard (docs/CONTRACT.md, "Endpoints" and "Job record"): the static dashboard in www/ served by the real Worker in
// Miniflare, driven in headless Chromium. Sign in (a wrong token first), watch a job arrive and
// finish without reloading, open it and compare its numbers with the API, dry-run it, replay
// it, check the phone layout, show the referrers a reference-aware purge pulled in, and save
// screenshots to test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { addJob, addEntry, addReference, publishEntry } from '../devkit/fakes/stack.mjs';
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

step('forget the token: back to the sign-in form, nothing left in session storage', async () => {
  await page.locator(tid('token-forget')).click();
  await page.locator(tid('token-input')).waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

step('no script errors on the page', async () => {
  assert.deepEqual(pageErrors, []);
});
