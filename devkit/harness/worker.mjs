// Starts the real compiled Worker (build/worker/shim.mjs) in workerd through Miniflare, with
// real KV, Queues, Durable Objects, Cache and static assets, and captures its log lines.
import { Miniflare } from 'miniflare';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The ledger's Durable Object bindings (binding → class): one object per job plus the job index. */
export const LEDGER_OBJECTS = Object.freeze({ JOB_OBJECTS: 'Job', JOB_INDEX: 'JobIndex' });
/**
 * The ledger's bindings before it was split per job (up to commit 6e8811a): one `Ledger` object
 * for every job. For starting a build of that code (`buildDir`), as the benches do to compare.
 */
export const SINGLE_LEDGER_OBJECTS = Object.freeze({ LEDGER: 'Ledger' });

export const JOBS_QUEUE = 'contentstack-purge-jobs';
export const DLQ = 'contentstack-purge-dead-letters';

/**
 * @param {object} o
 * @param {Record<string, unknown>} o.vars   plain-text vars and secrets
 * @param {string[]} [o.kv]                   KV binding names
 * @param {boolean|'producers'} [o.queues=true] bind the queues (false: simulate an unavailable
 *   queue; 'producers': no consumer, so messages stay queued — for measuring intake alone)
 * @param {boolean} [o.ledger=true]           bind the ledger's Durable Objects (jobs and index)
 * @param {number} [o.maxRetries=3]           queue retries before the dead-letter queue
 * @param {string} [o.buildDir]               the checkout whose `build/worker/shim.mjs` and `www/` to run
 *   (default: this repository's); for benchmarking another build of the Worker
 * @param {Record<string, string>} [o.ledgerObjects=LEDGER_OBJECTS] the ledger's Durable Object
 *   bindings (binding → class name) when `ledger` is true; SINGLE_LEDGER_OBJECTS for a build of
 *   the single-ledger code.
 * @param {boolean} [o.limiter=true]          bind the rate limiter (LIMITER → RateLimiter); false only for a
 *   script without that class (the benches' hello-world Worker)
 * @param {boolean|string} [o.assets=true]    serve `www/` of `buildDir` as static assets (ASSETS); a path serves
 *   that directory instead; false binds no assets (the hello-world Worker)
 * @param {string} [o.capture]                with `queues: 'producers'`: a URL to which a second, tiny
 *   Worker consuming the jobs queue POSTs each message's body (JSON text) and acks it, so that a
 *   driver can run every step itself, one invocation at a time (`mf.getWorker().queue(…)`; the
 *   CPU bench does)
 * @param {object[]} [o.extraWorkers]         with `capture`: more Miniflare worker options to run beside them
 *   (reach one with `mf.getWorker(name)`)
 * @param {string} [o.objectsApart]           a directory for Miniflare's dev registry: the Durable Objects then run
 *   in a second Miniflare (its own workerd process, the same script and vars, returned as `objects`), which the
 *   Worker reaches through the registry, so that each process's CPU time is one side's (the CPU bench)
 */
export async function startWorker({ vars = {}, kv = ['CONTENT_KV'], queues = true, ledger = true, maxRetries = 3, buildDir = root, ledgerObjects = LEDGER_OBJECTS, limiter = true, assets = true, capture, extraWorkers = [], objectsApart } = {}) {
  const logs = [];
  const bindings = {};
  for (const [k, v] of Object.entries(vars)) {
    if (v !== undefined) bindings[k] = v;
  }
  const durableObjects = limiter ? { LIMITER: { className: 'RateLimiter', useSQLite: true } } : {};
  if (ledger) {
    for (const [binding, className] of Object.entries(ledgerObjects)) {
      durableObjects[binding] = { className, useSQLite: true };
    }
  }
  const dir = path.resolve(buildDir);
  const opts = {
    modules: true,
    scriptPath: path.join(dir, 'build/worker/shim.mjs'),
    modulesRoot: dir,
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
    ],
    compatibilityDate: '2026-04-01',
    cf: false,
    bindings,
    kvNamespaces: kv,
    durableObjects,
    ...(assets
      ? {
        assets: {
          directory: typeof assets === 'string' ? path.resolve(assets) : path.join(dir, 'www'),
          binding: 'ASSETS',
          routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
        },
      }
      : {}),
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
      // As wrangler.toml: up to 10 steps run at once, each with its share of the budgets.
      [JOBS_QUEUE]: { maxBatchSize: 10, maxBatchTimeout: 0, maxRetries, deadLetterQueue: DLQ, retryDelay: 0 },
      [DLQ]: { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries: 2, retryDelay: 0 },
    };
  }
  let objects = null;
  if (objectsApart) {
    objects = new Miniflare({
      name: 'objects',
      modules: true,
      scriptPath: opts.scriptPath,
      modulesRoot: dir,
      modulesRules: opts.modulesRules,
      compatibilityDate: opts.compatibilityDate,
      cf: false,
      bindings,
      durableObjects,
      unsafeDevRegistryPath: objectsApart,
      handleRuntimeStdio: opts.handleRuntimeStdio,
    });
    await objects.ready;
    opts.unsafeDevRegistryPath = objectsApart;
    opts.durableObjects = Object.fromEntries(Object.entries(durableObjects).map(([b, o]) => [b, { className: o.className, scriptName: 'objects' }]));
  }
  const mf = new Miniflare(capture ? withCapture(opts, capture, extraWorkers) : opts);
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
    /**
     * Runs the Worker's scheduled handler once, as a cron trigger would (Miniflare's
     * getWorker().scheduled): resolves with {outcome, noRetry} once the handler and its waitUntil
     * work finished. Throws unless the outcome is `expect` ('ok'; null accepts any outcome).
     */
    async scheduled(cron = '*/10 * * * *', { scheduledTime = new Date(), expect = 'ok' } = {}) {
      const worker = await mf.getWorker();
      const result = await worker.scheduled({ cron, scheduledTime });
      if (expect !== null && result.outcome !== expect) {
        throw new Error(`scheduled(${cron}): outcome ${result.outcome} (expected ${expect})`);
      }
      return result;
    },
    objects,
    async close() {
      await mf.dispose();
      if (objects) await objects.dispose();
    },
  };
}

