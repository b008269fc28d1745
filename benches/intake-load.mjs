// Intake under load: signed job webhooks (new job ids, so every one is verified, recorded in the
// ledger and enqueued: a 202) at concurrency 1, 8 and 32, next to GET /healthz in the same Worker
// and the same run. /healthz is the floor: the runtime's own cost of one request through the
// Worker, with no verification, no Durable Object and no queue. Two more rows split the accepted
// path: `ignored` (verified and parsed, for an environment without a rule: no Durable Object)
// and `duplicate` (verified, parsed and looked up in the ledger: one Durable Object read, no
// write, no enqueue). Run once with RSA verification (Contentstack's default) and once with HMAC.
//
// Writes target/bench/results/intake.json. Env: BENCH_INTAKE_SCALE (default 1) multiplies the
// request counts.
import crypto from 'node:crypto';
import { jobPayload, webhookRequest } from '../devkit/harness/sign.mjs';
import { KV_ONLY_RULES } from '../devkit/harness/kv.mjs';
import { startIntakeOnly, writeResult, quantile } from './common.mjs';

const LEVELS = [1, 8, 32];
const SCALE = Number(process.env.BENCH_INTAKE_SCALE ?? 1);
const REQUESTS = { 1: 200, 8: 800, 32: 1200 };
const WARMUP = 60;
const API_KEY = 'blt_bench_api_key';
const HMAC_SECRET = 'whsec_bench_intake';

/** Sends `inits` (functions returning [path, init]) with `concurrency` in flight. */
async function drive(base, requests, concurrency) {
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
  const elapsedMs = performance.now() - t0;
  const sorted = latencies.slice().sort((a, b) => a - b);
  return {
    requests: requests.length,
    concurrency,
    p50_ms: quantile(sorted, 0.5),
    p99_ms: quantile(sorted, 0.99),
    rps: requests.length / (elapsedMs / 1000),
    statuses,
  };
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

async function scenario(mode) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const vars = {
    CONTENTSTACK_API_KEYS: API_KEY,
    ENVIRONMENTS: JSON.stringify(KV_ONLY_RULES),
    ...(mode === 'rsa'
      ? { WEBHOOK_VERIFY: 'rsa', CONTENTSTACK_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }) }
      : { WEBHOOK_VERIFY: 'hmac', CONTENTSTACK_HMAC_SECRETS: HMAC_SECRET }),
  };
  const sign = mode === 'rsa' ? { rsaKey: privateKey } : { hmacSecret: HMAC_SECRET };
  const w = await startIntakeOnly({ vars });
  const rows = [];
  try {
    // Warm the isolate, the ledger Durable Object and the connection pool.
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
      const f = (r) => `p50 ${r.p50_ms.toFixed(2)} p99 ${r.p99_ms.toFixed(2)} ms ${r.rps.toFixed(0)} rps`;
      console.error(`intake ${mode} c=${c}: accepted ${f(accepted)} | healthz ${f(healthz)} | duplicate ${f(duplicate)} | ignored ${f(ignored)}`);
    }
  } finally {
    await w.close();
  }
  return rows;
}

const rows = [...(await scenario('rsa')), ...(await scenario('hmac'))];
writeResult('intake', { levels: LEVELS, rows });
