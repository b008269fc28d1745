// Intake under load: signed job webhooks (new job ids, so every one is verified, recorded in the
// job's Durable Object and enqueued: a 202) at concurrency 1, 8 and 32, next to GET /healthz in
// the same Worker and the same run. /healthz is the floor: the runtime's own cost of one request
// through the Worker, with no verification, no Durable Object and no queue. Two more rows split the
// accepted path: `ignored` (verified and parsed, for an environment without a rule: no Durable
// Object) and `duplicate` (verified, parsed and looked up in the job's object: one Durable Object
// read, no write, no enqueue). Run once with RSA verification (Contentstack's default) and once
// with HMAC.
//
// Writes target/bench/results/intake.json. Env: BENCH_INTAKE_SCALE (default 1) multiplies the
// request counts; BENCH_BUILD_DIR / BENCH_LEDGER run another build (common.mjs buildFromEnv).
//
// With BENCH_COMPARE_BUILD_DIR (a checkout of other code with its own `build/`, e.g. the single
// ledger's, commit 6e8811a) it runs the before/after comparison instead: this repository's build
// ("after") and that one ("before", with the Durable Object bindings BENCH_COMPARE_LEDGER names,
// default 'single') started side by side, and at each level `/healthz` and `accepted` sent to
// both in interleaved chunks (after, before, before, after, twice), so that both builds see the
// same machine; p50 / p99 over the pooled chunks. RSA only unless BENCH_COMPARE_MODES=rsa,hmac.
// Writes target/bench/results/intake-compare.json.
import crypto from 'node:crypto';
import { jobPayload, webhookRequest } from '../devkit/harness/sign.mjs';
import { KV_ONLY_RULES } from '../devkit/harness/kv.mjs';
import path from 'node:path';
import { startIntakeOnly, writeResult, quantile, buildFromEnv, ledgerLayout, root } from './common.mjs';

const LEVELS = [1, 8, 32];
const SCALE = Number(process.env.BENCH_INTAKE_SCALE ?? 1);
const REQUESTS = { 1: 200, 8: 800, 32: 1200 };
const WARMUP = 60;
const API_KEY = 'blt_bench_api_key';
const HMAC_SECRET = 'whsec_bench_intake';

/** Sends `requests` ([path, init] pairs) with `concurrency` in flight; the raw latencies and statuses. */
async function send(base, requests, concurrency) {
  const latencies = new Array(requests.length);
  const statuses = {};
  let next = 0;
  const t0 = performance.now();
  async function lane() {
    for (;;) {
      const i = next++;
      if (i >= requests.length) return;
      const [p, init] = requests[i];
      const s = performance.now();
      const r = await fetch(base + p, init);
      await r.arrayBuffer();
      latencies[i] = performance.now() - s;
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { latencies, statuses, elapsedMs: performance.now() - t0, concurrency };
}

/** p50 / p99 / requests per second of one or more `send` results (pooled). */
function summarize(parts) {
  const sorted = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const statuses = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  const elapsedMs = parts.reduce((a, p) => a + p.elapsedMs, 0);
  return {
    requests: sorted.length,
    concurrency: parts[0].concurrency,
    p50_ms: quantile(sorted, 0.5),
    p99_ms: quantile(sorted, 0.99),
    rps: sorted.length / (elapsedMs / 1000),
    statuses,
  };
}

/** Sends `requests` with `concurrency` in flight and summarizes them. */
async function drive(base, requests, concurrency) {
  return summarize([await send(base, requests, concurrency)]);
}

function healthzRequests(n) {
  return Array.from({ length: n }, () => ['/healthz', { method: 'GET' }]);
}

function webhookRequests(n, tag, sign, { environment = 'production', same = false } = {}) {
  const out = [];
  let one;
  for (let i = 0; i < n; i++) {
    if (!one || !same) {
      const jobId = `bench-${tag}-${same ? 'same' : i}-${crypto.randomUUID()}`;
      const body = JSON.stringify(jobPayload({ jobId, environment, apiKey: API_KEY }));
      one = ['/webhooks/contentstack', webhookRequest('', body, sign).init];
    }
    out.push(one);
  }
  return out;
}

/** Every request answered `status`, or throw. */
function expectAll(what, r, status) {
  const got = r.statuses[String(status)] ?? 0;
  if (got !== r.requests) throw new Error(`${what}: ${got}/${r.requests} answered ${status}: ${JSON.stringify(r.statuses)}`);
}

/** The Worker's vars and the driver's signing options for `mode` ('rsa' or 'hmac'), fresh keys. */
function keysFor(mode) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const vars = {
    CONTENTSTACK_API_KEYS: API_KEY,
    ENVIRONMENTS: JSON.stringify(KV_ONLY_RULES),
    ...(mode === 'rsa'
      ? { WEBHOOK_VERIFY: 'rsa', CONTENTSTACK_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }) }
      : { WEBHOOK_VERIFY: 'hmac', CONTENTSTACK_HMAC_SECRETS: HMAC_SECRET }),
  };
  const sign = mode === 'rsa' ? { rsaKey: privateKey } : { hmacSecret: HMAC_SECRET };
  return { vars, sign };
}

const fmt = (r) => `p50 ${r.p50_ms.toFixed(2)} p99 ${r.p99_ms.toFixed(2)} ms ${r.rps.toFixed(0)} rps`;

