// Deterministic sample Contentstack stacks and bulk jobs for the fake Management API.
//
// A stack is a plain object the fake server (contentstack.mjs) reads:
//   { apiKey, token, branch, environments: [{name, uid, urls}], contentTypes,
//     entries: Map<uid, entry>, assets: Map<uid, asset>, jobs: Map<jobId, job> }
// An entry is { uid, content_type, title, url?, locales, version, branch?, refs, published }:
//   refs      – uids of the entries and assets it references (addReference), answered by the
//               fake's "references" endpoints from the referenced side;
//   published – { [envUid]: { [locale]: version } }, set by publishEntry/unpublishEntry and by
//               the successful entry items of publish/unpublish jobs (addJob).
// Webhooks (addWebhook) live in stack.webhooks: Map<uid, webhook>, each with its executions
// (addExecution), answered by the fake's GET /v3/webhooks and …/{uid}/executions.
// Everything is generated from a seeded PRNG and a counter: no Math.random, so the same
// calls always produce the same uids, versions and hashes.

import { jobPayload } from '../harness/sign.mjs';

const DEFAULT_ENVIRONMENTS = [
  {
    name: 'production',
    uid: 'blt_env_prod',
    urls: [
      { locale: 'en-us', url: 'https://www.example.com/' },
      { locale: 'fr-fr', url: 'https://www.example.com/fr/' },
    ],
  },
  {
    name: 'staging',
    uid: 'blt_env_stg',
    urls: [
      { locale: 'en-us', url: 'https://staging.example.com/' },
      { locale: 'fr-fr', url: 'https://staging.example.com/fr/' },
    ],
  },
];

const BASE_TIME = Date.parse('2024-07-01T05:22:32.475Z');

