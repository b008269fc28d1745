// Intake (docs/CONTRACT.md, "Intake answers" to "Recognising job events"): every row of the intake table, driven against the real compiled Worker
// in workerd, with the fake Contentstack serving the public key and the job APIs.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';

import { getJob, waitFor, waitForFinal, listJobs, isFinal } from '../devkit/harness/worker.mjs';
import { startSystem, startFakes } from '../devkit/harness/system.mjs';
import { KV_ONLY_RULES } from '../devkit/harness/kv.mjs';
import { addJob } from '../devkit/fakes/stack.mjs';
import { jobPayload, webhookRequest, signHmac } from '../devkit/harness/sign.mjs';

const ADMIN = 'admin-token-7f3a9c';
const HMAC_SECRET = 'hmac-secret-value-1b2c3d';
const OLD_HMAC_SECRET = 'hmac-old-secret-9z8y7x';
const MGMT_TOKEN_MARK = 'cs_mgmt_token_1';
const BASIC = 'purge-user:basic-pass-55aa';
const HEADER_VALUE = 'custom-header-value-4e4e';

// Every Worker here: these rules and token, the fake Contentstack only (cloudflare: false, no purge
// API), and the Worker's own REPURGE_DELAY_SECONDS (named undefined, or the harness would set 0).
const SETUP = { rules: KV_ONLY_RULES, adminToken: ADMIN };
const withVars = (extra = {}) => ({ REPURGE_DELAY_SECONDS: undefined, ...extra });

const answers = []; // every answer body, searched for secrets at the end

async function send(w, body, opts = {}, path = '/webhooks/contentstack') {
  const { init } = webhookRequest('', body, opts);
  if (opts.method) init.method = opts.method;
  if (opts.method === 'GET' || opts.method === 'HEAD') delete init.body;
  const r = await w.fetch(path, init);
  const text = await r.text();
  answers.push(text);
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, json, text };
}

/** How many jobs the ledger lists (listJobs throws unless the answer is 200). */
const jobCount = async (w) => (await listJobs(w, ADMIN)).length;

/** Waits until every recorded job has finished, so later counts only see new work. */
async function settle(w) {
  await waitFor(async () => (await listJobs(w, ADMIN)).every(isFinal), { what: 'all jobs to finish' });
}

/** Asserts that `fn` adds no ledger record and enqueues nothing (no job-status call follows). */
async function assertNoSideEffects(w, cs, fn) {
  await settle(w);
  const jobsBefore = await jobCount(w);
  const callsBefore = cs.countsBy('/v3/bulk/jobs/');
  const res = await fn();
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await jobCount(w), jobsBefore, 'a ledger record was added');
  assert.equal(cs.countsBy('/v3/bulk/jobs/'), callsBefore, 'a queue message was processed');
  return res;
}

