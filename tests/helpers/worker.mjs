// Starts the real compiled Worker (build/worker/shim.mjs) in workerd through Miniflare, with
// real KV, Queues, Durable Objects, Cache and static assets, and captures its log lines.
import { Miniflare } from 'miniflare';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const JOBS_QUEUE = 'contentstack-purge-jobs';
export const DLQ = 'contentstack-purge-dead-letters';

/**
 * @param {object} o
 * @param {Record<string, unknown>} o.vars   plain-text vars and secrets
 * @param {string[]} [o.kv]                   KV binding names
 * @param {boolean|'producers'} [o.queues=true] bind the queues (false: simulate an unavailable
 *   queue; 'producers': no consumer, so messages stay queued — for measuring intake alone)
 * @param {boolean} [o.ledger=true]           bind the ledger Durable Object
 * @param {number} [o.maxRetries=3]           queue retries before the dead-letter queue
 */
export async function startWorker({ vars = {}, kv = ['CONTENT_KV'], queues = true, ledger = true, maxRetries = 3 } = {}) {
  const logs = [];
  const bindings = {};
  for (const [k, v] of Object.entries(vars)) {
    if (v !== undefined) bindings[k] = v;
  }
  const durableObjects = { LIMITER: { className: 'RateLimiter', useSQLite: true } };
  if (ledger) durableObjects.LEDGER = { className: 'Ledger', useSQLite: true };
  const opts = {
    modules: true,
    scriptPath: path.join(root, 'build/worker/shim.mjs'),
    modulesRoot: root,
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
    ],
    compatibilityDate: '2026-04-01',
    cf: false,
    bindings,
    kvNamespaces: kv,
    durableObjects,
    assets: {
      directory: path.join(root, 'www'),
      binding: 'ASSETS',
      routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
    },
    handleRuntimeStdio(stdout, stderr) {
      const take = (stream) => {
        let buf = '';
        stream.on('data', (chunk) => {
          buf += chunk.toString();
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            logs.push(buf.slice(0, i));
            buf = buf.slice(i + 1);
          }
        });
      };
      take(stdout);
      take(stderr);
    },
  };
  if (queues) {
    opts.queueProducers = { JOBS: JOBS_QUEUE, DEAD_LETTERS: DLQ };
  }
  if (queues === true) {
    opts.queueConsumers = {
      [JOBS_QUEUE]: { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries, deadLetterQueue: DLQ, retryDelay: 0 },
      [DLQ]: { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries: 2, retryDelay: 0 },
    };
  }
  const mf = new Miniflare(opts);
  const url = await mf.ready;
  const base = url.toString().replace(/\/$/, '');
  return {
    mf,
    url: base,
    logs,
    /** Parsed JSON log lines (non-JSON lines are skipped). */
    events(stage) {
      const out = [];
      for (const l of logs) {
        const s = l.indexOf('{');
        if (s < 0) continue;
        try {
          const v = JSON.parse(l.slice(s));
          if (!stage || v.stage === stage) out.push(v);
        } catch {}
      }
      return out;
    },
    fetch(p, init) {
      return mf.dispatchFetch(base + p, init);
    },
    kv(name = 'CONTENT_KV') {
      return mf.getKVNamespace(name);
    },
    async close() {
      await mf.dispose();
    },
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(fn, { timeoutMs = 60000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

/** GET /api/jobs/{id} with the admin token; null on 404. */
export async function getJob(w, jobId, token = 'admin-token') {
  const r = await w.fetch(`/api/jobs/${encodeURIComponent(jobId)}`, { headers: { authorization: `Bearer ${token}` } });
  if (r.status === 404) return null;
  if (r.status !== 200) throw new Error(`GET job ${jobId}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Waits until the job reaches one of the final statuses and returns its record. */
export async function waitForFinal(w, jobId, opts = {}) {
  return waitFor(async () => {
    const j = await getJob(w, jobId, opts.token);
    return j && ['done', 'partial', 'failed'].includes(j.status) ? j : null;
  }, { what: `job ${jobId} to finish`, timeoutMs: 120000, ...opts });
}
