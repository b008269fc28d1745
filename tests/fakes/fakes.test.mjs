// Tests of the test doubles themselves: node --test --test-timeout=60000 tests/fakes/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { makeStack, addJob, makeDemoStack } from './stack.mjs';
import { startContentstack } from './contentstack.mjs';
import { startCloudflare } from './cloudflare.mjs';
import { jobPayload, signRsa, signHmac, webhookRequest, verifyHmac } from '../helpers/sign.mjs';

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
  assert.equal(Object.keys(demo.jobs).length, 3);
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
