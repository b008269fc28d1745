// Tests of the test doubles in devkit/ themselves: node --test --test-timeout=120000 tests/fakes/fakes.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { makeStack, addJob, addEntry, addAsset, addReference, publishEntry, unpublishEntry, makeDemoStack, addWebhook, addExecution, setBaseUrl, JOB_CHANNELS } from '../../devkit/fakes/stack.mjs';
import { invocations, startFakes } from '../../devkit/harness/system.mjs';
import { startSite } from '../../devkit/fakes/site.mjs';
import { listAllKeys, seedKeys, kvKeyOf, listPrefixOf } from '../../devkit/harness/kv.mjs';
import { listJobs, waitForJob, isFinal } from '../../devkit/harness/worker.mjs';
import { startContentstack } from '../../devkit/fakes/contentstack.mjs';
import { startCloudflare } from '../../devkit/fakes/cloudflare.mjs';
import { jobPayload, signRsa, signHmac, webhookRequest, verifyHmac } from '../../devkit/harness/sign.mjs';

const stack = makeStack();
const job = addJob(stack, { jobId: 'job-1', environments: ['production', 'staging'], locales: ['en-us', 'fr-fr'], entries: 30, assets: 10, failedEvery: 7, withUrl: 0.5 });
const branched = makeStack({ apiKey: 'blt_api_key_2', token: 'tok2', branch: 'develop' });
addJob(branched, { jobId: 'job-b', entries: 1 });

let cs;
const H = { api_key: 'blt_api_key_1', authorization: 'cs_mgmt_token_1', api_version: '3.2' };
const get = async (path, headers = H) => {
  const r = await fetch(cs.url + path, { headers });
  const text = await r.text();
  let json; try { json = JSON.parse(text); } catch { /* raw */ }
  return { status: r.status, headers: r.headers, json, text };
};

before(async () => { cs = await startContentstack({ stacks: [stack, branched], rateLimitPerSecond: 0 }); });
after(async () => { await cs.close(); });

test('stack generator: deterministic, summary agrees with items', () => {
  const again = addJob(makeStack(), { jobId: 'job-1', environments: ['production', 'staging'], locales: ['en-us', 'fr-fr'], entries: 30, assets: 10, failedEvery: 7, withUrl: 0.5 });
  assert.deepEqual(JSON.parse(JSON.stringify(again.items)), JSON.parse(JSON.stringify(job.items)));
  assert.equal(job.items.length, 40 * 2 * 2);
  assert.equal(job.summary.success + job.summary.unsuccess, job.items.length);
  assert.equal(job.summary.unsuccess, Math.floor(160 / 7));
  assert.equal(job.entries.filter((e) => e.url).length, 15);
  assert.match(job.items[0].uid, /^blt[0-9a-f]{16}$/);
  const asset = job.items.find((i) => i.type === 'asset');
  assert.equal(asset.locale, '');
  assert.equal(asset.content_type, undefined);
  const demo = makeDemoStack();
  assert.ok(demo.stack.entries.size >= 200 && demo.stack.assets.size >= 100);
  assert.deepEqual(Object.keys(demo.jobs), ['publishProd', 'publishStaging', 'unpublishProd', 'publishAuthors']);
});

test('public key and job status', async () => {
  const pk = await get('/.well-known/public-keys.json', {});
  assert.equal(pk.status, 200);
  assert.match(pk.json['signing-key'], /^-----BEGIN RSA PUBLIC KEY-----/);
  const s = await get('/v3/bulk/jobs/job-1');
  assert.equal(s.status, 200);
  assert.deepEqual(Object.keys(s.json), ['uid', 'action', 'api_key', 'status', 'created_at', 'updated_at', 'body', 'summary']);
  assert.deepEqual(s.json.body.environments, ['blt_env_prod', 'blt_env_stg']);
  assert.equal(s.json.summary.success, job.summary.success);
  const nf = await get('/v3/bulk/jobs/nope');
  assert.equal(nf.status, 404);
  assert.ok(nf.json.error_message && nf.json.error_code);
});

test('job items: pagination, cap 100, total_count only at skip 0, filters', async () => {
  const p0 = await get('/v3/bulk/jobs/job-1/items?include_count=true&skip=0&limit=500');
  assert.equal(p0.json.limit, 100);
  assert.equal(p0.json.items.length, 100);
  assert.equal(p0.json.total_count, 160);
  const p1 = await get('/v3/bulk/jobs/job-1/items?include_count=true&skip=100&limit=100');
  assert.equal(p1.json.items.length, 60);
  assert.equal(p1.json.total_count, undefined);
  assert.deepEqual([...p0.json.items, ...p1.json.items], JSON.parse(JSON.stringify(job.items)));
  const dflt = await get('/v3/bulk/jobs/job-1/items');
  assert.equal(dflt.json.limit, 100);
  assert.equal(dflt.json.total_count, undefined);
  const failed = await get('/v3/bulk/jobs/job-1/items?include_count=true&status=failed');
  assert.equal(failed.json.total_count, job.summary.unsuccess);
  assert.ok(failed.json.items.every((i) => i.publish_details.status === 'failed' && i.publish_details.failure_reason));
  const assets = await get('/v3/bulk/jobs/job-1/items?include_count=true&type=asset&status=success');
  assert.ok(assets.json.items.every((i) => i.type === 'asset' && i.publish_details.status === 'success'));
  assert.equal(assets.json.total_count, job.items.filter((i) => i.type === 'asset' && i.publish_details.status === 'success').length);
});

test('environments, entries and assets', async () => {
  const env = await get('/v3/environments');
  assert.deepEqual(env.json.environments.map((e) => [e.name, e.uid]), [['production', 'blt_env_prod'], ['staging', 'blt_env_stg']]);
  assert.equal(env.json.environments[0].urls[1].url, 'https://www.example.com/fr/');
  const withUrl = job.entries.find((e) => e.url);
  const e = await get(`/v3/content_types/${withUrl.content_type}/entries/${withUrl.uid}?version=${withUrl.version}&locale=fr-fr`);
  assert.equal(e.status, 200);
  assert.deepEqual([e.json.entry.uid, e.json.entry.url, e.json.entry.locale, e.json.entry._version], [withUrl.uid, withUrl.url, 'fr-fr', withUrl.version]);
  assert.match(withUrl.url, /^\/[a-z]+\/slug-\d+$/);
  const noUrl = job.entries.find((x) => !x.url);
  const e2 = await get(`/v3/content_types/${noUrl.content_type}/entries/${noUrl.uid}`);
  assert.equal('url' in e2.json.entry, false);
  assert.equal((await get(`/v3/content_types/other/entries/${withUrl.uid}`)).status, 404);
  const a = await get(`/v3/assets/${job.assets[0].uid}`);
  assert.match(a.json.asset.url, new RegExp(`^https://images\\.contentstack\\.io/v3/assets/blt_api_key_1/${job.assets[0].uid}/[0-9a-f]+/file-\\d+\\.jpg$`));
  assert.equal((await get('/v3/assets/bltnope')).status, 404);
});

test('auth failures, api_version and branch', async () => {
  assert.equal((await get('/v3/environments', { authorization: 'cs_mgmt_token_1' })).status, 412);
  assert.equal((await get('/v3/environments', { api_key: 'blt_api_key_1', authorization: 'Bearer cs_mgmt_token_1' })).status, 401);
  assert.equal((await get('/v3/environments', { api_key: 'blt_api_key_1', authorization: 'tok2' })).status, 401);
  const noVer = await get('/v3/bulk/jobs/job-1', { api_key: 'blt_api_key_1', authorization: 'cs_mgmt_token_1' });
  assert.equal(noVer.status, 400);
  assert.ok(noVer.json.error_message);
  const B = { api_key: 'blt_api_key_2', authorization: 'tok2', api_version: '3.2' };
  assert.notEqual((await get('/v3/bulk/jobs/job-b', B)).status, 200);
  assert.equal((await get('/v3/bulk/jobs/job-b', { ...B, branch: 'develop' })).status, 200);
  assert.equal((await get('/v3/bulk/jobs/job-1', B)).status, 422); // another stack's job / wrong branch
  assert.equal((await get('/v3/bulk/jobs/job-1', { ...B, branch: 'develop' })).status, 404);
});

test('rate limit: 429 with Retry-After beyond N per sliding second, per stack', async () => {
  cs.setRateLimit(5);
  try {
    const rs = await Promise.all(Array.from({ length: 8 }, () => get('/v3/environments')));
    const codes = rs.map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429, 429]);
    const limited = rs.find((r) => r.status === 429);
    assert.equal(limited.headers.get('retry-after'), '1');
    assert.ok(limited.json.error_message);
    assert.equal(cs.rateLimited, 3);
    // Another stack has its own window.
    assert.equal((await get('/v3/environments', { api_key: 'blt_api_key_2', authorization: 'tok2', branch: 'develop' })).status, 200);
    await new Promise((r) => setTimeout(r, 1050));
    assert.equal((await get('/v3/environments')).status, 200);
    assert.equal(cs.requests.filter((r) => r.status === 429).length, 3);
  } finally { cs.setRateLimit(0); }
});

