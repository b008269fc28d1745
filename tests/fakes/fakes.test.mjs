// Tests of the test doubles in devkit/ themselves: node --test --test-timeout=120000 tests/fakes/fakes.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { makeStack, addJob, addEntry, addAsset, addReference, publishEntry, unpublishEntry, makeDemoStack } from '../../devkit/fakes/stack.mjs';
import { invocations } from '../../devkit/harness/system.mjs';
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