/** FNV-1a 32-bit hash of a string (seed material). */
function fnv1a(str) {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: small seeded PRNG returning floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(n, width) {
  return (n >>> 0).toString(16).padStart(width, '0').slice(-width);
}

function randHex(rand, chars) {
  let s = '';
  while (s.length < chars) s += hex(Math.floor(rand() * 0x100000000), 8);
  return s.slice(0, chars);
}

/** Next deterministic uid of a stack: "blt" + 4 hex of the stack seed + 12 hex of a counter. */
function nextUid(stack) {
  stack._seq += 1;
  return `blt${hex(stack._seed, 8).slice(0, 4)}${stack._seq.toString(16).padStart(12, '0')}`;
}

function nextJobId(stack) {
  const h = randHex(stack._rand, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function iso(ms) {
  return new Date(ms).toISOString();
}

/**
 * Create a stack.
 * @param {object} [o]
 * @param {string} [o.apiKey='blt_api_key_1']
 * @param {string} [o.token='cs_mgmt_token_1'] management token (sent raw in `authorization`)
 * @param {string} [o.branch] branch; when set and not "main", the fake requires a `branch` header
 * @param {Array<{name,uid,urls}>} [o.environments]
 * @param {string[]} [o.contentTypes=['blog','page','author']]
 * @param {number} [o.seed] PRNG seed (default: hash of apiKey)
 * @param {string} [o.user='blt_user_1'] user uid written on job items
 * @param {string} [o.baseUrl] an origin (e.g. a fake site's url) every environment's URLs are moved to,
 *   keeping their paths (see setBaseUrl)
 */
export function makeStack({
  apiKey = 'blt_api_key_1',
  token = 'cs_mgmt_token_1',
  branch,
  environments = DEFAULT_ENVIRONMENTS,
  contentTypes = ['blog', 'page', 'author'],
  seed,
  user = 'blt_user_1',
  baseUrl,
} = {}) {
  const s = seed ?? fnv1a(apiKey);
  const stack = {
    apiKey,
    token,
    branch,
    user,
    environments: structuredClone(environments),
    contentTypes: [...contentTypes],
    entries: new Map(),
    assets: new Map(),
    jobs: new Map(),
    webhooks: new Map(),
    _seed: s >>> 0,
    _rand: prng(s),
    _seq: 0,
    _jobSeq: 0,
  };
  if (baseUrl !== undefined) for (const e of stack.environments) setBaseUrl(stack, e.uid, baseUrl);
  return stack;
}

/**
 * Point an environment's URLs (what the Worker's `{base_url}` expands to) somewhere else, e.g. at a
 * fake site. `base` is either an origin string (any path in it is ignored): every locale URL keeps
 * its own path and gets that origin ("https://www.example.com/fr/" → "http://127.0.0.1:PORT/fr/");
 * or an object {locale: url} that replaces the list with exactly those URLs. Returns the environment.
 * Note the default URLs end in "/", so "{base_url}{url}" with url "/blog/x" gives "…//blog/x".
 */
export function setBaseUrl(stack, envNameOrUid, base) {
  const env = findEnvironment(stack, envNameOrUid);
  if (!env) throw new Error(`setBaseUrl: unknown environment ${envNameOrUid}`);
  if (base && typeof base === 'object') {
    env.urls = Object.entries(base).map(([locale, url]) => ({ locale, url: String(url) }));
    return env;
  }
  const origin = new URL(String(base)).origin;
  env.urls = env.urls.map((u) => {
    let path = '/';
    try { const old = new URL(u.url); path = old.pathname + old.search; } catch { /* keep "/" */ }
    return { ...u, url: origin + path };
  });
  return env;
}

/** Environment of a stack by name or uid (undefined when unknown). */
export function findEnvironment(stack, nameOrUid) {
  return stack.environments.find((e) => e.name === nameOrUid || e.uid === nameOrUid);
}

/**
 * Register an entry directly (used by addJob; handy for hand-made tests). It starts unpublished.
 * @param {object} stack
 * @param {object} [o]
 * @param {string[]} [o.refs=[]] uids of the entries/assets it references (see addReference)
 */
export function addEntry(stack, { uid = nextUid(stack), contentType, title, url, locales = ['en-us'], version = 1, branch, refs = [] } = {}) {
  const ct = contentType ?? stack.contentTypes[0];
  const dangling = refs.find((to) => to !== uid && !stack.entries.has(to) && !stack.assets.has(to));
  if (dangling) throw new Error(`addEntry: unknown entry or asset ${dangling}`);
  const entry = { uid, content_type: ct, title: title ?? `Entry ${uid}`, url, locales: [...locales], version, refs: [], published: {} };
  if (branch) entry.branch = branch; // the fake answers it only with this branch header (default: the stack's)
  stack.entries.set(uid, entry);
  for (const to of refs) addReference(stack, uid, to);
  return entry;
}

/**
 * Let entry `fromUid` reference the entry or asset `toUid` (once; adding it again is a no-op).
 * Throws when either is unknown. Returns the referencing entry.
 */
export function addReference(stack, fromUid, toUid) {
  const from = stack.entries.get(fromUid);
  if (!from) throw new Error(`addReference: unknown entry ${fromUid}`);
  if (!stack.entries.has(toUid) && !stack.assets.has(toUid)) throw new Error(`addReference: unknown entry or asset ${toUid}`);
  if (!from.refs) from.refs = [];
  if (!from.refs.includes(toUid)) from.refs.push(toUid);
  return from;
}

function entryAndEnv(stack, fn, uid, envUidOrName) {
  const entry = stack.entries.get(uid);
  if (!entry) throw new Error(`${fn}: unknown entry ${uid}`);
  const env = findEnvironment(stack, envUidOrName);
  if (!env) throw new Error(`${fn}: unknown environment ${envUidOrName}`);
  if (!entry.published) entry.published = {};
  return { entry, env };
}

/**
 * Mark entry `uid` published to an environment (name or uid) in `locale` at `version`
 * (default: its latest). Sets entry.published[envUid][locale]; returns the entry.
 */
export function publishEntry(stack, uid, envUidOrName, locale, version) {
  const { entry, env } = entryAndEnv(stack, 'publishEntry', uid, envUidOrName);
  (entry.published[env.uid] ??= {})[locale] = version ?? entry.version;
  return entry;
}

/** Mark entry `uid` no longer published to an environment (name or uid) in `locale`; returns the entry. */
export function unpublishEntry(stack, uid, envUidOrName, locale) {
  const { entry, env } = entryAndEnv(stack, 'unpublishEntry', uid, envUidOrName);
  const byLocale = entry.published[env.uid];
  if (byLocale) {
    delete byLocale[locale];
    if (Object.keys(byLocale).length === 0) delete entry.published[env.uid];
  }
  return entry;
}

/** Register an asset directly. */
export function addAsset(stack, { uid = nextUid(stack), filename, version = 1, hash, branch } = {}) {
  const n = stack.assets.size + 1;
  const fname = filename ?? `file-${n}.jpg`;
  const h = hash ?? randHex(stack._rand, 16);
  const asset = {
    uid,
    filename: fname,
    title: fname,
    version,
    url: `https://images.contentstack.io/v3/assets/${stack.apiKey}/${uid}/${h}/${fname}`,
  };
  if (branch) asset.branch = branch;
  stack.assets.set(uid, asset);
  return asset;
}

function wantsUrl(withUrl, index, entry) {
  if (typeof withUrl === 'function') return !!withUrl(index, entry);
  if (withUrl === true || withUrl === undefined) return true;
  if (withUrl === false) return false;
  const f = Math.max(0, Math.min(1, Number(withUrl)));
  // Evenly spread and deterministic: item i has a url when floor((i+1)f) > floor(i f).
  return Math.floor((index + 1) * f) > Math.floor(index * f);
}

/**
 * Create a bulk job on the stack and register the entries/assets it touches.
 *
 * Items: every entry and every asset is published to each environment × locale, so the
 * job has (entries + assets) × environments × locales items. Assets have locale "" and
 * publish_locale set. Item order: entries then assets, each grouped per env, per locale.
 * The successful entry items of a publish job mark their entry published (publishEntry) to
 * that environment and locale at the item's version; those of an unpublish job unmark it.
 *
 * @param {object} stack from makeStack
 * @param {object} [o]
 * @param {string} [o.jobId] default: deterministic UUID-like id
 * @param {'publish'|'unpublish'} [o.action='publish']
 * @param {string[]} [o.environments=['production']] environment names (or uids)
 * @param {string[]} [o.locales=['en-us']]
 * @param {number} [o.entries=0] number of new entries
 * @param {number} [o.assets=0] number of new assets
 * @param {number} [o.failedEvery=0] every k-th item (1-based) gets publish_details.status "failed"
 * @param {number|boolean|function} [o.withUrl=1] fraction of entries with a `url`, or predicate(index, entry)
 * @param {number} [o.skipped=0] summary.skip (items Contentstack skipped; not listed in items)
 * @param {object} [o.fromJob] reuse the entries/assets of an earlier job (e.g. unpublish what was published)
 * @param {string[]} [o.entryUids] / [o.assetUids] reuse these registered entries/assets
 * @param {string} [o.status='complete'] job status
 * @param {string} [o.createdAt] ISO time; default deterministic
 * @param {string} [o.branch] job body branch (default stack.branch || 'main'); the entries and assets the job
 *   creates live on it, so the fake answers the job's items, entries and assets only with that branch header
 * @returns job object: { jobId, uid, action, api_key, status, created_at, updated_at, body, summary,
 *   items, environments (names), environmentUids, locales, entries: [entry], assets: [asset],
 *   successItems(), failedItems() }
 */
export function addJob(stack, {
  jobId,
  action = 'publish',
  environments = ['production'],
  locales = ['en-us'],
  entries = 0,
  assets = 0,
  failedEvery = 0,
  withUrl = 1,
  skipped = 0,
  fromJob,
  entryUids,
  assetUids,
  status = 'complete',
  createdAt,
  branch,
} = {}) {
  stack._jobSeq += 1;
  const id = jobId ?? nextJobId(stack);
  const envs = environments.map((n) => {
    const e = findEnvironment(stack, n);
    if (!e) throw new Error(`addJob: unknown environment ${n}`);
    return e;
  });
  const rand = stack._rand;
  const jobBranch = branch ?? stack.branch ?? 'main';

  // Entries and assets of the job.
  let jobEntries = [];
  let jobAssets = [];
  if (fromJob) {
    jobEntries = fromJob.entries.slice();
    jobAssets = fromJob.assets.slice();
  }
  for (const uid of entryUids ?? []) {
    const e = stack.entries.get(uid);
    if (!e) throw new Error(`addJob: unknown entry ${uid}`);
    jobEntries.push(e);
  }
  for (const uid of assetUids ?? []) {
    const a = stack.assets.get(uid);
    if (!a) throw new Error(`addJob: unknown asset ${uid}`);
    jobAssets.push(a);
  }
  for (let i = 0; i < entries; i++) {
    const n = stack.entries.size + 1;
    const ct = stack.contentTypes[(n - 1) % stack.contentTypes.length];
    const entry = addEntry(stack, {
      contentType: ct,
      title: `${ct[0].toUpperCase()}${ct.slice(1)} ${n}`,
      locales,
      version: 1 + Math.floor(rand() * 5),
      branch: jobBranch,
    });
    if (wantsUrl(withUrl, i, entry)) entry.url = `/${ct}/slug-${n}`;
    jobEntries.push(entry);
  }
  for (let i = 0; i < assets; i++) {
    jobAssets.push(addAsset(stack, { version: 1 + Math.floor(rand() * 3), branch: jobBranch }));
  }
  for (const e of jobEntries) for (const l of locales) if (!e.locales.includes(l)) e.locales.push(l);

  const created = createdAt ? Date.parse(createdAt) : BASE_TIME + stack._jobSeq * 3_600_000;
  const published = iso(created + 1576);
  const items = [];
  let k = 0;
  const push = (base) => {
    k += 1;
    const failed = failedEvery > 0 && k % failedEvery === 0;
    items.push({
      ...base,
      publish_details: failed
        ? { status: 'failed', failure_reason: 'Entry validation failed: required field is empty.' }
        : { status: 'success' },
      published_at: failed ? null : iso(created + 1400 + k),
    });
  };
  for (const env of envs) {
    for (const locale of locales) {
      for (const e of jobEntries) {
        push({
          uid: e.uid,
          locale,
          version: e.version,
          title: e.title,
          type: 'entry',
          publish_locale: locale,
          environment: env.uid,
          action,
          scheduled_at: '',
          user: stack.user,
          depth: 2,
          content_type: { uid: e.content_type },
        });
      }
    }
  }
  for (const env of envs) {
    for (const locale of locales) {
      for (const a of jobAssets) {
        push({
          uid: a.uid,
          locale: '',
          version: a.version,
          title: a.title,
          type: 'asset',
          publish_locale: locale,
          environment: env.uid,
          action,
          scheduled_at: '',
          user: stack.user,
          depth: 4,
        });
      }
    }
  }
  // Key order as in the documented sample.
  const ordered = items.map((it) => {
    const o = {
      uid: it.uid, locale: it.locale, version: it.version, title: it.title, type: it.type,
      publish_details: it.publish_details, publish_locale: it.publish_locale,
      environment: it.environment, action: it.action, published_at: it.published_at,
      scheduled_at: it.scheduled_at, user: it.user, depth: it.depth,
    };
    if (it.content_type) o.content_type = it.content_type;
    return o;
  });

  // Publish state of the entries: what the job did where it succeeded.
  for (const it of ordered) {
    if (it.type !== 'entry' || it.publish_details.status !== 'success') continue;
    if (action === 'publish') publishEntry(stack, it.uid, it.environment, it.publish_locale, it.version);
    else if (action === 'unpublish') unpublishEntry(stack, it.uid, it.environment, it.publish_locale);
  }

  const success = ordered.filter((i) => i.publish_details.status === 'success').length;
  const unsuccess = ordered.length - success;
  const job = {
    jobId: id,
    uid: id,
    action,
    api_key: stack.apiKey,
    status,
    created_at: iso(created),
    updated_at: published,
    body: {
      branch: jobBranch,
      locales: [...locales],
      environments: envs.map((e) => e.uid),
      published_at: published,
      scheduled_at: '',
    },
    summary: {
      approvals: 0,
      skip: skipped,
      state: status === 'complete' ? 'completed' : status,
      success,
      total_processed: success + unsuccess + skipped,
      unsuccess,
    },
    items: ordered,
    environments: envs.map((e) => e.name),
    environmentUids: envs.map((e) => e.uid),
    locales: [...locales],
    entries: jobEntries,
    assets: jobAssets,
    successItems() { return this.items.filter((i) => i.publish_details.status === 'success'); },
    failedItems() { return this.items.filter((i) => i.publish_details.status === 'failed'); },
  };
  stack.jobs.set(id, job);
  return job;
}

/** Channels a webhook of this worker subscribes to by default: job completions, every environment. */
export const JOB_CHANNELS = ['jobs.environments.publish.completed', 'jobs.environments.unpublish.completed'];

/**
 * Register a webhook on the stack (GET /v3/webhooks lists it). Returns the webhook:
 * { uid, name, targetUrl, disabled, unhealthy, channels, concisePayload, branches, createdAt, executions: [] }
 * (change `disabled`/`unhealthy` later and the fake answers the new values).
 * @param {object} stack
 * @param {object} o
 * @param {string} [o.uid] default: a deterministic uid
 * @param {string} [o.name='Purge worker']
 * @param {string} o.targetUrl the destination's target_url
 * @param {boolean} [o.disabled=false]
 * @param {boolean} [o.unhealthy=false] answered as unhealthy: {state: …}
 * @param {string[]} [o.channels=JOB_CHANNELS]
 * @param {boolean} [o.concisePayload=true]
 * @param {string[]} [o.branches=['main']]
 */
export function addWebhook(stack, {
  uid = nextUid(stack),
  name = 'Purge worker',
  targetUrl,
  disabled = false,
  unhealthy = false,
  channels = JOB_CHANNELS,
  concisePayload = true,
  branches = ['main'],
} = {}) {
  if (typeof targetUrl !== 'string') throw new Error('addWebhook: targetUrl is required');
  if (!stack.webhooks) stack.webhooks = new Map();
  const webhook = {
    uid, name, targetUrl, disabled, unhealthy, channels: [...channels], concisePayload, branches: [...branches],
    createdAt: iso(BASE_TIME), executions: [],
  };
  stack.webhooks.set(uid, webhook);
  return webhook;
}

/** The channel a webhook body names: `channel`, else `event` (prefixed with `module.` unless it already is). */
function channelOf(payload) {
  if (typeof payload.channel === 'string') return payload.channel;
  const ev = String(payload.event ?? '');
  const mod = payload.module;
  return mod && !ev.startsWith(`${mod}.`) ? `${mod}.${ev}` : ev;
}

/**
 * Record one execution (a delivery attempt series) of a webhook, as
 * GET /v3/webhooks/{uid}/executions answers it. Returns the execution JSON object:
 * { uid, channel: [channel], created_at, updated_at, event_data: {module, api_key, data, event},
 *   status, retry_count, webhooks: [webhookUid],
 *   request_details: [ one per attempt (retryCount + 1): {request: {method: "POST", uri: target_url,
 *     body: payload, headers}, response: {statusCode, body}, created_at, retry_number} ] }
 * A timeout (status null) has no `response` in its request_details, only `error: "ESOCKETTIMEDOUT"`.
 * @param {object} stack
 * @param {string} webhookUid
 * @param {object} o
 * @param {string} [o.uid] default: a deterministic uid
 * @param {string|number|Date} [o.createdAt=now] when the execution started (ISO in the answer)
 * @param {number|null} [o.status=500] the destination's last HTTP status, null for a timeout
 * @param {object} o.payload the webhook body sent (e.g. jobPayload(…) from harness/sign.mjs)
 * @param {number} [o.retryCount=0]
 * @param {string} [o.responseBody] the destination's answer body (default: a short text per status)
 */
export function addExecution(stack, webhookUid, { uid, createdAt, status = 500, payload, retryCount = 0, responseBody } = {}) {
  const webhook = stack.webhooks?.get(webhookUid);
  if (!webhook) throw new Error(`addExecution: unknown webhook ${webhookUid}`);
  if (!payload || typeof payload !== 'object') throw new Error('addExecution: payload (the webhook body object) is required');
  const created = createdAt === undefined ? Date.now() : createdAt instanceof Date ? createdAt.getTime() : typeof createdAt === 'number' ? createdAt : Date.parse(createdAt);
  if (!Number.isFinite(created)) throw new Error(`addExecution: invalid createdAt ${createdAt}`);
  const id = uid ?? nextUid(stack);
  const request = {
    method: 'POST',
    uri: webhook.targetUrl,
    body: payload,
    headers: { 'Content-Type': 'application/json', 'User-Agent': 'Contentstack' },
  };
  const details = [];
  for (let n = 0; n <= retryCount; n++) {
    const d = { retry_number: n, created_at: iso(created + n * 5000), request: structuredClone(request) };
    if (status === null) d.error = 'ESOCKETTIMEDOUT';
    else d.response = { statusCode: status, body: responseBody ?? (status >= 400 ? `{"error":"HTTP ${status}"}` : '{"status":"accepted"}') };
    details.push(d);
  }
  const execution = {
    uid: id,
    channel: [channelOf(payload)],
    created_at: iso(created),
    updated_at: iso(created + retryCount * 5000),
    event_data: { module: payload.module, api_key: payload.api_key, data: payload.data, event: payload.event },
    status,
    retry_count: retryCount,
    webhooks: [webhook.uid],
    request_details: details,
  };
  webhook.executions.push(execution);
  return execution;
}

/** JSON of a webhook as GET /v3/webhooks answers it. */
export function webhookJson(stack, w) {
  return {
    uid: w.uid,
    name: w.name,
    destinations: [{ target_url: w.targetUrl, http_basic_auth: '', http_basic_password: '', custom_header: [] }],
    channels: [...w.channels],
    branches: [...w.branches],
    retry_policy: 'manual',
    notifiers: [],
    disabled: !!w.disabled,
    concise_payload: !!w.concisePayload,
    unhealthy: { state: !!w.unhealthy },
    api_key: stack.apiKey,
    org_uid: 'blt_org_1',
    created_by: stack.user,
    updated_by: stack.user,
    created_at: w.createdAt,
    updated_at: w.createdAt,
  };
}

/** JSON of a job status exactly as GET /v3/bulk/jobs/{id} answers it. */
export function jobStatusJson(job) {
  return {
    uid: job.uid,
    action: job.action,
    api_key: job.api_key,
    status: job.status,
    created_at: job.created_at,
    updated_at: job.updated_at,
    body: { ...job.body },
    summary: { ...job.summary },
  };
}

/**
 * A demo stack: ~300 entries and ~120 assets, two environments (production, staging),
 * two locales (en-us, fr-fr), content types blog, page, author, product and category, and four
 * ready jobs:
 *   demo.jobs.publishProd    – big production publish (both locales, some failures, some entries without url)
 *   demo.jobs.publishStaging – small staging publish (en-us)
 *   demo.jobs.unpublishProd  – production unpublish of a few entries and assets of the first job
 *   demo.jobs.publishAuthors – production republish (both locales) of 2 authors and 1 category that
 *                              many published blog posts reference: the reference-aware purge demo
 * Besides the jobs' own entries there are 6 authors and 5 categories (urls /author/slug-n and
 * /category/slug-n, en-us and fr-fr, published to production in both). Every blog entry of
 * publishProd references one of those authors and one category (round-robin), and every third
 * one also an asset of publishProd. The three first jobs are generated exactly as before the
 * references existed ('category' joins contentTypes after them), so their uids and items are stable.
 *
 * A missed job and the webhook that failed to deliver it (the webhook health check demo), made
 * after everything above so none of the earlier uids or items change:
 *   demo.missed.missedPublish – small production publish (4 pages/products in en-us and fr-fr, 2
 *                               assets) created 40 minutes before `now`, whose webhook never
 *                               arrived: it is not in `demo.jobs` (tools/send-webhook.mjs sends only
 *                               those); the Worker's health check finds and takes it in;
 *   demo.webhook              – "Edge purge (local Worker)", target `${workerUrl}/webhooks/contentstack`,
 *                               disabled and unhealthy, with two failed executions of
 *                               missedPublish's delivery: a timeout (status null) 38 minutes
 *                               before `now` and a 500 on the retry 31 minutes before `now`.
 * `now` (ms, default Date.now()) only sets those times; uids stay deterministic.
 * Returns { stack, jobs: {publishProd, publishStaging, unpublishProd, publishAuthors},
 *   missed: {missedPublish}, webhook, authors, categories }.
 */
export function makeDemoStack({
  apiKey = 'blt_demo_api_key',
  token = 'cs_demo_mgmt_token',
  workerUrl = 'http://127.0.0.1:8787',
  now = Date.now(),
} = {}) {
  // The big jobs' entries are of types no entry references, so they need no reference look-ups.
  const stack = makeStack({ apiKey, token, contentTypes: ['blog', 'page', 'landing', 'product'] });
  const publishProd = addJob(stack, {
    jobId: '00906443-2ba3-420e-a3bd-2b6b4cd7c574',
    environments: ['production'],
    locales: ['en-us', 'fr-fr'],
    entries: 220,
    assets: 90,
    failedEvery: 23,
    withUrl: 0.8,
    skipped: 3,
  });
  const publishStaging = addJob(stack, {
    jobId: '1b7d1a52-5c1e-4f0a-9a4b-3c2f8e6d7a10',
    environments: ['staging'],
    locales: ['en-us'],
    entries: 80,
    assets: 30,
    failedEvery: 0,
  });
  const unpublishProd = addJob(stack, {
    jobId: '7f3e2d1c-0b9a-4876-8543-21fedcba9876',
    action: 'unpublish',
    environments: ['production'],
    locales: ['en-us', 'fr-fr'],
    entryUids: publishProd.entries.slice(0, 12).map((e) => e.uid),
    assetUids: publishProd.assets.slice(0, 5).map((a) => a.uid),
  });

  // Authors and categories the blog posts reference, published to production in both locales.
  stack.contentTypes.push('author', 'category');
  const referenced = (ct, count) => Array.from({ length: count }, (_, i) => {
    const n = stack.entries.size + 1;
    const entry = addEntry(stack, {
      contentType: ct,
      title: `${ct[0].toUpperCase()}${ct.slice(1)} ${n}`,
      url: `/${ct}/slug-${n}`,
      locales: ['en-us', 'fr-fr'],
      version: 1 + (i % 3),
    });
    for (const l of entry.locales) publishEntry(stack, entry.uid, 'production', l);
    return entry;
  });
  const authors = referenced('author', 6);
  const categories = referenced('category', 5);
  publishProd.entries.filter((e) => e.content_type === 'blog').forEach((blog, b) => {
    addReference(stack, blog.uid, authors[b % authors.length].uid);
    addReference(stack, blog.uid, categories[b % categories.length].uid);
    if (b % 3 === 0) addReference(stack, blog.uid, publishProd.assets[(b / 3) % publishProd.assets.length].uid);
  });

  // Two authors and a category were edited and are republished.
  const republished = [authors[0], authors[1], categories[0]];
  for (const e of republished) e.version += 1;
  const publishAuthors = addJob(stack, {
    jobId: '3c9a8b7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d',
    environments: ['production'],
    locales: ['en-us', 'fr-fr'],
    entryUids: republished.map((e) => e.uid),
  });

  // A job whose webhook was never delivered: the Worker timed out, the retry got a 500, and
  // Contentstack disabled the webhook. Pages and products only (no reference look-ups).
  const missedEntries = ['page', 'product', 'page', 'product'].map((ct, i) => {
    const n = stack.entries.size + 1;
    return addEntry(stack, {
      contentType: ct,
      title: `${ct[0].toUpperCase()}${ct.slice(1)} ${n}`,
      url: `/${ct}/slug-${n}`,
      locales: ['en-us', 'fr-fr'],
      version: 1 + (i % 2),
    });
  });
  const minutesAgo = (m) => new Date(now - m * 60_000).toISOString();
  const missedPublish = addJob(stack, {
    jobId: '5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170',
    environments: ['production'],
    locales: ['en-us', 'fr-fr'],
    entryUids: missedEntries.map((e) => e.uid),
    assets: 2,
    createdAt: minutesAgo(40),
  });
  const webhook = addWebhook(stack, {
    name: 'Edge purge (local Worker)',
    targetUrl: `${String(workerUrl).replace(/\/+$/, '')}/webhooks/contentstack`,
    disabled: true,
    unhealthy: true,
  });
  const delivery = (m) => jobPayload({ jobId: missedPublish.jobId, action: 'publish', environment: 'production', apiKey, triggeredAt: minutesAgo(m) });
  addExecution(stack, webhook.uid, { createdAt: minutesAgo(38), status: null, payload: delivery(38), retryCount: 1 });
  addExecution(stack, webhook.uid, { createdAt: minutesAgo(31), status: 500, payload: delivery(38), retryCount: 2 });
  return {
    stack,
    jobs: { publishProd, publishStaging, unpublishProd, publishAuthors },
    missed: { missedPublish },
    webhook,
    authors,
    categories,
  };
}