async function scenario(mode, worker) {
  const { vars, sign } = keysFor(mode);
  const w = await startIntakeOnly({ vars, ...worker });
  const rows = [];
  try {
    // Warm the isolate, the Durable Objects and the connection pool.
    await drive(w.url, healthzRequests(WARMUP), 4);
    await drive(w.url, webhookRequests(WARMUP, `${mode}-warm`, sign), 4);
    for (const c of LEVELS) {
      const n = Math.max(20, Math.round(REQUESTS[c] * SCALE));
      const fresh = webhookRequests(n, `${mode}-${c}`, sign);
      const dupes = webhookRequests(n, `${mode}-${c}-dup`, sign, { same: true });
      const ignoredReqs = webhookRequests(n, `${mode}-${c}-ign`, sign, { environment: 'no-rule-here', same: true });
      await drive(w.url, dupes.slice(0, 1), 1); // record it once: every later copy is a duplicate
      const healthz = await drive(w.url, healthzRequests(n), c);
      const accepted = await drive(w.url, fresh, c);
      const duplicate = await drive(w.url, dupes, c);
      const ignored = await drive(w.url, ignoredReqs, c);
      expectAll(`${mode} c=${c} healthz`, healthz, 200);
      expectAll(`${mode} c=${c} accepted`, accepted, 202);
      expectAll(`${mode} c=${c} duplicate`, duplicate, 200);
      expectAll(`${mode} c=${c} ignored`, ignored, 200);
      rows.push({ verify: mode, concurrency: c, healthz, accepted, duplicate, ignored });
      console.error(`intake ${mode} c=${c}: accepted ${fmt(accepted)} | healthz ${fmt(healthz)} | duplicate ${fmt(duplicate)} | ignored ${fmt(ignored)}`);
    }
  } finally {
    await w.close();
  }
  return rows;
}

// Chunks per build and level in the comparison, in this order (a = after, b = before).
const COMPARE_ORDER = ['after', 'before', 'before', 'after', 'after', 'before', 'before', 'after'];

/** Before/after: both builds side by side, `/healthz` and `accepted` in interleaved chunks. */
async function compare(mode, builds) {
  const { vars, sign } = keysFor(mode);
  const workers = {};
  const rows = [];
  try {
    for (const [name, b] of Object.entries(builds)) workers[name] = await startIntakeOnly({ vars, ...b.worker });
    for (const [name, w] of Object.entries(workers)) {
      await drive(w.url, healthzRequests(WARMUP), 4);
      const warm = await drive(w.url, webhookRequests(WARMUP, `${mode}-${name}-warm`, sign), 4);
      expectAll(`${name} ${mode} warm-up`, warm, 202);
    }
    const chunksPerBuild = COMPARE_ORDER.length / 2;
    for (const c of LEVELS) {
      const n = Math.max(chunksPerBuild * 10, Math.round(REQUESTS[c] * SCALE));
      const per = Math.ceil(n / chunksPerBuild);
      const parts = { after: { healthz: [], accepted: [] }, before: { healthz: [], accepted: [] } };
      for (const [k, name] of COMPARE_ORDER.entries()) {
        const w = workers[name];
        parts[name].healthz.push(await send(w.url, healthzRequests(per), c));
        parts[name].accepted.push(await send(w.url, webhookRequests(per, `${mode}-${name}-${c}-${k}`, sign), c));
      }
      const row = { verify: mode, concurrency: c };
      for (const name of ['after', 'before']) {
        const healthz = summarize(parts[name].healthz);
        const accepted = summarize(parts[name].accepted);
        expectAll(`${name} ${mode} c=${c} healthz`, healthz, 200);
        expectAll(`${name} ${mode} c=${c} accepted`, accepted, 202);
        row[name] = { healthz, accepted };
      }
      rows.push(row);
      console.error(`intake-compare ${mode} c=${c}: accepted after ${fmt(row.after.accepted)} | before ${fmt(row.before.accepted)} | ` +
        `after ÷ before p50 ${(row.after.accepted.p50_ms / row.before.accepted.p50_ms).toFixed(2)} | healthz after ${fmt(row.after.healthz)} | before ${fmt(row.before.healthz)}`);
    }
  } finally {
    for (const w of Object.values(workers)) await w.close();
  }
  return rows;
}

if (process.env.BENCH_COMPARE_BUILD_DIR) {
  const beforeDir = path.resolve(process.env.BENCH_COMPARE_BUILD_DIR);
  const beforeLedger = process.env.BENCH_COMPARE_LEDGER || 'single';
  const after = buildFromEnv();
  const builds = {
    after,
    before: { worker: { buildDir: beforeDir, ledgerObjects: ledgerLayout(beforeLedger) }, label: { build_dir: path.relative(root, beforeDir), ledger: beforeLedger } },
  };
  const modes = (process.env.BENCH_COMPARE_MODES || 'rsa').split(',');
  const rows = [];
  for (const mode of modes) rows.push(...(await compare(mode, builds)));
  writeResult('intake-compare', {
    levels: LEVELS,
    order: COMPARE_ORDER,
    before: { ...builds.before.label, commit: process.env.BENCH_COMPARE_COMMIT ?? null },
    after: builds.after.label,
    rows,
  });
} else {
  const { worker, label } = buildFromEnv();
  const rows = [...(await scenario('rsa', worker)), ...(await scenario('hmac', worker))];
  writeResult(process.env.BENCH_RESULT_NAME ?? 'intake', { levels: LEVELS, build: label, rows });
}