test('faults fire N times then clear; delay, raw body, totalCountOverride', async () => {
  const rule = cs.fault({ path: /\/items/, status: 503, retryAfter: 2, times: 2 });
  const a = await get('/v3/bulk/jobs/job-1/items');
  const b = await get('/v3/bulk/jobs/job-1/items');
  const c = await get('/v3/bulk/jobs/job-1/items');
  assert.deepEqual([a.status, b.status, c.status], [503, 503, 200]);
  assert.equal(a.headers.get('retry-after'), '2');
  assert.equal(rule.hits, 2);
  cs.fault({ path: '/v3/environments', status: 500, times: 1 });
  const e = await get('/v3/environments');
  assert.equal(e.status, 500);
  assert.equal(e.headers.get('retry-after'), null);
  cs.fault({ path: 'job-1/items', body: '{"items": [', times: 1 });
  const bad = await get('/v3/bulk/jobs/job-1/items');
  assert.equal(bad.status, 200);
  assert.equal(bad.json, undefined);
  cs.fault({ path: 'job-1/items', totalCountOverride: 5, delayMs: 150, times: 1 });
  const t0 = Date.now();
  const over = await get('/v3/bulk/jobs/job-1/items?include_count=true');
  assert.ok(Date.now() - t0 >= 140);
  assert.equal(over.json.total_count, 5);
  cs.fault({ path: /./, status: 502, times: 5 });
  cs.clearFaults();
  assert.equal((await get('/v3/environments')).status, 200);
  assert.ok(cs.countsBy(/\/items/) >= 6);
});

test('cloudflare: auth, one mode, batch limit, answers, KV bulk delete, faults', async () => {
  const deleted = [];
  const cf = await startCloudflare({ maxItemsPerCall: 3, onKvBulkDelete: async (acc, ns, keys) => deleted.push([acc, ns, keys]) });
  try {
    const post = async (path, body, { method = 'POST', token = 'cf_test_token' } = {}) => {
      const r = await fetch(cf.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, headers: r.headers, json: await r.json() };
    };
    const ok = await post('/zones/z1/purge_cache', { files: ['https://www.example.com/a', { url: 'https://www.example.com/b', headers: { 'Accept-Language': 'fr' } }] });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.success, true);
    assert.match(ok.json.result.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(cf.purges[0].items, ['https://www.example.com/a', 'https://www.example.com/b']);
    assert.equal(cf.purges[0].mode, 'files');
    const bad = await post('/zones/z1/purge_cache', { tags: ['a'] }, { token: 'wrong' });
    assert.equal(bad.status, 403);
    assert.equal(bad.json.errors[0].code, 10000);
    const two = await post('/zones/z1/purge_cache', { tags: ['a'], hosts: ['www.example.com'] });
    assert.equal(two.status, 400);
    assert.equal(two.json.success, false);
    const many = await post('/zones/z1/purge_cache', { tags: ['a', 'b', 'c', 'd'] });
    assert.equal(many.status, 400);
    assert.ok(many.json.errors.length > 0);
    assert.equal((await post('/zones/z1/purge_cache', { prefixes: ['https://www.example.com/blog'] })).status, 400);
    assert.equal((await post('/zones/z1/purge_cache', { prefixes: ['www.example.com/blog'] })).status, 200);
    assert.equal((await post('/zones/z1/purge_cache', { purge_everything: true })).status, 200);
    assert.deepEqual(cf.purged('prefixes'), ['www.example.com/blog']);

    const kv = await post('/accounts/acc/storage/kv/namespaces/ns1/bulk', ['k1', 'k2'], { method: 'DELETE' });
    assert.deepEqual(kv.json.result, { successful_key_count: 2, unsuccessful_keys: [] });
    const kv2 = await post('/accounts/acc/storage/kv/namespaces/ns1/bulk/delete', ['k3']);
    assert.equal(kv2.json.success, true);
    assert.deepEqual(deleted, [['acc', 'ns1', ['k1', 'k2']], ['acc', 'ns1', ['k3']]]);
    assert.equal((await post('/accounts/acc/storage/kv/namespaces/ns1/bulk', Array.from({ length: 10001 }, (_, i) => `k${i}`), { method: 'DELETE' })).status, 413);

    cf.fault({ path: 'purge_cache', status: 429, retryAfter: 3, times: 1 });
    cf.fault({ path: 'purge_cache', successFalse: true, times: 1 });
    const f1 = await post('/zones/z1/purge_cache', { tags: ['x'] });
    const f2 = await post('/zones/z1/purge_cache', { tags: ['x'] });
    const f3 = await post('/zones/z1/purge_cache', { tags: ['x'] });
    assert.deepEqual([f1.status, f1.headers.get('retry-after'), f1.json.success], [429, '3', false]);
    assert.deepEqual([f2.status, f2.json.success], [200, false]);
    assert.deepEqual([f3.status, f3.json.success], [200, true]);

    cf.setRateLimit(2);
    const rl = await Promise.all([1, 2, 3].map(() => post('/zones/z1/purge_cache', { hosts: ['www.example.com'] })));
    const limited = rl.filter((r) => r.status === 429);
    assert.equal(limited.length, 1);
    assert.equal(limited[0].headers.get('retry-after'), '1');
    assert.equal(limited[0].json.success, false);
  } finally { await cf.close(); }
});