/**
 * Miniflare options running `opts` (the Worker, first: it answers dispatchFetch and getWorker()) beside
 * a capture Worker that consumes the jobs queue and POSTs each body to `url`.
 */
function withCapture(opts, url, extraWorkers) {
  const { handleRuntimeStdio, cf, unsafeDevRegistryPath, ...worker } = opts;
  const script = `export default {
    async queue(batch, env) {
      for (const m of batch.messages) {
        const body = typeof m.body === 'string' ? m.body : JSON.stringify(m.body);
        await fetch(env.CAPTURE_URL, { method: 'POST', body });
        m.ack();
      }
    },
  };`;
  return {
    handleRuntimeStdio,
    cf,
    ...(unsafeDevRegistryPath ? { unsafeDevRegistryPath } : {}),
    workers: [
      { name: 'worker', ...worker },
      {
        name: 'capture',
        modules: true,
        script,
        compatibilityDate: opts.compatibilityDate,
        bindings: { CAPTURE_URL: url },
        queueConsumers: { [JOBS_QUEUE]: { maxBatchSize: 100, maxBatchTimeout: 0, maxRetries: 0 } },
      },
      ...extraWorkers,
    ],
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

/** The statuses a job record ends in. */
export const FINAL_STATUSES = ['done', 'partial', 'failed'];

/** Whether a job record (or null) has reached a final status. */
export const isFinal = (j) => Boolean(j) && FINAL_STATUSES.includes(j.status);

const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** GET /api/jobs/{id} with the admin token; null on 404. */
export async function getJob(w, jobId, token = 'admin-token') {
  const r = await w.fetch(`/api/jobs/${encodeURIComponent(jobId)}`, { headers: bearer(token) });
  if (r.status === 404) return null;
  if (r.status !== 200) throw new Error(`GET job ${jobId}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** One page of GET /api/jobs with the admin token: {jobs, cursor}. Throws unless 200. */
export async function jobsPage(w, token = 'admin-token', { limit = 200, cursor } = {}) {
  const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
  const r = await w.fetch(`/api/jobs?limit=${limit}${q}`, { headers: bearer(token) });
  if (r.status !== 200) throw new Error(`GET /api/jobs: ${r.status} ${await r.text()}`);
  return r.json();
}

/**
 * Every job record, newest first: GET /api/jobs `limit` at a time, following the cursor to the
 * end. `onPage(page)` sees each page as it arrives.
 */
export async function listJobs(w, token = 'admin-token', { limit = 200, onPage } = {}) {
  const out = [];
  let cursor;
  do {
    const page = await jobsPage(w, token, { limit, cursor });
    onPage?.(page);
    out.push(...page.jobs);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** Waits until the record of `jobId` satisfies `done(record)` (the record is null while unknown). */
export async function waitForJob(w, jobId, done, { token, what = `job ${jobId}`, ...opts } = {}) {
  return waitFor(async () => {
    const j = await getJob(w, jobId, token);
    return done(j) ? j : null;
  }, { what, ...opts });
}

/** Waits until the job reaches one of the final statuses and returns its record. */
export async function waitForFinal(w, jobId, opts = {}) {
  return waitForJob(w, jobId, isFinal, { what: `job ${jobId} to finish`, timeoutMs: 120000, ...opts });
}
