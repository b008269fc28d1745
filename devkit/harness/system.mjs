// One call that starts the fake Contentstack (and, optionally, the fake Cloudflare API) and the
// real Worker wired to them, plus a signed-delivery helper and small shared helpers for reading
// the Worker's invocation log lines (KV helpers: kv.mjs). Shared by every Miniflare suite and the benches.
import assert from 'node:assert/strict';

import { startWorker } from './worker.mjs';
import { startContentstack } from '../fakes/contentstack.mjs';
import { startCloudflare } from '../fakes/cloudflare.mjs';
import { startSite } from '../fakes/site.mjs';
import { makeStack, setBaseUrl } from '../fakes/stack.mjs';
import { jobPayload, webhookRequest } from './sign.mjs';

export const CF_TOKEN = 'cf_test_token';

/**
 * Starts the fakes alone: the fake Contentstack serving `stack` (or `stacks`), unless `cloudflare`
 * is false the fake Cloudflare API, and with `site` a fake website behind the cache (options as for
 * startSystem). Returns {stack, stacks, cs, cf, site, workerVars, startWorker, close}:
 * `workerVars({rules, adminToken, vars})` are the Worker's vars wired to these fakes, and
 * `startWorker({rules, adminToken, vars, ...})` starts a Worker with them (the other options go to
 * startWorker; the caller closes it).
 */
export async function startFakes({ cloudflare = true, csRate = 10, stack, stacks, site } = {}) {
  const all = stacks?.length ? stacks : [stack ?? makeStack()];
  const first = all[0];
  const cs = await startContentstack({ stacks: all, rateLimitPerSecond: csRate });
  let web = null;
  if (site) {
    const { environments = true, ...siteOptions } = site === true ? {} : site;
    web = await startSite(siteOptions);
    for (const s of all) {
      for (const e of s.environments) {
        if (environments === true || (Array.isArray(environments) && (environments.includes(e.name) || environments.includes(e.uid)))) {
          setBaseUrl(s, e.uid, web.url);
        }
      }
    }
  }
  const cfOptions = { token: CF_TOKEN, ...(cloudflare === true ? {} : cloudflare) };
  if (web) cfOptions.site = [web, ...[].concat(cfOptions.site ?? [])];
  const cf = cloudflare ? await startCloudflare(cfOptions) : null;
  const tokens = all.length > 1
    ? { CONTENTSTACK_MANAGEMENT_TOKENS: JSON.stringify(Object.fromEntries(all.map((s) => [s.apiKey, s.token]))) }
    : { CONTENTSTACK_MANAGEMENT_TOKEN: first.token };
  const workerVars = ({ rules, adminToken, vars = {} } = {}) => ({
    CONTENTSTACK_API_BASE: cs.url,
    CONTENTSTACK_APP_BASE: cs.url,
    CONTENTSTACK_API_KEYS: all.map((s) => s.apiKey).join(','),
    ...tokens,
    ...(cf ? { CLOUDFLARE_API_BASE: cf.url, CLOUDFLARE_API_TOKEN: cfOptions.token, PURGE_RATE_PER_SECOND: 50 } : {}),
    ADMIN_TOKEN: adminToken,
    ...(rules ? { ENVIRONMENTS: JSON.stringify(rules) } : {}),
    ...('REPURGE_DELAY_SECONDS' in vars ? {} : { REPURGE_DELAY_SECONDS: 0 }),
    ...vars,
  });
  return {
    stack: first,
    stacks: all,
    cs,
    cf,
    site: web,
    workerVars,
    startWorker: ({ rules, adminToken, vars, ...opts } = {}) => startWorker({ ...opts, vars: workerVars({ rules, adminToken, vars }) }),
    async close() {
      await cs.close();
      if (cf) await cf.close();
      if (web) await web.close();
    },
  };
}