describe('intake with rsa (the default)', () => {
  let sys, cs, w, stack;
  before(async () => {
    sys = await startSystem({ ...SETUP, cloudflare: false, vars: withVars() });
    ({ stack, cs, w } = sys);
  });
  after(async () => sys?.close());

  test('GET /healthz answers ok and the crate version, with no configuration in it', async () => {
    const r = await send(w, '', { method: 'GET' }, '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json).sort(), ['ok', 'version']);
    assert.equal(r.json.ok, true);
    assert.match(r.json.version, /^\d+\.\d+\.\d+/);
  });

  test('202 accepted: a signed job event is recorded and enqueued; the key is fetched once', async () => {
    const job = addJob(stack, { environments: ['production'], entries: 2, assets: 1 });
    const body = JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey }));
    const r = await send(w, body, { rsaKey: cs.privateKey });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.json, { status: 'accepted', job_id: job.jobId, action: 'publish', environments: ['production'] });
    const rec = await getJob(w, job.jobId, ADMIN);
    assert.ok(rec, 'recorded before the answer');
    assert.equal(rec.job_id, job.jobId);
    assert.deepEqual(rec.payload, JSON.parse(body));
    const done = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.equal(done.status, 'done');

    // A second webhook does not fetch the public key again.
    const job2 = addJob(stack, { environments: ['production'], entries: 1 });
    const r2 = await send(w, JSON.stringify(jobPayload({ jobId: job2.jobId, environment: 'production', apiKey: stack.apiKey })), { rsaKey: cs.privateKey });
    assert.equal(r2.status, 202);
    assert.equal(cs.countsBy('/.well-known/public-keys.json'), 1);
  });

  test('202 with the generic channel names no environment at intake; the job API decides', async () => {
    const job = addJob(stack, { environments: ['production'], entries: 1 });
    const r = await send(w, JSON.stringify(jobPayload({ jobId: job.jobId, apiKey: stack.apiKey, shape: 'module' })), { rsaKey: cs.privateKey });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.json.environments, []);
    const done = await waitForFinal(w, job.jobId, { token: ADMIN });
    assert.deepEqual(done.environments, ['production']);
  });

  test('200 duplicate: the same job, action and environment again enqueues nothing', async () => {
    const job = addJob(stack, { environments: ['production'], entries: 1 });
    const body = JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey }));
    assert.equal((await send(w, body, { rsaKey: cs.privateKey })).status, 202);
    await waitForFinal(w, job.jobId, { token: ADMIN });
    const r = await assertNoSideEffects(w, cs, () => send(w, body, { rsaKey: cs.privateKey }));
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'duplicate');
    assert.equal((await getJob(w, job.jobId, ADMIN)).attempts, 1);
  });

  test('10 concurrent identical deliveries: exactly one accepted and one queue message', async () => {
    const job = addJob(stack, { environments: ['production'], entries: 1 });
    const body = JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey }));
    const before = cs.countsBy(`/v3/bulk/jobs/${job.jobId}`);
    const results = await Promise.all(Array.from({ length: 10 }, () => send(w, body, { rsaKey: cs.privateKey })));
    const statuses = results.map((r) => r.json?.status).sort();
    assert.deepEqual(statuses, ['accepted', ...Array(9).fill('duplicate')]);
    await waitForFinal(w, job.jobId, { token: ADMIN });
    await new Promise((r) => setTimeout(r, 500));
    // One queue message → one job-status call (the Start step) for this job.
    assert.equal(cs.countsBy(new RegExp(`/v3/bulk/jobs/${job.jobId}$`)) - before, 1);
    assert.equal(w.events('accepted').filter((e) => e.job_id === job.jobId).length, 1);
  });

  test('200 ignored: a verified event that is not a job completion', async () => {
    const body = JSON.stringify({ module: 'entry', api_key: stack.apiKey, event: 'publish', triggered_at: new Date().toISOString(), data: {} });
    const r = await assertNoSideEffects(w, cs, () => send(w, body, { rsaKey: cs.privateKey }));
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'ignored');
    assert.ok(r.json.reason);
  });

  test('200 ignored: a job event for an environment with no rule', async () => {
    const body = JSON.stringify(jobPayload({ jobId: 'job-for-staging', environment: 'staging', apiKey: stack.apiKey }));
    const r = await assertNoSideEffects(w, cs, () => send(w, body, { rsaKey: cs.privateKey }));
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'ignored');
    assert.match(r.json.reason, /staging/);
  });

  test('400 invalid_json / missing_job_id / invalid_job_id after verification', async () => {
    const cases = [
      ['{"module":', 'invalid_json'],
      [Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{}')]), 'invalid_json'],
      [Buffer.from([0x7b, 0xff, 0x7d]), 'invalid_json'],
      ['['.repeat(129) + ']'.repeat(129), 'invalid_json'],
      [JSON.stringify({ ...jobPayload({ jobId: 'x', environment: 'production', apiKey: stack.apiKey }), data: {} }), 'missing_job_id'],
      [JSON.stringify({ ...jobPayload({ jobId: 'x', environment: 'production', apiKey: stack.apiKey }), data: { job_id: 42 } }), 'invalid_job_id'],
      [JSON.stringify({ ...jobPayload({ jobId: 'x', environment: 'production', apiKey: stack.apiKey }), data: { job_id: 'j'.repeat(257) } }), 'invalid_job_id'],
    ];
    for (const [body, code] of cases) {
      const r = await assertNoSideEffects(w, cs, () => send(w, body, { rsaKey: cs.privateKey }));
      assert.equal(r.status, 400, `${code}: ${r.text}`);
      assert.equal(r.json.status, 'error');
      assert.equal(r.json.error, code);
    }
  });

  test('401 missing_signature, invalid_signature, stale and missing timestamps', async () => {
    const fresh = JSON.stringify(jobPayload({ jobId: 'sig-job', environment: 'production', apiKey: stack.apiKey }));
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const stale = JSON.stringify(jobPayload({ jobId: 'sig-job', environment: 'production', apiKey: stack.apiKey, triggeredAt: new Date(Date.now() - 1300e3).toISOString() }));
    const future = JSON.stringify(jobPayload({ jobId: 'sig-job', environment: 'production', apiKey: stack.apiKey, triggeredAt: new Date(Date.now() + 400e3).toISOString() }));
    const noTs = JSON.stringify({ module: 'jobs', api_key: stack.apiKey, event: 'jobs.environments.production.publish.completed', data: { job_id: 'sig-job' } });
    const cases = [
      [fresh, {}, 'missing_signature'],
      [fresh, { rsaKey: other }, 'invalid_signature'],
      [fresh, { headers: { 'x-contentstack-request-signature': 'v1=' } }, 'invalid_signature'],
      [fresh, { headers: { 'x-contentstack-request-signature': 'v1=!!!notbase64' } }, 'invalid_signature'],
      [fresh + ' ', { rsaKey: cs.privateKey, headers: {} }, null], // signed with the trailing space: fine
      [stale, { rsaKey: cs.privateKey }, 'stale_timestamp'],
      [future, { rsaKey: cs.privateKey }, 'stale_timestamp'],
      [noTs, { rsaKey: cs.privateKey }, 'missing_timestamp'],
    ];
    for (const [body, opts, code] of cases) {
      if (code === null) continue;
      const r = await assertNoSideEffects(w, cs, () => send(w, body, opts));
      assert.equal(r.status, 401, `${code}: ${r.text}`);
      assert.equal(r.json.error, code);
      assert.doesNotMatch(r.json.message, /v1=|byte/i);
    }
    // A body changed after signing fails.
    const { init } = webhookRequest('', fresh, { rsaKey: cs.privateKey });
    init.body = fresh.replace('sig-job', 'sig-jab');
    const r = await w.fetch('/webhooks/contentstack', init);
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error, 'invalid_signature');
  });

  test('403 stack_not_allowed: verified, but the api_key is not in the allow-list', async () => {
    const body = JSON.stringify(jobPayload({ jobId: 'other-stack-job', environment: 'production', apiKey: 'blt_someone_else' }));
    const r = await assertNoSideEffects(w, cs, () => send(w, body, { rsaKey: cs.privateKey }));
    assert.equal(r.status, 403);
    assert.equal(r.json.error, 'stack_not_allowed');
  });

  test('405 method_not_allowed with Allow: POST', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const r = await send(w, '{}', { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get('allow'), 'POST');
      assert.equal(r.json.error, 'method_not_allowed');
    }
  });

  test('415 unsupported_media_type unless application/json (any parameters)', async () => {
    const body = JSON.stringify(jobPayload({ jobId: 'ct-job', environment: 'production', apiKey: stack.apiKey }));
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp', null]) {
      const r = await assertNoSideEffects(w, cs, () => send(w, body, { rsaKey: cs.privateKey, headers: { 'content-type': ct } }));
      assert.equal(r.status, 415, String(ct));
      assert.equal(r.json.error, 'unsupported_media_type');
    }
    const job = addJob(stack, { environments: ['production'], entries: 1 });
    const ok = JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey }));
    const r = await send(w, ok, { rsaKey: cs.privateKey, headers: { 'content-type': 'application/json; charset=utf-8' } });
    assert.equal(r.status, 202);
  });

  test('413 body_too_large, from Content-Length and while reading a chunked body', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(1048576) });
    const r = await assertNoSideEffects(w, cs, () => send(w, big, { rsaKey: cs.privateKey }));
    assert.equal(r.status, 413);
    assert.equal(r.json.error, 'body_too_large');
    // No Content-Length: a stream the Worker must count itself.
    const chunk = new TextEncoder().encode('x'.repeat(65536));
    let sent = 0;
    const stream = new ReadableStream({
      pull(c) {
        if (sent >= 20) return c.close();
        sent += 1;
        c.enqueue(chunk);
      },
    });
    const res = await w.fetch('/webhooks/contentstack', { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error, 'body_too_large');
  });

  test('paths match exactly; other paths are static assets or 404', async () => {
    const body = JSON.stringify(jobPayload({ jobId: 'path-job', environment: 'production', apiKey: stack.apiKey }));
    for (const p of ['/webhooks/contentstack/', '/Webhooks/Contentstack', '/webhooks/contentstack2']) {
      const r = await send(w, body, { rsaKey: cs.privateKey }, p);
      assert.notEqual(r.status, 202, p);
    }
    const home = await w.fetch('/');
    assert.equal(home.status, 200);
    assert.match(await home.text(), /contentstack-edge-purge/);
    assert.equal((await w.fetch('/no-such-file.txt')).status, 404);
  });

  test('admin API: 401 with a wrong token, Bearer scheme case-insensitive', async () => {
    const bad = await w.fetch('/api/jobs', { headers: { authorization: 'Bearer nope' } });
    assert.equal(bad.status, 401);
    assert.equal((await bad.json()).error, 'unauthorized');
    const none = await w.fetch('/api/jobs');
    assert.equal(none.status, 401);
    const ok = await w.fetch('/api/jobs', { headers: { authorization: `bEaReR ${ADMIN}` } });
    assert.equal(ok.status, 200);
    const missing = await w.fetch('/api/jobs/no-such-job', { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error, 'not_found');
  });

  test('no secret value appears in any answer or log line', async () => {
    const secrets = [ADMIN, stack.token, MGMT_TOKEN_MARK];
    const all = answers.join('\n') + '\n' + w.logs.join('\n');
    for (const s of secrets) assert.ok(!all.includes(s), `secret ${s.slice(0, 4)}… leaked`);
    // And no RSA signature value either.
    assert.ok(!/v1=[A-Za-z0-9+/]{40,}/.test(all), 'a signature leaked');
  });
});

