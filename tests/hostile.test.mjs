// Hostile-input matrix: malformed and hostile requests against the real Worker, each with its
// expected status and code, and proof that none of them recorded a job or enqueued anything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { listJobs } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { makeStack } from '../devkit/fakes/stack.mjs';
import { jobPayload, signRsa, signHmac, hmacHex } from '../devkit/harness/sign.mjs';

const ADMIN = 'hostile-admin-token-0c0c';
const SECRET = 'hostile-hmac-secret-5e5e';
const stack = makeStack();
let sys, cs, w;

before(async () => {
  sys = await startSystem({
    stack,
    adminToken: ADMIN,
    cloudflare: false,
    rules: { production: { kv_binding: 'CONTENT_KV', entry: { kv_keys: ['{uid}'] } } },
    vars: { WEBHOOK_VERIFY: 'hmac,rsa', CONTENTSTACK_HMAC_SECRETS: SECRET },
  });
  ({ cs, w } = sys);
});
after(async () => sys?.close());

const payload = (over = {}) => ({ ...jobPayload({ jobId: 'hostile-job', environment: 'production', apiKey: stack.apiKey }), ...over });
const text = (o) => (typeof o === 'string' || Buffer.isBuffer(o) ? o : JSON.stringify(o));

/** Headers for a body signed by both checks (each can be overridden or removed with null). */
function signed(body, extra = {}) {
  const b = text(body);
  const h = {
    'content-type': 'application/json',
    'x-contentstack-hmac-signature': signHmac(b, SECRET),
    'x-contentstack-request-signature': signRsa(b, cs.privateKey),
  };
  for (const [k, v] of Object.entries(extra)) {
    if (v === null) delete h[k];
    else h[k] = v;
  }
  return h;
}

const t = () => Math.floor(Date.now() / 1000);
const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const okBody = () => text(payload());
const iso = (ms) => new Date(ms).toISOString();
const hook = '/webhooks/contentstack';
const bearer = { authorization: `Bearer ${ADMIN}` };