/**
 * @param {object} o
 * @param {object} [o.rules]            ENVIRONMENTS (serialised for the Worker)
 * @param {string} o.adminToken
 * @param {object} [o.vars]             more vars (undefined values remove a default). REPURGE_DELAY_SECONDS
 *   defaults to 0 here (no second purge pass) unless the caller names it; naming it with the value
 *   undefined leaves the Worker's own default (60 s).
 * @param {boolean|object} [o.cloudflare=true] start the fake purge API (object: its options, passed
 *   through to startCloudflare: bucket, apiLimit, maxFilesPerCall, unsuccessfulOnce, onPurge, onKvBulkDelete…)
 * @param {number} [o.csRate=10]        fake Contentstack's rate limit per second (per stack)
 * @param {object} [o.worker]           more startWorker options
 * @param {object} [o.stack]            the fake stack (default: a new makeStack())
 * @param {object[]} [o.stacks]         several fake stacks (the first is also `stack`): every api_key is
 *   allowed and the tokens go in CONTENTSTACK_MANAGEMENT_TOKENS ({api_key: token})
 * @param {boolean|object} [o.site]     start a fake website behind the cache (site.mjs; returned as `site`):
 *   the fake Cloudflare's successful purges reach it, and the stacks' environment URLs (`{base_url}`) are
 *   moved to its origin, keeping their paths (setBaseUrl). Object: startSite options plus `environments`
 *   (true = all, the default; or the names/uids to move; false = none)
 */
export async function startSystem({ rules, adminToken, vars = {}, cloudflare = true, csRate = 10, worker = {}, stack, stacks, site } = {}) {
  const fakes = await startFakes({ cloudflare, csRate, stack, stacks, site });
  const { cs, cf } = fakes;
  const first = fakes.stack;
  const w = await fakes.startWorker({ ...worker, rules, adminToken, vars });
  return {
    stack: first,
    stacks: fakes.stacks,
    cs,
    cf,
    site: fakes.site,
    w,
    /**
     * Sends a correctly signed job webhook; asserts `expect` (202 by default) and returns the answer.
     * The payload's api_key is `stack`'s when given, else the job's own stack (job.api_key).
     */
    async deliver(job, environment, { expect = 202, shape, stack: from } = {}) {
      const apiKey = from?.apiKey ?? job.api_key ?? first.apiKey;
      const body = JSON.stringify(jobPayload({ jobId: job.jobId, action: job.action, environment, apiKey, shape }));
      const { init } = webhookRequest('', body, { rsaKey: cs.privateKey });
      const r = await w.fetch('/webhooks/contentstack', init);
      const json = await r.json();
      if (expect !== null) assert.equal(r.status, expect, JSON.stringify(json));
      return { status: r.status, json, body };
    },
    async close() {
      await w.close();
      await fakes.close();
    },
  };
}

/** The Worker's `invocation` log lines (one per queue invocation), optionally only one job's. */
export function invocations(w, jobId) {
  return w.events('invocation').filter((e) => jobId === undefined || e.job_id === jobId);
}

/**
 * Every invocation line stays within both budgets (all lines of this Worker: each test has its own),
 * with integer counters and service_ops = kv + durable_object + cache + queue.
 * Returns the lines of `jobId` (all lines when omitted).
 */
export function assertBudgets(w, { jobId, subrequests = 900, serviceOps = 900 } = {}) {
  const all = invocations(w);
  assert.ok(all.length > 0, 'no invocation log line');
  for (const l of all) {
    for (const f of ['fetch', 'service_ops', 'kv', 'durable_object', 'cache', 'queue']) {
      assert.ok(Number.isInteger(l[f]) && l[f] >= 0, `invocation field ${f}: ${JSON.stringify(l)}`);
    }
    assert.equal(l.service_ops, l.kv + l.durable_object + l.cache + l.queue, `service_ops is the sum: ${JSON.stringify(l)}`);
    assert.ok(l.fetch <= subrequests, `an invocation made ${l.fetch} fetches (budget ${subrequests})`);
    assert.ok(l.service_ops <= serviceOps, `an invocation made ${l.service_ops} service operations (budget ${serviceOps})`);
  }
  return jobId === undefined ? all : invocations(w, jobId);
}