// The RSA-PSS math runs in workerd's WebCrypto. These are the vectors the native tests of
// src/signature/ read (written by Node's crypto, tests/fixtures/gen-verify.mjs): every case is sent
// as a real delivery, with the key configured in both PEM forms. The fixture body's
// `triggered_at` is months old, so a signature that verifies then meets the replay window
// (`stale_timestamp`): that answer proves the signature passed.
describe('RSA-PSS in WebCrypto, with the Node vectors', () => {
  const f = JSON.parse(fs.readFileSync(new URL('./fixtures/verify/rsa.json', import.meta.url), 'utf8'));
  let fakes;
  before(async () => {
    fakes = await startFakes({ cloudflare: false });
  });
  after(async () => fakes?.close());

  for (const [form, pem] of [['PKCS#1', f.public_key_pkcs1_pem], ['SPKI', f.public_key_spki_pem]]) {
    test(`every vector, key configured as ${form}`, async () => {
      const w = await fakes.startWorker({ ...SETUP, vars: withVars({ CONTENTSTACK_PUBLIC_KEY: pem }) });
      try {
        assert.ok(f.cases.length >= 18);
        let passed = 0;
        for (const c of f.cases) {
          // An empty header value does not survive the HTTP client here (it arrives as no
          // header); the native tests cover it.
          if (c.header === '') continue;
          const headers = { 'content-type': 'application/json' };
          if (c.header !== undefined && c.header !== null) headers['x-contentstack-request-signature'] = c.header;
          const r = await w.fetch('/webhooks/contentstack', { method: 'POST', headers, body: f.body });
          const json = await r.json();
          const expected = c.expect === 'ok' ? 'stale_timestamp' : c.expect;
          assert.equal(json.error, expected, `${c.name}: ${JSON.stringify(json)}`);
          if (c.expect === 'ok') passed += 1;
        }
        assert.ok(passed >= 5, 'the valid vectors reached the replay window');
        // The valid header over a tampered body fails in WebCrypto.
        const r = await w.fetch('/webhooks/contentstack', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-contentstack-request-signature': f.valid_header },
          body: f.tampered_body,
        });
        assert.equal((await r.json()).error, 'invalid_signature');
      } finally {
        await w.close();
      }
    });
  }
});

