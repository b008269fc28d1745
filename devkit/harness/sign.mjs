// Contentstack webhook payload builders and signers (RSA-PSS default signature, HMAC opt-in).
// Only Node built-ins.

import crypto from 'node:crypto';

/** Channel string of a job-completion event. */
export function jobChannel(action = 'publish', environment) {
  return environment ? `jobs.environments.${environment}.${action}.completed` : `jobs.environments.${action}.completed`;
}

/**
 * A realistic job-completion webhook body (an object; JSON.stringify it yourself so the signed
 * bytes are exactly what you send).
 * @param {object} o
 * @param {string} o.jobId
 * @param {'publish'|'unpublish'} [o.action='publish']
 * @param {string} [o.environment] environment NAME in the channel; undefined = generic channel
 * @param {string} [o.apiKey='blt_api_key_1']
 * @param {string} [o.triggeredAt=now ISO]
 * @param {'event'|'module'|'channel'|'data_job'} [o.shape='event']
 *   event:    module "jobs", event = full channel, job id at data.job_id
 *   module:   module "jobs", event = channel without "jobs.", job id at top-level job_id
 *   channel:  module "jobs", event "completed", channel = full channel, job id at data.job_id
 *   data_job: like 'event' but the job id under data.job.uid (data.job also has action/status/summary)
 * @param {object} [o.summary] job summary counts copied into data (e.g. job.summary from stack.mjs)
 * @param {string[]} [o.environments] added as data.environments (names or uids) when given
 * @param {string} [o.jobIdAt] override job id placement: 'top' | 'data' | 'data.job.uid' | 'data.job.job_id' | 'none'
 * @param {object} [o.extra] merged into the top level last (e.g. {channels:[…]})
 */
export function jobPayload({
  jobId,
  action = 'publish',
  environment,
  apiKey = 'blt_api_key_1',
  triggeredAt = new Date().toISOString(),
  shape = 'event',
  summary,
  environments,
  jobIdAt,
  extra,
} = {}) {
  const channel = jobChannel(action, environment);
  const body = { module: 'jobs', api_key: apiKey, event: channel, triggered_at: triggeredAt, data: {} };
  let at = 'data';
  switch (shape) {
    case 'event': break;
    case 'module': body.event = channel.slice('jobs.'.length); at = 'top'; break;
    case 'channel': body.event = 'completed'; body.channel = channel; break;
    case 'data_job': at = 'data.job.uid'; break;
    default: throw new Error(`jobPayload: unknown shape ${shape}`);
  }
  at = jobIdAt ?? at;
  const data = body.data;
  data.status = 'completed';
  data.action = action;
  if (summary) {
    data.summary = {
      success: summary.success ?? 0,
      unsuccess: summary.unsuccess ?? 0,
      skip: summary.skip ?? 0,
      total_processed: summary.total_processed ?? 0,
    };
  }
  if (environments) data.environments = [...environments];
  if (at === 'data.job.uid' || at === 'data.job.job_id') {
    data.job = { action, status: 'complete' };
    data.job[at === 'data.job.uid' ? 'uid' : 'job_id'] = jobId;
    if (data.summary) data.job.summary = data.summary;
  } else if (at === 'data') {
    data.job_id = jobId;
  } else if (at === 'top') {
    body.job_id = jobId;
  }
  if (extra) Object.assign(body, extra);
  return body;
}

const toKey = (k) => (typeof k === 'string' || Buffer.isBuffer(k) ? crypto.createPrivateKey(k) : k);

/** Default Contentstack signature: 'v1=<base64 RSA-PSS-SHA256, salt 32>' over the raw body. */
export function signRsa(bodyString, privateKey) {
  const sig = crypto.sign('sha256', Buffer.from(bodyString), {
    key: toKey(privateKey),
    padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  });
  return `v1=${sig.toString('base64')}`;
}

/** Verify a 'v1=<base64>' RSA-PSS signature (test-side check of signRsa / the worker's expectations). */
export function verifyRsa(bodyString, header, publicKey) {
  const m = /(?:^|,)\s*v1=([A-Za-z0-9+/=]+)/.exec(header ?? '');
  if (!m) return false;
  return crypto.verify('sha256', Buffer.from(bodyString), {
    key: typeof publicKey === 'string' ? crypto.createPublicKey(publicKey) : publicKey,
    padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  }, Buffer.from(m[1], 'base64'));
}

/** HMAC-SHA256 hex of `${t}.${body}`. */
export function hmacHex(bodyString, secret, t) {
  return crypto.createHmac('sha256', secret).update(`${t}.`).update(Buffer.from(bodyString)).digest('hex');
}

/**
 * HMAC signature header value 't=<t>,v1=<hex>[,v1=<hex>…]'.
 * @param {string} bodyString
 * @param {string|string[]} secret one secret, or several (rotation: one v1 per secret, in order)
 * @param {number} [t=now] unix seconds
 */
export function signHmac(bodyString, secret, t = Math.floor(Date.now() / 1000)) {
  const secrets = Array.isArray(secret) ? secret : [secret];
  return [`t=${t}`, ...secrets.map((s) => `v1=${hmacHex(bodyString, s, t)}`)].join(',');
}

/** Check an HMAC header against one or more secrets (any secret × any v1). */
export function verifyHmac(bodyString, header, secrets) {
  const parts = String(header ?? '').split(',').map((p) => p.trim());
  const t = parts.find((p) => p.startsWith('t='))?.slice(2);
  if (!t) return false;
  const sigs = parts.filter((p) => p.startsWith('v1=')).map((p) => Buffer.from(p.slice(3), 'utf8'));
  for (const s of [].concat(secrets)) {
    const want = Buffer.from(hmacHex(bodyString, s, t), 'utf8');
    if (sigs.some((g) => g.length === want.length && crypto.timingSafeEqual(g, want))) return true;
  }
  return false;
}

/** A fresh 2048-bit RSA pair {publicKey, privateKey, publicKeyPem (PKCS#1)}. */
export function makeRsaKeyPair() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { publicKey, privateKey, publicKeyPem: publicKey.export({ type: 'pkcs1', format: 'pem' }) };
}

/**
 * A fetch() request as Contentstack would send it.
 * @param {string} url
 * @param {string|object} bodyString (objects are JSON.stringified)
 * @param {object} [o]
 * @param {KeyObject|string} [o.rsaKey] private key -> X-Contentstack-Request-Signature
 * @param {string|string[]} [o.hmacSecret] -> x-contentstack-hmac-signature
 * @param {number} [o.hmacT] HMAC timestamp (unix s; default now)
 * @param {string} [o.basicAuth] 'user:password' -> Authorization: Basic …
 * @param {object} [o.headers] extra headers; a null/undefined value removes a default header
 * @returns {{url, init: {method, headers, body}}}
 */
export function webhookRequest(url, bodyString, { rsaKey, hmacSecret, hmacT, basicAuth, headers = {} } = {}) {
  const body = typeof bodyString === 'string' || Buffer.isBuffer(bodyString) ? bodyString : JSON.stringify(bodyString);
  const h = {
    'content-type': 'application/json',
    'user-agent': 'Contentstack',
  };
  if (rsaKey) h['x-contentstack-request-signature'] = signRsa(body, rsaKey);
  if (hmacSecret !== undefined) h['x-contentstack-hmac-signature'] = signHmac(body, hmacSecret, hmacT);
  if (basicAuth !== undefined) h.authorization = `Basic ${Buffer.from(basicAuth).toString('base64')}`;
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (v === null || v === undefined) delete h[key];
    else h[key] = String(v);
  }
  return { url, init: { method: 'POST', headers: h, body } };
}