// [name, method, path, headers(body) => headers, body, expected status, expected code]
const CASES = [
  ['GET the intake', 'GET', hook, () => ({}), null, 405, 'method_not_allowed'],
  ['PUT the intake', 'PUT', hook, signed, okBody(), 405, 'method_not_allowed'],
  ['DELETE the intake', 'DELETE', hook, () => ({}), null, 405, 'method_not_allowed'],
  ['PATCH the intake', 'PATCH', hook, signed, okBody(), 405, 'method_not_allowed'],
  ['OPTIONS the intake', 'OPTIONS', hook, () => ({}), null, 405, 'method_not_allowed'],
  ['no content type', 'POST', hook, (b) => signed(b, { 'content-type': null }), okBody(), 415, 'unsupported_media_type'],
  ['text/plain', 'POST', hook, (b) => signed(b, { 'content-type': 'text/plain' }), okBody(), 415, 'unsupported_media_type'],
  ['form encoded', 'POST', hook, (b) => signed(b, { 'content-type': 'application/x-www-form-urlencoded' }), okBody(), 415, 'unsupported_media_type'],
  ['multipart', 'POST', hook, (b) => signed(b, { 'content-type': 'multipart/form-data; boundary=x' }), okBody(), 415, 'unsupported_media_type'],
  ['application/jsonx', 'POST', hook, (b) => signed(b, { 'content-type': 'application/jsonx' }), okBody(), 415, 'unsupported_media_type'],
  ['json-patch', 'POST', hook, (b) => signed(b, { 'content-type': 'application/json-patch+json' }), okBody(), 415, 'unsupported_media_type'],
  ['10 MB body', 'POST', hook, () => ({ 'content-type': 'application/json' }), JSON.stringify({ pad: 'x'.repeat(10 * 1024 * 1024) }), 413, 'body_too_large'],
  ['no signatures at all', 'POST', hook, () => ({ 'content-type': 'application/json' }), okBody(), 401, 'missing_signature'],
  ['hmac header missing', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': null }), okBody(), 401, 'missing_signature'],
  ['rsa header missing', 'POST', hook, (b) => signed(b, { 'x-contentstack-request-signature': null }), okBody(), 401, 'missing_signature'],
  ['hmac header with only t=', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': 't=' }), okBody(), 401, 'invalid_signature'],
  ['hmac t not a number', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': `t=soon,v1=${hmacHex(b, SECRET, t())}` }), okBody(), 401, 'invalid_signature'],
  ['hmac v1 63 hex digits', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': `t=${t()},v1=${hmacHex(b, SECRET, t()).slice(1)}` }), okBody(), 401, 'invalid_signature'],
  ['hmac v1 not hex', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': `t=${t()},v1=${'g'.repeat(64)}` }), okBody(), 401, 'invalid_signature'],
  ['hmac v1 base64 instead of hex', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': `t=${t()},v1=${Buffer.from(hmacHex(b, SECRET, t()), 'hex').toString('base64')}` }), okBody(), 401, 'invalid_signature'],
  ['hmac only a v0 label', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': `t=${t()},v0=${hmacHex(b, SECRET, t())}` }), okBody(), 401, 'invalid_signature'],
  ['hmac of another body', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': signHmac(b + ' ', SECRET) }), okBody(), 401, 'invalid_signature'],
  ['hmac header duplicated', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': `${signHmac(b, SECRET)}, t=1,v1=${'0'.repeat(64)}` }), okBody(), 401, 'invalid_signature'],
  ['hmac header 16 KB of junk', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': `t=${t()},` + 'v1=zz,'.repeat(2700) }), okBody(), 401, 'invalid_signature'],
  ['rsa v1 not base64', 'POST', hook, (b) => signed(b, { 'x-contentstack-request-signature': 'v1=%%%%' }), okBody(), 401, 'invalid_signature'],
  ['rsa v1 truncated (255 bytes)', 'POST', hook, (b) => signed(b, { 'x-contentstack-request-signature': 'v1=' + Buffer.from(signRsa(b, cs.privateKey).slice(3), 'base64').subarray(1).toString('base64') }), okBody(), 401, 'invalid_signature'],
  ['rsa v1 empty', 'POST', hook, (b) => signed(b, { 'x-contentstack-request-signature': 'v1=' }), okBody(), 401, 'invalid_signature'],
  ['rsa v1 url-safe base64', 'POST', hook, (b) => signed(b, { 'x-contentstack-request-signature': 'v1=' + Buffer.from(signRsa(b, cs.privateKey).slice(3), 'base64').toString('base64url') + '_-' }), okBody(), 401, 'invalid_signature'],
  ['rsa from another key', 'POST', hook, (b) => signed(b, { 'x-contentstack-request-signature': signRsa(b, other) }), okBody(), 401, 'invalid_signature'],
  ['body changed after signing', 'POST', hook, (b) => signed(b.replace('hostile-job', 'hostile-jab')), okBody(), 401, 'invalid_signature'],
  ['empty body, signed', 'POST', hook, signed, '', 400, 'invalid_json'],
  ['truncated JSON, signed', 'POST', hook, signed, okBody().slice(0, 40), 400, 'invalid_json'],
  ['not UTF-8, signed', 'POST', hook, signed, Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), 400, 'invalid_json'],
  ['byte-order mark, signed', 'POST', hook, signed, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(okBody())]), 400, 'invalid_json'],
  ['nested 129 deep, signed', 'POST', hook, signed, '{"a":' + '['.repeat(128) + ']'.repeat(128) + '}', 400, 'invalid_json'],
  ['job_id a number', 'POST', hook, signed, text(payload({ data: { job_id: 12345 } })), 400, 'invalid_job_id'],
  ['job_id an array', 'POST', hook, signed, text(payload({ data: { job_id: ['a'] } })), 400, 'invalid_job_id'],
  ['job_id an object', 'POST', hook, signed, text(payload({ data: { job_id: { uid: 'x' } } })), 400, 'invalid_job_id'],
  ['job_id empty', 'POST', hook, signed, text(payload({ data: { job_id: '' } })), 400, 'invalid_job_id'],
  ['job_id 257 bytes', 'POST', hook, signed, text(payload({ data: { job_id: 'é'.repeat(128) + 'x' } })), 400, 'invalid_job_id'],
  ['job_id missing', 'POST', hook, signed, text(payload({ data: {} })), 400, 'missing_job_id'],
  ['job_id null', 'POST', hook, signed, text(payload({ data: { job_id: null } })), 400, 'missing_job_id'],
  ['look-alike "jоbs" (Cyrillic o)', 'POST', hook, signed, text(payload({ event: 'jоbs.environments.production.publish.completed' })), 200, 'ignored'],
  ['look-alike "publіsh" (Cyrillic i)', 'POST', hook, signed, text(payload({ event: 'jobs.environments.production.publіsh.completed' })), 200, 'ignored'],
  ['channel with a trailing space', 'POST', hook, signed, text(payload({ event: 'jobs.environments.production.publish.completed ' })), 200, 'ignored'],
  ['fullwidth dot in the channel', 'POST', hook, signed, text(payload({ event: 'jobs．environments.production.publish.completed' })), 200, 'ignored'],
  ['job started, not completed', 'POST', hook, signed, text(payload({ event: 'jobs.environments.production.publish.started' })), 200, 'ignored'],
  ['environment without a rule', 'POST', hook, signed, text(payload({ event: 'jobs.environments.qa.publish.completed' })), 200, 'ignored'],
  ['stale triggered_at', 'POST', hook, signed, text(payload({ triggered_at: iso(Date.now() - 3600e3) })), 401, 'stale_timestamp'],
  ['future triggered_at', 'POST', hook, signed, text(payload({ triggered_at: iso(Date.now() + 3600e3) })), 401, 'stale_timestamp'],
  ['triggered_at not a date', 'POST', hook, signed, text(payload({ triggered_at: 'yesterday' })), 401, 'missing_timestamp'],
  ['hmac t from an hour ago', 'POST', hook, (b) => signed(b, { 'x-contentstack-hmac-signature': signHmac(b, SECRET, t() - 3600) }), okBody(), 401, 'stale_timestamp'],
  ['api_key of another stack', 'POST', hook, signed, text(payload({ api_key: 'blt_intruder' })), 403, 'stack_not_allowed'],
  ['api_key missing', 'POST', hook, signed, text(payload({ api_key: undefined })), 403, 'stack_not_allowed'],
  ['api_key a number', 'POST', hook, signed, text(payload({ api_key: 7 })), 403, 'stack_not_allowed'],
  ['intake with a trailing slash', 'POST', hook + '/', signed, okBody(), 404, null],
  ['intake in upper case', 'POST', '/Webhooks/Contentstack', signed, okBody(), 404, null],
  ['/api without a token', 'GET', '/api/jobs', () => ({}), null, 401, 'unauthorized'],
  ['/api with the token in the query', 'GET', `/api/jobs?token=${ADMIN}`, () => ({}), null, 401, 'unauthorized'],
  ['/api with Basic instead of Bearer', 'GET', '/api/jobs', () => ({ authorization: `Basic ${Buffer.from(ADMIN).toString('base64')}` }), null, 401, 'unauthorized'],
  ['/api with a token prefix', 'GET', '/api/jobs', () => ({ authorization: `Bearer ${ADMIN.slice(0, -1)}` }), null, 401, 'unauthorized'],
  ['/api with a longer token', 'GET', '/api/jobs', () => ({ authorization: `Bearer ${ADMIN}x` }), null, 401, 'unauthorized'],
  ['/api dot-segments land on /api/', 'GET', '/api/jobs/%2e%2e', () => bearer, null, 404, 'not_found'],
  ['dot-segments into /api without a token', 'GET', '/healthz/../api/jobs', () => ({}), null, 401, 'unauthorized'],
  ['/api double slash', 'GET', '/api//jobs', () => bearer, null, 404, 'not_found'],
  ['/api replay with extra segment', 'POST', '/api/jobs/x/replay/now', () => bearer, null, 404, 'not_found'],
  ['/api limit out of range', 'GET', '/api/jobs?limit=100000', () => bearer, null, 400, 'bad_request'],
  ['/api encoded slash in a job id', 'GET', '/api/jobs/a%2Fb', () => bearer, null, 404, 'not_found'],
  ['/API in upper case', 'GET', '/API/jobs', () => bearer, null, 404, null],
];

test(`hostile-input matrix (${CASES.length} cases): expected status, and nothing recorded or enqueued`, async () => {
  assert.ok(CASES.length >= 40);
  const count = async () => (await listJobs(w, ADMIN)).length;
  const jobsBefore = await count();
  const failures = [];
  for (const [name, method, path, headers, body, status, code] of CASES) {
    const init = { method, headers: headers(body ?? '') };
    if (body !== null && method !== 'GET' && method !== 'HEAD') init.body = body;
    let r;
    try {
      r = await w.fetch(path, init);
    } catch (e) {
      failures.push(`${name}: request failed: ${e.message}`);
      continue;
    }
    const raw = await r.text();
    let json = null;
    try {
      json = JSON.parse(raw);
    } catch {}
    if (r.status !== status) failures.push(`${name}: status ${r.status}, expected ${status}: ${raw.slice(0, 120)}`);
    else if (code === 'ignored' && json?.status !== 'ignored') failures.push(`${name}: not ignored: ${raw}`);
    else if (code && code !== 'ignored' && json?.error !== code) failures.push(`${name}: code ${json?.error}, expected ${code}`);
    if (json?.message && /v1=|[0-9a-f]{64}/.test(json.message)) failures.push(`${name}: signature material in the message`);
    if (raw.includes(SECRET) || raw.includes(ADMIN)) failures.push(`${name}: a secret in the answer`);
    if ((await count()) !== jobsBefore) failures.push(`${name}: a job was recorded`);
  }
  assert.deepEqual(failures, []);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(cs.countsBy('/v3/bulk/jobs/'), 0, 'a queue message was processed');
  const logs = w.logs.join('\n');
  assert.ok(!logs.includes(SECRET) && !logs.includes(ADMIN), 'a secret in the logs');
});

test('the Worker still accepts a good delivery after the matrix', async () => {
  const body = okBody();
  const r = await w.fetch(hook, { method: 'POST', headers: signed(body), body });
  assert.equal(r.status, 202, await r.text());
});