describe('intake with hmac, basic and header checks', () => {
  let sys, cs, w, stack;
  before(async () => {
    sys = await startSystem({
      ...SETUP,
      cloudflare: false,
      vars: withVars({
        WEBHOOK_VERIFY: 'hmac,basic,header',
        CONTENTSTACK_HMAC_SECRETS: `${HMAC_SECRET}\n${OLD_HMAC_SECRET}`,
        WEBHOOK_BASIC_AUTH: BASIC,
        WEBHOOK_HEADER: `X-Purge-Key: ${HEADER_VALUE}`,
        REPLAY_TOLERANCE_SECONDS: 600,
      }),
    });
    ({ stack, cs, w } = sys);
  });
  after(async () => sys?.close());

  const good = ({ headers = {}, ...extra } = {}) => ({
    hmacSecret: HMAC_SECRET,
    basicAuth: BASIC,
    ...extra,
    headers: { 'x-purge-key': HEADER_VALUE, ...headers },
  });

  test('all checks pass → 202; either rotated secret signs', async () => {
    for (const secret of [HMAC_SECRET, OLD_HMAC_SECRET, [OLD_HMAC_SECRET, HMAC_SECRET]]) {
      const job = addJob(stack, { environments: ['production'], entries: 1 });
      const body = JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey }));
      const r = await send(w, body, good({ hmacSecret: secret }));
      assert.equal(r.status, 202, r.text);
    }
  });

  test('each failing check → 401 with its code, nothing recorded', async () => {
    const body = JSON.stringify(jobPayload({ jobId: 'hmac-fail', environment: 'production', apiKey: stack.apiKey }));
    const t = Math.floor(Date.now() / 1000);
    const cases = [
      [{ ...good(), hmacSecret: undefined }, 'missing_signature'],
      [{ ...good(), hmacSecret: 'wrong-secret' }, 'invalid_signature'],
      [good({ headers: { 'x-contentstack-hmac-signature': `t=${t},v1=${'a'.repeat(63)}` } }), 'invalid_signature'],
      [good({ headers: { 'x-contentstack-hmac-signature': `t=${t},v1=` } }), 'invalid_signature'],
      [good({ headers: { 'x-contentstack-hmac-signature': `v1=${'a'.repeat(64)}` } }), 'invalid_signature'],
      [{ ...good(), hmacT: t - 700 }, 'stale_timestamp'],
      [{ ...good(), hmacT: t + 400 }, 'stale_timestamp'],
      [{ ...good(), basicAuth: 'purge-user:wrong' }, 'unauthorized'],
      [{ ...good(), basicAuth: undefined }, 'unauthorized'],
      [good({ headers: { 'x-purge-key': HEADER_VALUE + 'x' } }), 'unauthorized'],
      [good({ headers: { 'x-purge-key': null } }), 'unauthorized'],
    ];
    for (const [opts, code] of cases) {
      const r = await assertNoSideEffects(w, cs, () => send(w, body, opts));
      assert.equal(r.status, 401, `${code}: ${r.text}`);
      assert.equal(r.json.error, code);
    }
  });

  test('the hmac t must be the signed one: a resigned header with another t fails', async () => {
    const body = JSON.stringify(jobPayload({ jobId: 'hmac-t', environment: 'production', apiKey: stack.apiKey }));
    const t = Math.floor(Date.now() / 1000);
    const sig = signHmac(body, HMAC_SECRET, t).replace(`t=${t}`, `t=${t - 1}`);
    const r = await send(w, body, good({ headers: { 'x-contentstack-hmac-signature': sig } }));
    assert.equal(r.status, 401);
    assert.equal(r.json.error, 'invalid_signature');
  });

  test('no secret value appears in any answer or log line', async () => {
    const all = answers.join('\n') + '\n' + w.logs.join('\n');
    for (const s of [HMAC_SECRET, OLD_HMAC_SECRET, 'basic-pass-55aa', HEADER_VALUE, ADMIN, stack.token]) {
      assert.ok(!all.includes(s), `secret ${s.slice(0, 4)}… leaked`);
    }
  });
});

