// Cold start: a new isolate to its first answer, next to the hello-world Worker's first answer in the
// same run.
//
// A new isolate here is a fresh Miniflare instance (a new workerd process) started from scratch for
// each sample, so nothing is cached: not the compiled module, not the configuration, not the signing
// key, not a Durable Object. Three kinds of sample, interleaved (the order rotates from one sample to
// the next, so that all three see the same machine):
//   - `hello-world`: benches/hello-world (a workers-rs Worker whose fetch handler answers "hello",
//     built by scripts/bench.sh with the same toolchain and profile) to its first `GET /` answer; it
//     has no bindings;
//   - `healthz`: the Worker (this build, the bindings of the tests' harness: KV, the Durable Objects,
//     the queue producers, static assets) to its first `GET /healthz` answer;
//   - `webhook`: the same Worker to its first `202` for a signed job webhook (RSA-PSS, Contentstack's
//     default, against a configured public key: the configuration parsed, the key imported, the
//     signature verified, the job's Durable Object created and written, the job enqueued).
// Also, not a floor, `hello-world+bindings`: hello-world with the Worker's KV, queue producers and
// static assets (not its Durable Objects, which need the Worker's classes).
// Each sample times `new Miniflare(…)` → ready (workerd started, the script loaded) and ready → the
// answer at the client; the figure is the sum (start → first answer). Ratios are p50 ÷ hello-world's
// p50 of the same phase.
//
// Usage: node benches/cold-start.mjs <hello-world dir (holding build/worker/shim.mjs)>
// Env: BENCH_COLD_SAMPLES (default 15). Writes target/bench/results/cold-start.json.
import crypto from 'node:crypto';
import path from 'node:path';
import { startWorker } from '../devkit/harness/worker.mjs';
import { jobPayload, webhookRequest } from '../devkit/harness/sign.mjs';
import { KV_ONLY_RULES } from '../devkit/harness/kv.mjs';
import { writeResult, quantile, buildFromEnv, root } from './common.mjs';

const helloDir = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'target/bench/hello-world');
const SAMPLES = Number(process.env.BENCH_COLD_SAMPLES ?? 15);
const API_KEY = 'blt_bench_api_key';
const BUILD = buildFromEnv();

const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const VARS = {
  CONTENTSTACK_API_KEYS: API_KEY,
  ENVIRONMENTS: JSON.stringify(KV_ONLY_RULES),
  WEBHOOK_VERIFY: 'rsa',
  CONTENTSTACK_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }),
  ADMIN_TOKEN: 'bench-admin-token',
};

const KINDS = {
  'hello-world': {
    start: () => startWorker({ buildDir: helloDir, kv: [], queues: false, ledger: false, limiter: false, assets: false }),
    request: () => ['/', { method: 'GET' }],
    status: 200,
  },
  // Not a floor: hello-world with the Worker's bindings but its Durable Objects (which need the Worker's
  // classes): KV, the queue producers and the static assets (the Worker's `www/`). Against `healthz` it
  // shows what the Worker's module and its Durable Object namespaces add to a start.
  'hello-world+bindings': {
    start: () => startWorker({ buildDir: helloDir, kv: ['CONTENT_KV'], queues: 'producers', ledger: false, limiter: false, assets: path.join(root, 'www') }),
    request: () => ['/', { method: 'GET' }],
    status: 200,
  },
  healthz: {
    start: () => startWorker({ vars: VARS, queues: 'producers', ...BUILD.worker }),
    request: () => ['/healthz', { method: 'GET' }],
    status: 200,
  },
  webhook: {
    start: () => startWorker({ vars: VARS, queues: 'producers', ...BUILD.worker }),
    request: () => {
      const body = JSON.stringify(jobPayload({ jobId: `cold-${crypto.randomUUID()}`, environment: 'production', apiKey: API_KEY }));
      return ['/webhooks/contentstack', webhookRequest('', body, { rsaKey: privateKey }).init];
    },
    status: 202,
  },
};
const NAMES = Object.keys(KINDS);

/** One sample of `name`: a fresh Miniflare to its first answer. */
async function sample(name) {
  const k = KINDS[name];
  // The request is built (and signed) before the clock starts: the client's work is not the Worker's.
  const [p, init] = k.request();
  const t0 = performance.now();
  const w = await k.start();
  const tReady = performance.now();
  try {
    const r = await fetch(w.url + p, init);
    const text = await r.text();
    const tAnswer = performance.now();
    if (r.status !== k.status) throw new Error(`${name}: first answer ${r.status} (wanted ${k.status}): ${text.slice(0, 300)}`);
    return { start_ms: tReady - t0, first_answer_ms: tAnswer - tReady, total_ms: tAnswer - t0 };
  } finally {
    await w.close();
  }
}

const samples = Object.fromEntries(NAMES.map((n) => [n, []]));
// One sample of each kind first, not counted: Node's own modules, the page cache and the like.
for (const n of NAMES) await sample(n);
for (let i = 0; i < SAMPLES; i++) {
  for (let j = 0; j < NAMES.length; j++) {
    const n = NAMES[(i + j) % NAMES.length];
    samples[n].push(await sample(n));
  }
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), min: s[0], max: s.at(-1), all: xs };
};
const kinds = Object.fromEntries(NAMES.map((n) => [n, {
  total_ms: stats(samples[n].map((x) => x.total_ms)),
  start_ms: stats(samples[n].map((x) => x.start_ms)),
  first_answer_ms: stats(samples[n].map((x) => x.first_answer_ms)),
}]));
const hello = kinds['hello-world'];
const ratios = Object.fromEntries(['healthz', 'webhook'].map((n) => [n, {
  total: kinds[n].total_ms.p50 / hello.total_ms.p50,
  start: kinds[n].start_ms.p50 / hello.start_ms.p50,
  first_answer: kinds[n].first_answer_ms.p50 / hello.first_answer_ms.p50,
}]));
writeResult('cold-start', {
  build: BUILD.label,
  hello_world_dir: path.relative(root, helloDir),
  samples: SAMPLES,
  verify: 'rsa',
  kinds,
  ratios,
});
const f = (x) => `${x.toFixed(0)} ms`;
for (const n of NAMES) {
  const k = kinds[n];
  console.error(`cold-start ${n}: start → first answer p50 ${f(k.total_ms.p50)} (start ${f(k.start_ms.p50)}, first answer ${f(k.first_answer_ms.p50)})` +
    (ratios[n] ? `, ÷ hello-world ${ratios[n].total.toFixed(2)}× (start ${ratios[n].start.toFixed(2)}×, first answer ${ratios[n].first_answer.toFixed(2)}×)` : ''));
}