test('signature helpers verify with node:crypto', () => {
  const { publicKey, privateKey } = { publicKey: cs.publicKey, privateKey: cs.privateKey };
  const body = JSON.stringify(jobPayload({ jobId: 'job-1', environment: 'production', summary: job.summary }));
  const sig = signRsa(body, privateKey);
  assert.match(sig, /^v1=[A-Za-z0-9+/]+=*$/);
  const raw = Buffer.from(sig.slice(3), 'base64');
  assert.equal(raw.length, 256);
  const pubFromPem = crypto.createPublicKey(cs.publicKeyPem);
  const opts = { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  assert.ok(crypto.verify('sha256', Buffer.from(body), { key: pubFromPem, ...opts }, raw));
  assert.ok(!crypto.verify('sha256', Buffer.from(body + ' '), { key: publicKey, ...opts }, raw));

  const h = signHmac(body, ['new', 'old'], 1778729300);
  const [t, v1a, v1b] = h.split(',');
  assert.equal(t, 't=1778729300');
  const expect = (s) => crypto.createHmac('sha256', s).update(`1778729300.${body}`).digest('hex');
  assert.deepEqual([v1a, v1b], [`v1=${expect('new')}`, `v1=${expect('old')}`]);
  assert.ok(verifyHmac(body, h, 'old'));
  assert.ok(!verifyHmac(body, h, 'other'));

  const shapes = Object.fromEntries(['event', 'module', 'channel', 'data_job'].map((s) => [s, jobPayload({ jobId: 'J', environment: 'production', shape: s, triggeredAt: '2024-07-01T05:22:35.000Z' })]));
  assert.equal(shapes.event.event, 'jobs.environments.production.publish.completed');
  assert.equal(shapes.event.data.job_id, 'J');
  assert.equal(`${shapes.module.module}.${shapes.module.event}`, 'jobs.environments.production.publish.completed');
  assert.equal(shapes.module.job_id, 'J');
  assert.equal(shapes.channel.channel, 'jobs.environments.production.publish.completed');
  assert.equal(shapes.data_job.data.job.uid, 'J');
  assert.equal(jobPayload({ jobId: 'J', action: 'unpublish' }).event, 'jobs.environments.unpublish.completed');
  for (const p of Object.values(shapes)) assert.deepEqual(Object.keys(p).slice(0, 5), ['module', 'api_key', 'event', 'triggered_at', 'data']);

  const { url, init } = webhookRequest('http://x/webhooks/contentstack', body, { rsaKey: privateKey, hmacSecret: 's', headers: { 'X-Extra': 'y' } });
  assert.equal(url, 'http://x/webhooks/contentstack');
  assert.equal(init.method, 'POST');
  assert.equal(init.body, body);
  assert.equal(init.headers['content-type'], 'application/json');
  assert.equal(init.headers['user-agent'], 'Contentstack');
  assert.equal(init.headers['x-extra'], 'y');
  assert.ok(crypto.verify('sha256', Buffer.from(body), { key: publicKey, ...opts }, Buffer.from(init.headers['x-contentstack-request-signature'].slice(3), 'base64')));
  assert.ok(verifyHmac(body, init.headers['x-contentstack-hmac-signature'], 's'));
});

// ---------------------------------------------------------------------------------------------
// The unkind parts of the Cloudflare fake: token bucket, item limits, soft purge, the account-wide
// API limit, partially unsuccessful KV bulk deletes and the onPurge hook.

/** A JSON POST (or other method) to a fake Cloudflare instance. */
function cfClient(cf, token = 'cf_test_token') {
  return async (path, body, { method = 'POST' } = {}) => {
    const r = await fetch(cf.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, headers: r.headers, json: await r.json() };
  };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('cloudflare: the purge token bucket (burst at once, then the rate; 429 code 1134, no Retry-After; both endpoints)', async () => {
  const cf = await startCloudflare({ bucket: { rate: 5, burst: 3 } });
  try {
    const post = cfClient(cf);
    const burst = await Promise.all([1, 2, 3, 4, 5].map((i) => post('/zones/z1/purge_cache', { tags: [`t${i}`] })));
    const codes = burst.map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    const refused = burst.find((r) => r.status === 429);
    assert.deepEqual(refused.json, { success: false, errors: [{ code: 1134, message: 'Unable to purge, rate limit reached' }], messages: [], result: null });
    assert.equal(refused.headers.get('retry-after'), null);
    assert.equal(cf.bucketRefusals, 2);
    assert.equal(cf.purges.filter((p) => p.refusedBy === 'bucket').length, 2);
    // 5 per second: one token back after 200 ms, drawn by the soft purge endpoint as well.
    await sleep(230);
    assert.equal((await post('/zones/z1/invalidate_cache', { tags: ['soft'] })).status, 200);
    assert.equal((await post('/zones/z1/purge_cache', { tags: ['again'] })).status, 429, 'the soft purge spent the token');
    assert.equal(cf.bucketRefusals, 3);
    // The bucket never holds more than `burst`.
    await sleep(1500);
    const after = await Promise.all([1, 2, 3, 4].map(() => post('/zones/z1/purge_cache', { hosts: ['www.example.com'] })));
    assert.deepEqual(after.map((r) => r.status).sort(), [200, 200, 200, 429]);
    // Off by default.
    const free = await startCloudflare();
    try {
      const rs = await Promise.all(Array.from({ length: 40 }, () => cfClient(free)('/zones/z1/purge_cache', { tags: ['x'] })));
      assert.ok(rs.every((r) => r.status === 200));
      assert.equal(free.bucketRefusals, 0);
    } finally { await free.close(); }
  } finally { await cf.close(); }
});

test('cloudflare: at most 100 tags/hosts/prefixes per call always; files 100 unless maxFilesPerCall', async () => {
  const n = (k, f) => Array.from({ length: k }, (_, i) => f(i));
  const std = await startCloudflare();
  const ent = await startCloudflare({ maxFilesPerCall: 500, maxItemsPerCall: 500 });
  try {
    for (const [cf, filesMax] of [[std, 100], [ent, 500]]) {
      const post = cfClient(cf);
      for (const mode of ['tags', 'hosts', 'prefixes']) {
        const item = (i) => (mode === 'tags' ? `t${i}` : mode === 'hosts' ? `h${i}.example.com` : `www.example.com/p${i}`);
        assert.equal((await post('/zones/z/purge_cache', { [mode]: n(100, item) })).status, 200, `100 ${mode}`);
        const over = await post('/zones/z/purge_cache', { [mode]: n(101, item) });
        assert.equal(over.status, 400, `101 ${mode}`);
        assert.equal(over.json.errors[0].code, 1018);
        assert.equal((await post('/zones/z/invalidate_cache', { [mode]: n(101, item) })).status, 400, `101 ${mode}, soft purge`);
      }
      const url = (i) => `https://www.example.com/${i}`;
      assert.equal((await post('/zones/z/purge_cache', { files: n(filesMax, url) })).status, 200);
      assert.equal((await post('/zones/z/purge_cache', { files: n(filesMax + 1, url) })).status, 400);
    }
  } finally { await std.close(); await ent.close(); }
});

test('cloudflare: invalidate_cache (soft purge) validates like purge_cache and is recorded with its endpoint', async () => {
  const cf = await startCloudflare();
  try {
    const post = cfClient(cf);
    assert.equal((await post('/zones/z1/invalidate_cache', { tags: ['a', 'b'] })).status, 200);
    assert.equal((await post('/zones/z1/purge_cache', { tags: ['c'] })).status, 200);
    const two = await post('/zones/z1/invalidate_cache', { tags: ['a'], hosts: ['www.example.com'] });
    assert.deepEqual([two.status, two.json.success], [400, false]);
    assert.equal((await post('/zones/z1/invalidate_cache', { prefixes: ['https://www.example.com/x'] })).status, 400);
    assert.equal((await post('/zones/z1/invalidate_cache', { purge_everything: true })).status, 200);
    assert.equal((await cfClient(cf, 'wrong')('/zones/z1/invalidate_cache', { tags: ['a'] })).status, 403);
    assert.equal((await post('/zones/z1/invalidate_cache', {}, { method: 'PUT' })).status, 405);
    assert.deepEqual(cf.purges.map((p) => [p.endpoint, p.status]), [
      ['invalidate_cache', 200], ['purge_cache', 200], ['invalidate_cache', 400], ['invalidate_cache', 400],
      ['invalidate_cache', 200], ['invalidate_cache', 403], ['invalidate_cache', 405],
    ]);
    assert.deepEqual(cf.purged('tags'), ['a', 'b', 'c']);
    assert.deepEqual(cf.purged('tags', 'z1', 'invalidate_cache'), ['a', 'b']);
    assert.deepEqual(cf.purged('tags', undefined, 'purge_cache'), ['c']);
  } finally { await cf.close(); }
});

test('cloudflare: the account-wide API limit blocks every call for the window, with retry-after', async () => {
  const cf = await startCloudflare({ apiLimit: { max: 3, windowMs: 3000 } });
  try {
    const post = cfClient(cf);
    for (let i = 0; i < 3; i++) assert.equal((await post('/zones/z1/purge_cache', { tags: [`t${i}`] })).status, 200);
    const over = await post('/zones/z1/purge_cache', { tags: ['t3'] });
    assert.equal(over.status, 429);
    assert.equal(over.headers.get('retry-after'), '3');
    assert.equal(over.json.success, false);
    await sleep(1100);
    // Every endpoint is blocked, and retry-after counts down.
    const kv = await post('/accounts/acc/storage/kv/namespaces/ns/bulk/delete', ['k']);
    assert.equal(kv.status, 429);
    assert.ok(['1', '2'].includes(kv.headers.get('retry-after')), kv.headers.get('retry-after'));
    assert.equal((await post('/zones/z1/invalidate_cache', { tags: ['t'] })).status, 429);
    assert.equal(cf.apiLimitRefusals, 3);
    await sleep(2000);
    assert.equal((await post('/zones/z1/purge_cache', { tags: ['later'] })).status, 200);
    // Off by default.
    const free = await startCloudflare();
    try {
      const rs = await Promise.all(Array.from({ length: 30 }, () => cfClient(free)('/zones/z1/purge_cache', { tags: ['x'] })));
      assert.ok(rs.every((r) => r.status === 200));
    } finally { await free.close(); }
  } finally { await cf.close(); }
});

test('cloudflare: unsuccessfulOnce reports the last n keys of the first bulk delete and keeps them', async () => {
  const deleted = [];
  const cf = await startCloudflare({ unsuccessfulOnce: 2, onKvBulkDelete: async (acc, ns, keys) => deleted.push(...keys) });
  try {
    const post = cfClient(cf);
    const first = await post('/accounts/acc/storage/kv/namespaces/ns/bulk/delete', ['a', 'b', 'c', 'd']);
    assert.equal(first.status, 200);
    assert.equal(first.json.success, true);
    assert.deepEqual(first.json.result, { successful_key_count: 2, unsuccessful_keys: ['c', 'd'] });
    assert.deepEqual(deleted, ['a', 'b']);
    const retry = await post('/accounts/acc/storage/kv/namespaces/ns/bulk/delete', ['c', 'd']);
    assert.deepEqual(retry.json.result, { successful_key_count: 2, unsuccessful_keys: [] });
    assert.deepEqual(deleted, ['a', 'b', 'c', 'd']);
    assert.deepEqual(cf.kvDeletedKeys('ns'), ['a', 'b', 'c', 'd']);
    assert.deepEqual(cf.kvBulkDeletes.map((d) => d.unsuccessful), [['c', 'd'], []]);
  } finally { await cf.close(); }
});

test('cloudflare: onPurge is awaited after validation and before the answer; a throwing hook answers 500', async () => {
  const seen = [];
  let answered = 0;
  let fail = false;
  const cf = await startCloudflare({
    onPurge: async (p) => {
      await sleep(150);
      seen.push({ endpoint: p.endpoint, mode: p.mode, items: [...p.items], status: p.status, answeredBefore: answered });
      if (fail) throw new Error('KV still holds the key');
    },
  });
  try {
    const post = cfClient(cf);
    const t0 = Date.now();
    const r = await post('/zones/z1/purge_cache', { tags: ['a', 'b'] });
    answered += 1;
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 140, 'the answer waited for the hook');
    assert.deepEqual(seen, [{ endpoint: 'purge_cache', mode: 'tags', items: ['a', 'b'], status: undefined, answeredBefore: 0 }]);
    await post('/zones/z1/invalidate_cache', { files: ['https://www.example.com/x'] });
    assert.equal(seen[1].endpoint, 'invalidate_cache');
    // Not called for a request that fails validation or auth.
    assert.equal((await post('/zones/z1/purge_cache', { tags: [] })).status, 400);
    assert.equal((await cfClient(cf, 'bad')('/zones/z1/purge_cache', { tags: ['a'] })).status, 403);
    assert.equal(seen.length, 2);
    fail = true;
    const bad = await post('/zones/z1/purge_cache', { tags: ['c'] });
    assert.equal(bad.status, 500);
    assert.equal(cf.hookErrors.length, 1);
    assert.match(cf.hookErrors[0].message, /KV still holds/);
    // Faults with retryAfter still work next to the hook, and are answered without calling it.
    fail = false;
    cf.fault({ path: 'purge_cache', status: 429, retryAfter: 45, times: 1 });
    const f = await post('/zones/z1/purge_cache', { tags: ['d'] });
    assert.deepEqual([f.status, f.headers.get('retry-after')], [429, '45']);
    assert.equal(seen.length, 3);
  } finally { await cf.close(); }
});

// ---------------------------------------------------------------------------------------------
// Contentstack fake: branches, revoked tokens, hanging endpoints, several stacks.

test('contentstack: the request log keeps the branch header; a job on a branch needs it for items, entries and assets', async () => {
  const main = makeStack({ apiKey: 'blt_branch_stack', token: 'tok_b' });
  const dev = addJob(main, { jobId: 'job-dev', branch: 'develop', entries: 2, assets: 1 });
  const onMain = addJob(main, { jobId: 'job-main', entries: 1 });
  const c = await startContentstack({ stacks: [main], rateLimitPerSecond: 0 });
  try {
    const H2 = { api_key: main.apiKey, authorization: main.token, api_version: '3.2' };
    const req = async (path, branch) => (await fetch(c.url + path, { headers: branch ? { ...H2, branch } : H2 })).status;
    const status = await (await fetch(`${c.url}/v3/bulk/jobs/job-dev`, { headers: H2 })).json();
    assert.equal(status.body.branch, 'develop');
    assert.equal(await req('/v3/bulk/jobs/job-dev', 'develop'), 200, 'job status on the job branch');
    assert.equal(await req('/v3/bulk/jobs/job-dev/items'), 422, 'items without the branch');
    assert.equal(await req('/v3/bulk/jobs/job-dev/items', 'develop'), 200);
    const e = dev.entries[0];
    assert.equal(await req(`/v3/content_types/${e.content_type}/entries/${e.uid}`), 404, 'the entry lives on develop');
    assert.equal(await req(`/v3/content_types/${e.content_type}/entries/${e.uid}`, 'develop'), 200);
    assert.equal(await req(`/v3/assets/${dev.assets[0].uid}`), 404);
    assert.equal(await req(`/v3/assets/${dev.assets[0].uid}`, 'develop'), 200);
    assert.equal(await req('/v3/environments', 'develop'), 200, 'environments are stack-wide');
    assert.equal(await req('/v3/environments', 'nope'), 422, 'an unknown branch');
    assert.equal(await req('/v3/bulk/jobs/job-main/items', 'develop'), 422, 'a main job read on develop');
    assert.equal(await req(`/v3/content_types/${onMain.entries[0].content_type}/entries/${onMain.entries[0].uid}`), 200);
    const log = c.requests.map((r) => [r.path, r.branch]);
    assert.deepEqual(log.slice(0, 4), [['/v3/bulk/jobs/job-dev', null], ['/v3/bulk/jobs/job-dev', 'develop'], ['/v3/bulk/jobs/job-dev/items', null], ['/v3/bulk/jobs/job-dev/items', 'develop']]);
    assert.ok(c.requests.every((r) => r.apiKey === main.apiKey));
  } finally { await c.close(); }
});

test('contentstack: revokeToken makes every call of that stack answer 401 with the error body', async () => {
  const a = makeStack({ apiKey: 'blt_rev_a', token: 'tok_a' });
  const b = makeStack({ apiKey: 'blt_rev_b', token: 'tok_b' });
  addJob(a, { jobId: 'job-a', entries: 1 });
  addJob(b, { jobId: 'job-b2', entries: 1 });
  const c = await startContentstack({ stacks: [a, b], rateLimitPerSecond: 0 });
  try {
    const call = async (s, path) => {
      const r = await fetch(c.url + path, { headers: { api_key: s.apiKey, authorization: s.token, api_version: '3.2' } });
      return { status: r.status, json: await r.json() };
    };
    assert.equal((await call(a, '/v3/bulk/jobs/job-a')).status, 200);
    c.revokeToken(a.apiKey);
    for (const path of ['/v3/bulk/jobs/job-a', '/v3/bulk/jobs/job-a/items', '/v3/environments', '/v3/assets/x']) {
      const r = await call(a, path);
      assert.equal(r.status, 401, path);
      assert.deepEqual(r.json, { error_message: "You're not allowed in here unless you're logged in.", error_code: 105, errors: { authorization: ['is not valid.'] } });
    }
    assert.equal((await call(b, '/v3/bulk/jobs/job-b2')).status, 200, 'another stack is unaffected');
    c.restoreToken(a.apiKey);
    assert.equal((await call(a, '/v3/bulk/jobs/job-a')).status, 200);
  } finally { await c.close(); }
});

test('contentstack: hang() delays one endpoint N ms, then answers normally', async () => {
  const s = makeStack({ apiKey: 'blt_hang', token: 'tok_h' });
  addJob(s, { jobId: 'job-h', entries: 3 });
  const c = await startContentstack({ stacks: [s], rateLimitPerSecond: 0 });
  try {
    const H3 = { api_key: s.apiKey, authorization: s.token, api_version: '3.2' };
    const rule = c.hang('/items', 400);
    const t0 = Date.now();
    const [slow, fast] = await Promise.all([
      fetch(`${c.url}/v3/bulk/jobs/job-h/items?include_count=true`, { headers: H3 }).then(async (r) => ({ r, at: Date.now(), json: await r.json() })),
      fetch(`${c.url}/v3/bulk/jobs/job-h`, { headers: H3 }).then((r) => ({ r, at: Date.now() })),
    ]);
    assert.ok(slow.at - t0 >= 390, `${slow.at - t0} ms`);
    assert.ok(fast.at - t0 < 300, 'other endpoints answer at once');
    assert.equal(slow.r.status, 200);
    assert.equal(slow.json.total_count, 3);
    assert.equal(rule.hits, 1);
    const t1 = Date.now();
    await fetch(`${c.url}/v3/bulk/jobs/job-h/items`, { headers: H3 });
    assert.ok(Date.now() - t1 < 300, 'only once');
  } finally { await c.close(); }
});

test('contentstack: several stacks in one fake, each with its own token, jobs and rate-limit window', async () => {
  const a = makeStack({ apiKey: 'blt_multi_a', token: 'tok_ma' });
  const b = makeStack({ apiKey: 'blt_multi_b', token: 'tok_mb' });
  const ja = addJob(a, { entries: 2 });
  const jb = addJob(b, { entries: 3 });
  assert.notEqual(ja.jobId, jb.jobId);
  assert.equal(ja.api_key, a.apiKey);
  assert.equal(jb.api_key, b.apiKey);
  const c = await startContentstack({ stacks: [a, b], rateLimitPerSecond: 0 });
  try {
    const call = async (s, token, path) => (await fetch(c.url + path, { headers: { api_key: s.apiKey, authorization: token, api_version: '3.2' } })).status;
    assert.equal(await call(a, a.token, `/v3/bulk/jobs/${ja.jobId}`), 200);
    assert.equal(await call(b, b.token, `/v3/bulk/jobs/${jb.jobId}`), 200);
    assert.equal(await call(a, b.token, `/v3/bulk/jobs/${ja.jobId}`), 401, "another stack's token");
    assert.equal(await call(a, a.token, `/v3/bulk/jobs/${jb.jobId}`), 404, "another stack's job");
    assert.equal(c.requests.filter((r) => r.apiKey === b.apiKey).length, 1);
  } finally { await c.close(); }
});

// ---------------------------------------------------------------------------------------------
// Contentstack fake: references of entries and assets, publish state.

/** A fake serving `stacks`, and a GET helper for one stack's credentials (optional branch). */
async function refsFake(stacks) {
  const c = await startContentstack({ stacks, rateLimitPerSecond: 0 });
  const call = async (s, path, branch) => {
    const r = await fetch(c.url + path, { headers: { api_key: s.apiKey, authorization: s.token, ...(branch ? { branch } : {}) } });
    return { status: r.status, json: await r.json() };
  };
  return { c, call };
}

test('stack: publishEntry/unpublishEntry and publish/unpublish jobs keep entry.published', () => {
  const s = makeStack({ apiKey: 'blt_pub_state', token: 'tok_p' });
  const e = addEntry(s, { contentType: 'blog', locales: ['en-us', 'fr-fr'], version: 4 });
  assert.deepEqual(e.published, {});
  assert.deepEqual(e.refs, []);
  publishEntry(s, e.uid, 'production', 'en-us');
  publishEntry(s, e.uid, 'blt_env_stg', 'fr-fr', 2);
  assert.deepEqual(e.published, { blt_env_prod: { 'en-us': 4 }, blt_env_stg: { 'fr-fr': 2 } });
  unpublishEntry(s, e.uid, 'staging', 'fr-fr');
  unpublishEntry(s, e.uid, 'staging', 'en-us'); // not published there: no-op
  assert.deepEqual(e.published, { blt_env_prod: { 'en-us': 4 } });
  assert.throws(() => publishEntry(s, 'nope', 'production', 'en-us'), /unknown entry/);
  assert.throws(() => publishEntry(s, e.uid, 'nowhere', 'en-us'), /unknown environment/);

  // Jobs: successful entry items publish (at the item's version) or unpublish; failed ones change nothing.
  const pub = addJob(s, { jobId: 'job-pub', environments: ['production', 'staging'], locales: ['en-us', 'fr-fr'], entries: 3, assets: 1, failedEvery: 5 });
  for (const it of pub.items.filter((i) => i.type === 'entry')) {
    const env = s.entries.get(it.uid).published[it.environment];
    if (it.publish_details.status === 'success') assert.equal(env[it.publish_locale], it.version);
    else assert.equal(env?.[it.publish_locale], undefined);
  }
  const target = pub.entries[0];
  addJob(s, { jobId: 'job-unpub', action: 'unpublish', environments: ['production'], locales: ['en-us', 'fr-fr'], entryUids: [target.uid] });
  assert.equal(target.published.blt_env_prod, undefined);
  assert.deepEqual(Object.keys(target.published), ['blt_env_stg']);

  // References: deduplicated; both ends must exist; addEntry takes refs.
  const asset = addAsset(s, {});
  const r = addEntry(s, { contentType: 'page', refs: [e.uid, asset.uid, e.uid] });
  assert.deepEqual(r.refs, [e.uid, asset.uid]);
  addReference(s, r.uid, asset.uid);
  assert.deepEqual(r.refs, [e.uid, asset.uid]);
  assert.throws(() => addReference(s, r.uid, 'bltmissing'), /unknown entry or asset/);
  assert.throws(() => addReference(s, 'bltmissing', e.uid), /unknown entry/);
});

test('contentstack: entry references list referrers in the locale with publish_details of every environment and locale', async () => {
  const s = makeStack({ apiKey: 'blt_refs', token: 'tok_r', contentTypes: ['blog', 'author'] });
  const author = addEntry(s, { contentType: 'author', title: 'Ada', locales: ['en-us', 'fr-fr'] });
  const both = addEntry(s, { contentType: 'blog', title: 'Both', locales: ['en-us', 'fr-fr'], version: 5, refs: [author.uid] });
  const frOnly = addEntry(s, { contentType: 'blog', title: 'Fr only', locales: ['fr-fr'], version: 2, refs: [author.uid] });
  addEntry(s, { contentType: 'blog', title: 'Unrelated', locales: ['en-us'] });
  publishEntry(s, both.uid, 'production', 'en-us', 4);
  publishEntry(s, both.uid, 'production', 'fr-fr');
  publishEntry(s, both.uid, 'staging', 'en-us', 3);
  const { c, call } = await refsFake([s]);
  try {
    const base = `/v3/content_types/author/entries/${author.uid}/references`;
    const en = await call(s, `${base}?locale=en-us&include_publish_details=true`);
    assert.equal(en.status, 200);
    const detail = (environment, locale, version) => ({ environment, locale, time: '2024-07-01T05:22:34.051Z', user: s.user, version });
    assert.deepEqual(en.json, {
      references: [{
        entry_uid: both.uid, content_type_uid: 'blog', locale: 'en-us', _version: 5, title: 'Both', content_type_title: 'Blog',
        publish_details: [detail('blt_env_prod', 'en-us', 4), detail('blt_env_prod', 'fr-fr', 5), detail('blt_env_stg', 'en-us', 3)],
      }],
      count: 1,
    });
    const fr = await call(s, `${base}?locale=fr-fr&include_publish_details=true`);
    assert.deepEqual(fr.json.references.map((r) => [r.entry_uid, r.locale, r.publish_details.length]), [[both.uid, 'fr-fr', 3], [frOnly.uid, 'fr-fr', 0]]);
    assert.equal(fr.json.count, 2);
    // Without include_publish_details: no key. Without a locale: each referrer in its first locale.
    const plain = await call(s, `${base}?locale=fr-fr`);
    assert.ok(plain.json.references.every((r) => !('publish_details' in r)));
    const noLocale = await call(s, base);
    assert.deepEqual(noLocale.json.references.map((r) => [r.entry_uid, r.locale]), [[both.uid, 'en-us'], [frOnly.uid, 'fr-fr']]);
    // Unpublishing shows at once.
    unpublishEntry(s, both.uid, 'production', 'fr-fr');
    unpublishEntry(s, both.uid, 'staging', 'en-us');
    const after = await call(s, `${base}?locale=en-us&include_publish_details=true`);
    assert.deepEqual(after.json.references[0].publish_details, [detail('blt_env_prod', 'en-us', 4)]);
    // Nobody references a blog post: an empty list. Unknown entry or wrong content type: 404.
    assert.deepEqual((await call(s, `/v3/content_types/blog/entries/${both.uid}/references?locale=en-us`)).json, { references: [], count: 0 });
    const nf = await call(s, `/v3/content_types/author/entries/bltnope/references?locale=en-us`);
    assert.equal(nf.status, 404);
    assert.equal(nf.json.error_code, 141);
    assert.equal((await call(s, `/v3/content_types/blog/entries/${author.uid}/references`)).status, 404);
    // The single entry route still answers the entry itself.
    assert.equal((await call(s, `/v3/content_types/author/entries/${author.uid}`)).json.entry.uid, author.uid);
    // The refusal knob.
    s.refuseReferences = true;
    const refused = await call(s, `${base}?locale=en-us&include_publish_details=true`);
    assert.equal(refused.status, 422);
    assert.ok(refused.json.error_message);
    assert.equal((await call(s, `/v3/content_types/author/entries/${author.uid}`)).status, 200, 'only the references routes refuse');
    s.refuseReferences = false;
    assert.equal((await call(s, base)).status, 200);
  } finally { await c.close(); }
});

test('contentstack: asset references answer one element per referrer and locale; branches and refusal apply', async () => {
  const s = makeStack({ apiKey: 'blt_arefs', token: 'tok_ar' });
  const asset = addAsset(s, {});
  const blog = addEntry(s, { contentType: 'blog', title: 'Blog 1', locales: ['en-us', 'fr-fr'], version: 3, refs: [asset.uid] });
  const page = addEntry(s, { contentType: 'page', title: 'Page 2', locales: ['fr-fr'], refs: [asset.uid] });
  publishEntry(s, blog.uid, 'production', 'fr-fr');
  publishEntry(s, page.uid, 'staging', 'fr-fr');
  const devAsset = addAsset(s, { branch: 'develop' });
  const devEntry = addEntry(s, { contentType: 'blog', branch: 'develop', refs: [devAsset.uid] });
  const { c, call } = await refsFake([s]);
  try {
    const r = await call(s, `/v3/assets/${asset.uid}/references?include_publish_details=true`);
    assert.equal(r.status, 200);
    assert.equal(r.json.count, 3);
    assert.deepEqual(r.json.references.map((x) => [x.entry_uid, x.content_type_uid, x.content_type_title, x.locale, x._version, x.publish_details.map((d) => `${d.environment}/${d.locale}@${d.version}`)]), [
      [blog.uid, 'blog', 'Blog', 'en-us', 3, ['blt_env_prod/fr-fr@3']],
      [blog.uid, 'blog', 'Blog', 'fr-fr', 3, ['blt_env_prod/fr-fr@3']],
      [page.uid, 'page', 'Page', 'fr-fr', 1, ['blt_env_stg/fr-fr@1']],
    ]);
    assert.ok((await call(s, `/v3/assets/${asset.uid}/references`)).json.references.every((x) => !('publish_details' in x)));
    assert.equal((await call(s, '/v3/assets/bltnope/references')).status, 404);
    assert.equal((await call(s, `/v3/assets/${asset.uid}`)).json.asset.uid, asset.uid, 'the single asset route is unchanged');
    // An asset on a branch answers only with that branch header, and lists only that branch's referrers.
    assert.equal((await call(s, `/v3/assets/${devAsset.uid}/references`)).status, 404);
    assert.deepEqual((await call(s, `/v3/assets/${devAsset.uid}/references`, 'develop')).json.references.map((x) => x.entry_uid), [devEntry.uid]);
    assert.equal((await call(s, `/v3/content_types/blog/entries/${devEntry.uid}/references`)).status, 404);
    s.refuseReferences = true;
    assert.equal((await call(s, `/v3/assets/${asset.uid}/references`)).status, 422);
    assert.equal((await call(s, `/v3/assets/${asset.uid}`)).status, 200);
  } finally { await c.close(); }
});

test('demo stack: the publishAuthors job republishes authors and a category that many published blog posts reference', async () => {
  const demo = makeDemoStack();
  const { stack: s, jobs, authors, categories } = demo;
  assert.deepEqual([jobs.publishProd.items.length, jobs.publishStaging.items.length, jobs.unpublishProd.items.length, jobs.publishAuthors.items.length], [620, 110, 34, 6]);
  assert.equal(jobs.publishAuthors.jobId, '3c9a8b7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d');
  assert.ok(s.contentTypes.includes('category') && s.contentTypes.includes('author'));
  assert.deepEqual([authors.length, categories.length], [6, 5]);
  for (const e of [...authors, ...categories]) {
    assert.match(e.url, new RegExp(`^/${e.content_type}/slug-\\d+$`));
    assert.deepEqual(e.published, { blt_env_prod: { 'en-us': e.version, 'fr-fr': e.version } });
  }
  // Every blog post of publishProd references one of those authors and categories; some an asset of the job.
  const blogs = jobs.publishProd.entries.filter((e) => e.content_type === 'blog');
  const ids = new Set([...authors, ...categories].map((e) => e.uid));
  const jobAssets = new Set(jobs.publishProd.assets.map((a) => a.uid));
  for (const b of blogs) {
    assert.equal(b.refs.filter((u) => ids.has(u)).length, 2);
    assert.ok(b.refs.every((u) => ids.has(u) || jobAssets.has(u)));
  }
  assert.ok(blogs.filter((b) => b.refs.length === 3).length >= 10);
  // Blog posts of publishProd stay published to production where the job succeeded (unless unpublishProd took them back).
  const unpublished = new Set(jobs.unpublishProd.entries.map((e) => e.uid));
  for (const it of jobs.publishProd.successItems().filter((i) => i.type === 'entry' && !unpublished.has(i.uid))) {
    assert.equal(s.entries.get(it.uid).published.blt_env_prod[it.locale], it.version);
  }

  const { c, call } = await refsFake([s]);
  try {
    const items = jobs.publishAuthors.items;
    assert.deepEqual(items.map((i) => i.content_type.uid), ['author', 'author', 'category', 'author', 'author', 'category']);
    for (const it of items) {
      assert.equal(it.publish_details.status, 'success');
      assert.equal(s.entries.get(it.uid).published.blt_env_prod[it.locale], it.version);
      const r = await call(s, `/v3/content_types/${it.content_type.uid}/entries/${it.uid}/references?include_publish_details=true&locale=${it.locale}`);
      assert.equal(r.status, 200);
      const expected = [...s.entries.values()].filter((e) => e.refs.includes(it.uid));
      assert.equal(r.json.count, expected.length);
      assert.ok(r.json.count >= 9, `${it.uid}: ${r.json.count} referrers`);
      const live = r.json.references.filter((x) => x.publish_details.some((d) => d.environment === 'blt_env_prod' && d.locale === it.locale));
      assert.ok(live.length >= 5, `${it.uid} ${it.locale}: ${live.length} referrers published to production`);
      assert.ok(live.length < r.json.count || it.content_type.uid === 'category', 'some referrers failed or were unpublished');
      assert.ok(r.json.references.every((x) => x.content_type_uid === 'blog'));
    }
    const withAsset = blogs.find((b) => b.refs.length === 3);
    const ar = await call(s, `/v3/assets/${withAsset.refs[2]}/references?include_publish_details=true`);
    assert.deepEqual(ar.json.references.map((x) => [x.entry_uid, x.locale]), [[withAsset.uid, 'en-us'], [withAsset.uid, 'fr-fr']]);
  } finally { await c.close(); }
});

test('demo stack: a disabled webhook aimed at the local Worker failed to deliver a missed job (health check demo)', async () => {
  const now = Date.parse('2026-03-01T12:00:00.000Z');
  const demo = makeDemoStack({ workerUrl: 'http://127.0.0.1:9999/', now });
  const { stack: s, jobs, missed, webhook } = demo;
  // The missed job is not among the jobs tools/send-webhook.mjs can send (demo.jobs → demo.json `jobs`).
  assert.deepEqual(Object.keys(jobs), ['publishProd', 'publishStaging', 'unpublishProd', 'publishAuthors']);
  assert.deepEqual(Object.keys(missed), ['missedPublish']);
  const job = missed.missedPublish;
  assert.ok(!Object.values(jobs).some((j) => j.jobId === job.jobId));
  assert.equal(s.jobs.get(job.jobId), job);
  // Small, production only, every item a success; pages and products with urls (no reference look-ups).
  assert.deepEqual([job.action, job.environments, job.locales, job.status], ['publish', ['production'], ['en-us', 'fr-fr'], 'complete']);
  assert.deepEqual([job.entries.length, job.assets.length, job.items.length, job.summary.unsuccess], [4, 2, 12, 0]);
  for (const e of job.entries) {
    assert.ok(['page', 'product'].includes(e.content_type));
    assert.match(e.url, new RegExp(`^/${e.content_type}/slug-\\d+$`));
    assert.deepEqual(e.refs, []);
  }
  assert.equal(job.created_at, new Date(now - 40 * 60_000).toISOString());
  // The webhook: disabled, unhealthy, delivering to the Worker's intake path, two failed deliveries of that job.
  assert.equal(s.webhooks.get(webhook.uid), webhook);
  assert.deepEqual([webhook.targetUrl, webhook.disabled, webhook.unhealthy, webhook.channels], ['http://127.0.0.1:9999/webhooks/contentstack', true, true, JOB_CHANNELS]);
  assert.deepEqual(webhook.executions.map((e) => e.status), [null, 500]);
  for (const e of webhook.executions) {
    const age = now - Date.parse(e.created_at);
    assert.ok(age >= 20 * 60_000 && age <= 40 * 60_000, `${e.created_at}: 20–40 minutes before now`);
    assert.deepEqual(e.request_details[0].request.body, jobPayload({ jobId: job.jobId, action: 'publish', environment: 'production', apiKey: s.apiKey, triggeredAt: new Date(now - 38 * 60_000).toISOString() }));
    assert.deepEqual(e.channel, ['jobs.environments.production.publish.completed']);
  }
  // Deterministic apart from `now`; the default target is the Worker on 8787.
  const again = makeDemoStack({ now });
  assert.equal(again.webhook.targetUrl, 'http://127.0.0.1:8787/webhooks/contentstack');
  assert.deepEqual(JSON.parse(JSON.stringify(again.missed.missedPublish.items)), JSON.parse(JSON.stringify(job.items)));
  assert.deepEqual(again.webhook.executions.map((e) => e.uid), webhook.executions.map((e) => e.uid));

  // What the Worker's health check reads from the fake.
  const { c, call } = await refsFake([s]);
  try {
    const list = await call(s, '/v3/webhooks');
    assert.deepEqual(list.json.webhooks.map((w) => [w.uid, w.disabled, w.unhealthy.state, w.destinations[0].target_url]), [[webhook.uid, true, true, webhook.targetUrl]]);
    const from = new Date(now - 24 * 3_600_000).toISOString();
    const ex = await call(s, `/v3/webhooks/${webhook.uid}/executions?from=${from}&to=${new Date(now).toISOString()}&skip=0&limit=100`);
    assert.deepEqual(ex.json.webhooks.map((e) => [e.status, e.event_data.data.job_id]), [[500, job.jobId], [null, job.jobId]], 'newest first');
    const st = await fetch(`${c.url}/v3/bulk/jobs/${job.jobId}`, { headers: { api_key: s.apiKey, authorization: s.token, api_version: '3.2' } });
    assert.deepEqual([st.status, (await st.json()).summary.success], [200, 12]);
  } finally { await c.close(); }
});

// ---------------------------------------------------------------------------------------------
// Harness helpers that need no Worker.

/** An in-memory KV namespace with KV's list semantics (pages of at most 1,000, cursor, list_complete). */
function memoryKv() {
  const m = new Map();
  return {
    async put(k, v) { m.set(k, v); },
    async get(k) { return m.get(k) ?? null; },
    async delete(k) { m.delete(k); },
    async list({ prefix = '', cursor, limit = 1000 } = {}) {
      const names = [...m.keys()].filter((k) => k.startsWith(prefix)).sort();
      const start = cursor ? Number(cursor) : 0;
      const page = names.slice(start, start + Math.min(limit, 1000));
      const done = start + page.length >= names.length;
      return { keys: page.map((name) => ({ name })), list_complete: done, cursor: done ? undefined : String(start + page.length) };
    },
    size: () => m.size,
  };
}

test('harness: seedKeys and listAllKeys follow the list cursor past 1,000 keys; invocations filters log lines', async () => {
  const kv = memoryKv();
  const keys = Array.from({ length: 2501 }, (_, i) => `p:list:${String(i).padStart(5, '0')}`);
  assert.deepEqual(await seedKeys(kv, [...keys, 'other:1'], { batch: 250 }), [...keys, 'other:1']);
  assert.equal(kv.size(), 2502);
  assert.equal(await kv.get('p:list:00000'), 'cached');
  assert.deepEqual(await listAllKeys(kv, 'p:list:'), keys);
  assert.equal((await listAllKeys(kv)).length, 2502);
  assert.deepEqual(await listAllKeys(kv, 'none:'), []);
  const w = { events: (stage) => [{ stage: 'invocation', job_id: 'a', fetch: 1 }, { stage: 'invocation', job_id: 'b', fetch: 2 }, { stage: 'purged', job_id: 'a' }].filter((e) => !stage || e.stage === stage) };
  assert.deepEqual(invocations(w, 'a'), [{ stage: 'invocation', job_id: 'a', fetch: 1 }]);
  assert.equal(invocations(w).length, 2);
});

test('harness: kvKeyOf and listPrefixOf name the usual rules\' keys of job items', () => {
  const entry = job.items.find((i) => i.type === 'entry');
  const asset = job.items.find((i) => i.type === 'asset');
  assert.equal(kvKeyOf('production', entry), `production:${entry.publish_locale}:entry:${entry.content_type.uid}:${entry.uid}`);
  assert.equal(kvKeyOf('production', entry, { contentType: false }), `production:${entry.publish_locale}:entry:${entry.uid}`);
  assert.equal(kvKeyOf('staging', asset), `staging:asset:${asset.uid}`);
  assert.equal(kvKeyOf('staging', asset, { contentType: false }), `staging:asset:${asset.uid}`);
  assert.equal(listPrefixOf('production', entry), `production:${entry.publish_locale}:list:${entry.content_type.uid}:`);
});

test('harness: listJobs follows the admin API cursor with the token; waitForJob waits for its condition', async () => {
  const records = Array.from({ length: 5 }, (_, i) => ({ job_id: `j${i}`, status: i < 4 ? 'done' : 'processing' }));
  const seen = [];
  const w = {
    async fetch(p, init) {
      seen.push([p, init.headers.authorization]);
      const url = new URL(p, 'http://worker');
      if (url.pathname.startsWith('/api/jobs/')) {
        const j = records.find((r) => r.job_id === url.pathname.slice('/api/jobs/'.length));
        return j ? Response.json(j) : Response.json({ error: 'not_found' }, { status: 404 });
      }
      const limit = Number(url.searchParams.get('limit'));
      const start = Number(url.searchParams.get('cursor') ?? 0);
      const end = start + limit;
      return Response.json({ jobs: records.slice(start, end), cursor: end < records.length ? String(end) : null });
    },
  };
  const pages = [];
  assert.deepEqual(await listJobs(w, 'tok', { limit: 2, onPage: (p) => pages.push(p.jobs.length) }), records);
  assert.deepEqual(pages, [2, 2, 1]);
  assert.deepEqual(seen.map(([p]) => p), ['/api/jobs?limit=2', '/api/jobs?limit=2&cursor=2', '/api/jobs?limit=2&cursor=4']);
  assert.ok(seen.every(([, a]) => a === 'Bearer tok'));
  assert.equal((await listJobs(w, 'tok')).length, 5);
  assert.deepEqual([isFinal(records[0]), isFinal(records[4]), isFinal(null)], [true, false, false]);
  setTimeout(() => { records[4].status = 'failed'; }, 150);
  assert.equal((await waitForJob(w, 'j4', isFinal, { token: 'tok', intervalMs: 20 })).status, 'failed');
  await assert.rejects(waitForJob(w, 'nope', Boolean, { token: 'tok', timeoutMs: 100, intervalMs: 20 }), /timed out waiting for job nope/);
});

// ---------------------------------------------------------------------------------------------
// Fake site behind the cache (issue 12: verifying purges by probing).

/** GET (or HEAD) a path of a fake site: {status, cache (CF-Cache-Status), age (number or null), text}. */
async function probe(site, path, method = 'GET') {
  const r = await fetch(site.url + path, { method });
  const age = r.headers.get('age');
  return { status: r.status, cache: r.headers.get('cf-cache-status'), age: age === null ? null : Number(age), text: await r.text() };
}

test('site: MISS fills the cache, then HIT with Age; cache() sets an age; requests are recorded', async () => {
  const site = await startSite();
  try {
    assert.match(site.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const first = await probe(site, '/blog/a');
    assert.deepEqual([first.status, first.cache, first.age], [200, 'MISS', null]);
    assert.match(first.text, /<html>.*\/blog\/a/s);
    const second = await probe(site, '/blog/a');
    assert.deepEqual([second.cache, second.age], ['HIT', 0]);
    assert.equal(site.cache(`${site.url}/blog/b?x=1`, { ageSeconds: 120 }), '/blog/b?x=1');
    const b = await probe(site, '/blog/b?x=1');
    assert.equal(b.cache, 'HIT');
    assert.ok(b.age >= 120 && b.age <= 121, String(b.age));
    assert.equal((await probe(site, '/blog/b')).cache, 'MISS', 'the query string is part of the key');
    assert.equal((await probe(site, '//blog/b')).cache, 'MISS', 'paths are exact: "//blog/b" is another entry');
    const head = await probe(site, '/blog/b?x=1', 'HEAD');
    assert.deepEqual([head.status, head.cache, head.text], [200, 'HIT', '']);
    assert.equal((await fetch(`${site.url}/blog/a`, { method: 'POST' })).status, 405);
    assert.deepEqual(site.requests.map((r) => [r.method, r.path, r.status, r.cacheStatus]), [
      ['GET', '/blog/a', 200, 'MISS'], ['GET', '/blog/a', 200, 'HIT'], ['GET', '/blog/b?x=1', 200, 'HIT'],
      ['GET', '/blog/b', 200, 'MISS'], ['GET', '//blog/b', 200, 'MISS'], ['HEAD', '/blog/b?x=1', 200, 'HIT'],
      ['POST', '/blog/a', 405, undefined],
    ]);
    assert.ok(site.requests.every((r) => Number.isInteger(r.at)));
    assert.equal(site.requestsTo(`${site.url}/blog/a`).length, 3);
    const st = site.state('/blog/b?x=1');
    assert.deepEqual([st.cached, st.invalidated, st.pinned], [true, false, false]);
    assert.ok(st.age >= 120);
    assert.deepEqual(site.state('/never'), { key: '/never', cached: false, cachedAt: null, age: null, invalidated: false, pinned: false });
    assert.equal(site.state('https://www.example.com/blog/a'), null, 'another host');
    assert.equal(site.cache('https://www.example.com/x'), null);
    site.reset();
    assert.equal(site.requests.length, 0);
    assert.equal(site.state('/blog/a').cached, false);
  } finally { await site.close(); }
});

test('site: purge → MISS, invalidate → EXPIRED (or REVALIDATED) then HIT, pin stays HIT; other hosts ignored', async () => {
  const site = await startSite();
  const rev = await startSite({ revalidated: true });
  try {
    for (const p of ['/a', '/b', '/c', '/d']) site.cache(p, { ageSeconds: 600 });
    site.pin('/d');
    assert.equal(site.purge([`${site.url}/a`, { url: `${site.url}/d` }, 'https://www.example.com/b', `http://127.0.0.1:1/b`]), 1);
    assert.equal(site.invalidate([`${site.url}/b`, `${site.url}/d`]), 1);
    assert.deepEqual([site.state('/a').cached, site.state('/b').invalidated, site.state('/c').cached], [false, true, true]);
    const a = await probe(site, '/a');
    const b = await probe(site, '/b');
    const b2 = await probe(site, '/b');
    const c = await probe(site, '/c');
    const d = await probe(site, '/d');
    assert.deepEqual([a.cache, a.age], ['MISS', null]);
    assert.deepEqual([b.cache, b.age], ['EXPIRED', 0]);
    assert.deepEqual([b2.cache, b2.age], ['HIT', 0], 're-cached by the EXPIRED answer');
    assert.ok(c.cache === 'HIT' && c.age >= 600);
    assert.ok(d.cache === 'HIT' && d.age >= 600, 'pinned: still the old copy');
    assert.ok(site.purgeEverything() >= 3);
    assert.equal((await probe(site, '/d')).cache, 'HIT', 'purge everything does not reach a pin either');
    assert.equal((await probe(site, '/c')).cache, 'MISS');
    site.unpin('/d');
    site.purge(`${site.url}/d`);
    assert.equal((await probe(site, '/d')).cache, 'MISS');
    // Prefixes at "/" boundaries, hosts, soft variants.
    for (const p of ['/blog', '/blog/x', '/blog/y?z=1', '/blogs', '/page']) site.cache(p);
    assert.equal(site.purgePrefixes([`${site.host}/blog`, 'www.example.com/page']), 3);
    assert.deepEqual(['/blog', '/blog/x', '/blog/y?z=1', '/blogs', '/page'].map((p) => site.state(p).cached), [false, false, false, true, true]);
    assert.equal(site.purgeHosts(['www.example.com']), 0);
    assert.equal(site.purgeHosts([site.host], { soft: true }), 4); // /c, /d, /blogs, /page
    assert.equal((await probe(site, '/page')).cache, 'EXPIRED');
    rev.cache('/x');
    rev.invalidate(`${rev.url}/x`);
    assert.equal((await probe(rev, '/x')).cache, 'REVALIDATED');
    assert.equal((await probe(rev, '/x')).cache, 'HIT');
  } finally { await site.close(); await rev.close(); }
});

test('site: faults answer a status without touching the cache, or drop the connection', async () => {
  const site = await startSite();
  try {
    site.cache('/x', { ageSeconds: 5 });
    site.fault({ path: '/x', status: 503, times: 1 });
    site.fault({ path: '/y', destroy: true, times: 1 });
    const f = await probe(site, '/x');
    assert.deepEqual([f.status, f.cache], [503, 'DYNAMIC']);
    assert.equal((await probe(site, '/x')).cache, 'HIT');
    await assert.rejects(fetch(`${site.url}/y`));
    assert.equal((await probe(site, '/y')).cache, 'MISS');
    assert.deepEqual(site.requests.map((r) => [r.path, r.status, !!r.fault]), [['/x', 503, true], ['/x', 200, false], ['/y', 0, true], ['/y', 200, false]]);
  } finally { await site.close(); }
});

test('cloudflare → site: successful purges reach the site (files, soft purge, prefixes, hosts, everything); failures do not', async () => {
  const site = await startSite();
  const other = await startSite();
  const cf = await startCloudflare({ site: [site, other] });
  try {
    const post = cfClient(cf);
    const seed = () => { for (const s of [site, other]) for (const p of ['/a', '/b', '/blog/x', '/page?q=1']) s.cache(p, { ageSeconds: 60 }); };
    seed();
    site.pin('/b');
    assert.equal((await post('/zones/z1/purge_cache', { files: [`${site.url}/a`, { url: `${site.url}/b`, headers: { 'Accept-Language': 'fr' } }, 'https://www.example.com/a'] })).status, 200);
    assert.deepEqual([site.state('/a').cached, site.state('/b').cached, other.state('/a').cached], [false, true, true]);
    assert.equal((await probe(site, '/b')).cache, 'HIT', 'the pinned URL is still a HIT after a 200 purge');
    assert.equal((await post('/zones/z1/invalidate_cache', { files: [`${site.url}/page?q=1`] })).status, 200);
    assert.equal((await probe(site, '/page?q=1')).cache, 'EXPIRED');
    assert.equal((await post('/zones/z1/purge_cache', { prefixes: [`${other.host}/blog`] })).status, 200);
    assert.deepEqual([other.state('/blog/x').cached, site.state('/blog/x').cached], [false, true]);
    assert.equal((await post('/zones/z1/purge_cache', { tags: ['anything'] })).status, 200);
    assert.equal(other.state('/a').cached, true, 'tags reach nothing');
    assert.equal((await post('/zones/z1/invalidate_cache', { hosts: [other.host] })).status, 200);
    assert.equal(other.state('/a').invalidated, true);
    // A refused or faulty purge changes nothing.
    cf.fault({ path: 'purge_cache', status: 500, times: 1 });
    assert.equal((await post('/zones/z1/purge_cache', { files: [`${site.url}/blog/x`] })).status, 500);
    assert.equal((await cfClient(cf, 'bad')('/zones/z1/purge_cache', { files: [`${site.url}/blog/x`] })).status, 403);
    assert.equal(site.state('/blog/x').cached, true);
    assert.equal((await post('/zones/z1/purge_cache', { purge_everything: true })).status, 200);
    assert.deepEqual([site.state('/blog/x').cached, site.state('/b').cached, other.state('/a').cached], [false, true, false]);
    // Slow propagation: answered first, applied later.
    seed();
    cf.setSitePurgeDelay(200);
    assert.equal((await post('/zones/z1/purge_cache', { files: [`${site.url}/a`] })).status, 200);
    assert.equal((await probe(site, '/a')).cache, 'HIT', 'not yet applied');
    await sleep(300);
    assert.equal((await probe(site, '/a')).cache, 'MISS');
  } finally { await cf.close(); await site.close(); await other.close(); }
});

test('stack: setBaseUrl moves environment URLs (keeping paths); makeStack({baseUrl}); startFakes({site}) wires it all', async () => {
  const s = makeStack({ apiKey: 'blt_base', token: 'tok_base' });
  setBaseUrl(s, 'production', 'http://127.0.0.1:4321/ignored/path');
  assert.deepEqual(s.environments[0].urls, [{ locale: 'en-us', url: 'http://127.0.0.1:4321/' }, { locale: 'fr-fr', url: 'http://127.0.0.1:4321/fr/' }]);
  assert.equal(s.environments[1].urls[0].url, 'https://staging.example.com/');
  setBaseUrl(s, 'blt_env_stg', { 'en-us': 'http://127.0.0.1:4321' });
  assert.deepEqual(s.environments[1].urls, [{ locale: 'en-us', url: 'http://127.0.0.1:4321' }]);
  assert.throws(() => setBaseUrl(s, 'nowhere', 'http://x'), /unknown environment/);
  const all = makeStack({ baseUrl: 'http://127.0.0.1:9' });
  assert.deepEqual(all.environments.flatMap((e) => e.urls.map((u) => u.url)), ['http://127.0.0.1:9/', 'http://127.0.0.1:9/fr/', 'http://127.0.0.1:9/', 'http://127.0.0.1:9/fr/']);

  const fakes = await startFakes({ stack: makeStack({ apiKey: 'blt_sitewire', token: 'tok_sw' }), site: { environments: ['production'] } });
  try {
    const { site, cf, cs, stack: st } = fakes;
    assert.ok(site && cf.sites.includes(site));
    const env = await (await fetch(`${cs.url}/v3/environments`, { headers: { api_key: st.apiKey, authorization: st.token } })).json();
    assert.deepEqual(env.environments.map((e) => e.urls[0].url), [`${site.url}/`, 'https://staging.example.com/']);
    site.cache('/blog/x');
    const r = await fetch(`${cf.url}/zones/z/purge_cache`, { method: 'POST', headers: { authorization: `Bearer ${cf.token}` }, body: JSON.stringify({ files: [`${site.url}/blog/x`] }) });
    assert.equal(r.status, 200);
    assert.equal(site.state('/blog/x').cached, false);
    assert.equal(fakes.workerVars({ adminToken: 'a' }).CLOUDFLARE_API_BASE, cf.url);
  } finally { await fakes.close(); }
});

// ---------------------------------------------------------------------------------------------
// Contentstack fake: webhooks and their executions (issue 12: recovering missed deliveries).

test('contentstack: GET /v3/webhooks lists webhooks (skip/limit/include_count), one webhook, auth and faults as elsewhere', async () => {
  const s = makeStack({ apiKey: 'blt_hooks', token: 'tok_hooks' });
  const hook = addWebhook(s, { name: 'Purge worker', targetUrl: 'https://purge.example.com/webhooks/contentstack', disabled: true, unhealthy: true });
  const other = addWebhook(s, { uid: 'blt_hook_2', name: 'Search index', targetUrl: 'https://search.example.com/hook', channels: ['entries.publish'] });
  const { c, call } = await refsFake([s]);
  try {
    const list = await call(s, '/v3/webhooks?include_count=true');
    assert.equal(list.status, 200);
    assert.equal(list.json.count, 2);
    const w = list.json.webhooks[0];
    assert.deepEqual(
      [w.uid, w.name, w.destinations[0].target_url, w.channels, w.disabled, w.unhealthy, w.concise_payload],
      [hook.uid, 'Purge worker', 'https://purge.example.com/webhooks/contentstack', JOB_CHANNELS, true, { state: true }, true],
    );
    assert.deepEqual(list.json.webhooks[1].unhealthy, { state: false });
    assert.equal(list.json.webhooks[1].uid, 'blt_hook_2');
    const page = await call(s, '/v3/webhooks?skip=1&limit=1');
    assert.deepEqual(page.json.webhooks.map((x) => x.uid), [other.uid]);
    assert.equal('count' in page.json, false);
    // Live state: flags changed on the object show at once.
    hook.unhealthy = false;
    assert.deepEqual((await call(s, `/v3/webhooks/${hook.uid}`)).json.webhook.unhealthy, { state: false });
    assert.equal((await call(s, '/v3/webhooks/bltnope')).status, 404);
    assert.equal((await call(s, '/v3/webhooks/bltnope/executions')).status, 404);
    // Auth: no token, a wrong token, a revoked token, no api_key.
    const raw = async (headers, path = '/v3/webhooks') => (await fetch(c.url + path, { headers })).status;
    assert.equal(await raw({ api_key: s.apiKey }), 401);
    assert.equal(await raw({ api_key: s.apiKey, authorization: 'wrong' }, `/v3/webhooks/${hook.uid}/executions`), 401);
    assert.equal(await raw({ authorization: s.token }), 412);
    c.revokeToken(s.apiKey);
    assert.equal((await call(s, '/v3/webhooks')).status, 401);
    c.restoreToken(s.apiKey);
    // Faults and the rate limit apply like on every endpoint; requests are recorded with their query.
    c.fault({ path: '/executions', status: 503, retryAfter: 4, times: 1 });
    const f = await fetch(`${c.url}/v3/webhooks/${hook.uid}/executions?skip=0`, { headers: { api_key: s.apiKey, authorization: s.token } });
    assert.deepEqual([f.status, f.headers.get('retry-after')], [503, '4']);
    assert.equal((await call(s, `/v3/webhooks/${hook.uid}/executions`)).status, 200);
    c.setRateLimit(2);
    const burst = await Promise.all([1, 2, 3].map(() => call(s, '/v3/webhooks')));
    assert.deepEqual(burst.map((r) => r.status).sort(), [200, 200, 429]);
    c.setRateLimit(0);
    assert.deepEqual(c.requestsTo('/executions').map((r) => [r.status, r.query.skip]), [[404, undefined], [401, undefined], [503, '0'], [200, undefined]]);
  } finally { await c.close(); }
});

test('contentstack: executions page newest first over >100, filter by from/to (inclusive) and query status', async () => {
  const s = makeStack({ apiKey: 'blt_execs', token: 'tok_execs' });
  const hook = addWebhook(s, { targetUrl: 'https://purge.example.com/webhooks/contentstack' });
  const t0 = Date.parse('2026-01-01T00:00:00.000Z');
  const statuses = [500, 502, null, 200, 404, 429];
  const made = [];
  // Added out of time order on purpose: the fake sorts by created_at.
  for (let i = 149; i >= 0; i--) {
    const payload = jobPayload({ jobId: `job-${i}`, environment: i % 2 ? 'production' : undefined, apiKey: s.apiKey, triggeredAt: new Date(t0 + i * 60_000).toISOString() });
    made.push(addExecution(s, hook.uid, { createdAt: new Date(t0 + i * 60_000).toISOString(), status: statuses[i % statuses.length], payload, retryCount: i % 3 }));
  }
  const e7 = made.find((e) => e.event_data.data.job_id === 'job-7');
  assert.deepEqual(e7.event_data, { module: 'jobs', api_key: s.apiKey, data: e7.request_details[0].request.body.data, event: 'jobs.environments.production.publish.completed' });
  assert.deepEqual(e7.channel, ['jobs.environments.production.publish.completed']);
  assert.equal(e7.retry_count, 1);
  assert.equal(e7.request_details.length, 2);
  assert.deepEqual([e7.request_details[0].request.method, e7.request_details[0].request.uri], ['POST', hook.targetUrl]);
  assert.equal(e7.status, 502);
  assert.equal(e7.request_details[0].response.statusCode, 502);
  const timeout = made.find((e) => e.status === null);
  assert.equal(timeout.request_details[0].response, undefined);
  assert.equal(timeout.request_details[0].error, 'ESOCKETTIMEDOUT');
  assert.throws(() => addExecution(s, 'nope', { payload: {} }), /unknown webhook/);

  const { c, call } = await refsFake([s]);
  try {
    const base = `/v3/webhooks/${hook.uid}/executions`;
    const from = new Date(t0).toISOString();
    const to = new Date(t0 + 149 * 60_000).toISOString();
    const ids = [];
    for (let skip = 0; ; skip += 100) {
      const r = await call(s, `${base}?from=${from}&to=${to}&skip=${skip}&limit=250`);
      assert.equal(r.status, 200);
      assert.ok(r.json.webhooks.length <= 100);
      ids.push(...r.json.webhooks.map((e) => e.event_data.data.job_id));
      if (r.json.webhooks.length < 100) break;
    }
    assert.equal(ids.length, 150);
    assert.deepEqual(ids, Array.from({ length: 150 }, (_, i) => `job-${149 - i}`), 'newest first');
    const first = (await call(s, `${base}?limit=1`)).json.webhooks[0];
    assert.deepEqual(first.request_details[0].request.body, jobPayload({ jobId: 'job-149', environment: 'production', apiKey: s.apiKey, triggeredAt: new Date(t0 + 149 * 60_000).toISOString() }));
    // from/to inclusive.
    const win = await call(s, `${base}?from=${new Date(t0 + 10 * 60_000).toISOString()}&to=${new Date(t0 + 12 * 60_000).toISOString()}`);
    assert.deepEqual(win.json.webhooks.map((e) => e.event_data.data.job_id), ['job-12', 'job-11', 'job-10']);
    assert.equal((await call(s, `${base}?from=yesterday`)).status, 400);
    // query on status.
    const q = (o) => `${base}?limit=100&query=${encodeURIComponent(JSON.stringify(o))}`;
    const failed = await call(s, q({ status: { $gte: 400 } }));
    assert.ok(failed.json.webhooks.length > 0 && failed.json.webhooks.every((e) => e.status >= 400));
    const all400 = made.filter((e) => e.status !== null && e.status >= 400).length;
    assert.equal(failed.json.webhooks.length, Math.min(100, all400));
    assert.ok((await call(s, q({ status: { $lt: 300 } }))).json.webhooks.every((e) => e.status === 200));
    const e502 = (await call(s, q({ status: { $eq: 502 } }))).json.webhooks;
    assert.equal(e502.length, 25);
    assert.ok(e502.every((e) => e.status === 502));
    assert.equal((await call(s, q({ status: 502 }))).json.webhooks.length, 25, 'a plain value is equality');
    assert.ok((await call(s, q({ status: { $in: [null, 429] } }))).json.webhooks.every((e) => e.status === null || e.status === 429));
    const ne = (await call(s, q({ status: { $ne: 200 }, other: 1 }))).json.webhooks;
    assert.ok(ne.some((e) => e.status === null) && ne.every((e) => e.status !== 200));
    assert.equal((await call(s, q({ status: { $gte: 400, $regex: 'x' } }))).json.webhooks.length, Math.min(100, all400), 'unknown operators are ignored');
    assert.equal((await call(s, `${base}?query=%7Bbad`)).status, 400);
    // Recorded with their query, so tests can check what the Worker asked.
    const asked = c.requestsTo(/\/executions\?from=/);
    assert.ok(asked.every((r) => r.path === base && r.query.from && r.apiKey === s.apiKey));
    assert.deepEqual(asked.map((r) => [r.query.skip, r.status]), [['0', 200], ['100', 200], [undefined, 200], [undefined, 400]]);
  } finally { await c.close(); }
});