describe('configuration and availability errors', () => {
  let fakes, cs, stack;
  before(async () => {
    fakes = await startFakes({ cloudflare: false });
    ({ stack, cs } = fakes);
  });
  after(async () => fakes?.close());
  /** A Worker of its own on the shared fakes, with `extra` vars (the caller closes it). */
  const start = (extra, opts = {}) => fakes.startWorker({ ...SETUP, vars: withVars(extra), ...opts });

  test('500 misconfigured for an unknown check, a check without its secret, or none without ALLOW_UNVERIFIED', async () => {
    for (const extra of [
      { WEBHOOK_VERIFY: 'rsa,telepathy' },
      { WEBHOOK_VERIFY: 'hmac' },
      { WEBHOOK_VERIFY: 'none' },
      { CONTENTSTACK_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----' },
      { ENVIRONMENTS: JSON.stringify({ production: { kv_binding: 'CONTENT_KV', entry: { kv_keys: ['{nope}'] } } }) },
      { ENVIRONMENTS: JSON.stringify({ production: { zone_id: 'z1', entry: { tags: ['t-{uid}'] } } }) },
    ]) {
      const w = await start(extra);
      try {
        const body = JSON.stringify(jobPayload({ jobId: 'cfg', environment: 'production', apiKey: stack.apiKey }));
        const r = await send(w, body, { rsaKey: cs.privateKey });
        assert.equal(r.status, 500, JSON.stringify(extra));
        assert.equal(r.json.error, 'misconfigured');
        await waitFor(() => w.events('misconfigured').length > 0, { what: 'a misconfigured log line' });
        assert.equal(w.events('misconfigured').length, 1, 'reported once');
      } finally {
        await w.close();
      }
    }
  });

  test('none with ALLOW_UNVERIFIED=true accepts unsigned webhooks (local development)', async () => {
    const w = await start({ WEBHOOK_VERIFY: 'none', ALLOW_UNVERIFIED: 'true', CONTENTSTACK_API_KEYS: '' });
    try {
      const job = addJob(stack, { environments: ['production'], entries: 1 });
      const r = await send(w, JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey })));
      assert.equal(r.status, 202, r.text);
    } finally {
      await w.close();
    }
  });

  test('503 unavailable when the queue is missing: nothing stays recorded', async () => {
    const w = await start({}, { queues: false });
    try {
      const job = addJob(stack, { environments: ['production'], entries: 1 });
      const body = JSON.stringify(jobPayload({ jobId: job.jobId, environment: 'production', apiKey: stack.apiKey }));
      const r = await send(w, body, { rsaKey: cs.privateKey });
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.error, 'unavailable');
      assert.equal(await getJob(w, job.jobId, ADMIN), null, 'the record was rolled back');
      // Contentstack's retry is the safety net: the same delivery is not a duplicate later.
      const again = await send(w, body, { rsaKey: cs.privateKey });
      assert.equal(again.status, 503);
    } finally {
      await w.close();
    }
  });

  test('503 unavailable when the ledger is missing', async () => {
    const w = await start({}, { ledger: false });
    try {
      const body = JSON.stringify(jobPayload({ jobId: 'no-ledger', environment: 'production', apiKey: stack.apiKey }));
      const r = await send(w, body, { rsaKey: cs.privateKey });
      assert.equal(r.status, 503);
      assert.equal(r.json.error, 'unavailable');
    } finally {
      await w.close();
    }
  });

  test('admin API answers 404 for every /api path when ADMIN_TOKEN is unset', async () => {
    const w = await start({ ADMIN_TOKEN: undefined });
    try {
      for (const [m, p] of [['GET', '/api/jobs'], ['GET', '/api/jobs/x'], ['POST', '/api/jobs/x/replay'], ['POST', '/api/plan']]) {
        const r = await w.fetch(p, { method: m, headers: { authorization: 'Bearer anything' } });
        assert.equal(r.status, 404, `${m} ${p}`);
        assert.equal((await r.json()).error, 'not_found');
      }
    } finally {
      await w.close();
    }
  });
});
