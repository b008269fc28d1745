// One call that starts the fake Contentstack (and, optionally, the fake Cloudflare API) and the
// real Worker wired to them, plus a signed-delivery helper. Shared by every Miniflare suite.
import assert from 'node:assert/strict';

import { startWorker } from './worker.mjs';
import { startContentstack } from '../fakes/contentstack.mjs';
import { startCloudflare } from '../fakes/cloudflare.mjs';
import { makeStack } from '../fakes/stack.mjs';
import { jobPayload, webhookRequest } from './sign.mjs';

export const CF_TOKEN = 'cf_test_token';

/**
 * @param {object} o
 * @param {object} [o.rules]            ENVIRONMENTS (serialised for the Worker)
 * @param {string} o.adminToken
 * @param {object} [o.vars]             more vars (undefined values remove a default)
 * @param {boolean|object} [o.cloudflare=true] start the fake purge API (object: its options)
 * @param {number} [o.csRate=10]        fake Contentstack's rate limit per second
 * @param {object} [o.worker]           more startWorker options
 * @param {object} [o.stack]            the fake stack (default: a new makeStack())
 */
export async function startSystem({ rules, adminToken, vars = {}, cloudflare = true, csRate = 10, worker = {}, stack = makeStack() } = {}) {
  const cs = await startContentstack({ stacks: [stack], rateLimitPerSecond: csRate });
  const cfOptions = { token: CF_TOKEN, ...(cloudflare === true ? {} : cloudflare) };
  const cf = cloudflare ? await startCloudflare(cfOptions) : null;
  const w = await startWorker({
    ...worker,
    vars: {
      CONTENTSTACK_API_BASE: cs.url,
      CONTENTSTACK_APP_BASE: cs.url,
      CONTENTSTACK_API_KEYS: stack.apiKey,
      CONTENTSTACK_MANAGEMENT_TOKEN: stack.token,
      ...(cf ? { CLOUDFLARE_API_BASE: cf.url, CLOUDFLARE_API_TOKEN: cfOptions.token, PURGE_RATE_PER_SECOND: 50 } : {}),
      ADMIN_TOKEN: adminToken,
      ...(rules ? { ENVIRONMENTS: JSON.stringify(rules) } : {}),
      ...vars,
    },
  });
  return {
    stack,
    cs,
    cf,
    w,
    /** Sends a correctly signed job webhook; asserts `expect` (202 by default) and returns the answer. */
    async deliver(job, environment, { expect = 202, shape } = {}) {
      const body = JSON.stringify(jobPayload({ jobId: job.jobId, action: job.action, environment, apiKey: stack.apiKey, shape }));
      const { init } = webhookRequest('', body, { rsaKey: cs.privateKey });
      const r = await w.fetch('/webhooks/contentstack', init);
      const json = await r.json();
      if (expect !== null) assert.equal(r.status, expect, JSON.stringify(json));
      return { status: r.status, json, body };
    },
    async close() {
      await w.close();
      await cs.close();
      if (cf) await cf.close();
    },
  };
}
