// CPU time per invocation, by kind: the webhook intake, the health check (cron), and every queue
// step of a 10,000-item job (start, collect pages, drain rounds, verification), with the Workers
// Paid plan's budgets and with WORKERS_PLAN=free (whose invocations must stay under 10 ms of CPU).
//
// How it is measured, as well as workerd allows from outside:
// - The Worker runs in Miniflare with the jobs queue's producer bound and a capture Worker as its
//   only consumer (devkit/harness/worker.mjs `capture`), which hands every message to this script.
//   The script runs each message itself, one invocation at a time, one message per batch
//   (`getWorker().queue(…)`), with nothing else running.
// - Its Durable Objects run in a second Miniflare, a workerd process of their own reached through
//   Miniflare's dev registry (`objectsApart`): on Cloudflare a Durable Object request is another
//   invocation with its own CPU limit, and in one process it would share the Worker's thread.
// - Around each invocation the script reads each process's CPU time (the sum of
//   /proc/<pid>/task/*/schedstat, in ns) before it and once both are idle again after it.
// - The Worker's process also runs Miniflare's simulators (KV, Cache API, Queues), its dispatch of
//   the invocation and workerd's HTTP client, none of which runs in the Worker's isolate on
//   Cloudflare. A small JavaScript Worker in the same process makes each kind of call in bulk
//   (`calibrate`): its CPU per operation, and the CPU of an empty queue invocation, are taken off
//   each invocation's figure, by the operations its `invocation` log line counts. The rest is the
//   **own** estimate: the Worker's isolate, with the client side of its calls.
// workerd's inspector cannot do better: its CPU profile counts the time an isolate waits for I/O as
// busy. The estimate is noisy for a single invocation (a few ms either way: the simulators' cost
// varies with what they hold), so the bench reports medians beside maxima.
//
// A queue invocation on Cloudflare can carry up to 10 messages, but they share one invocation's
// budgets (docs/ARCHITECTURE.md, "Budgets per invocation"), so the work of a batch is bounded by
// the work one message does with the whole budget, which is what runs here.
//
// Writes target/bench/results/cpu.json. Env: BENCH_CPU_ITEMS (default 10000), BENCH_CPU_PLANS
// (default paid,free).
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakes } from '../devkit/harness/system.mjs';
import { JOBS_QUEUE, getJob, isFinal } from '../devkit/harness/worker.mjs';
import { addJob, makeStack } from '../devkit/fakes/stack.mjs';
import { listen } from '../devkit/fakes/common.mjs';
import { jobPayload, webhookRequest } from '../devkit/harness/sign.mjs';
import { writeResult, quantile, sleep } from './common.mjs';
import { workerdPids, threadCpu, total } from './workerd-cpu.mjs';

const ITEMS = Number(process.env.BENCH_CPU_ITEMS ?? 10000);
const ADMIN = 'bench-admin-token';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const INTAKES = 30;
const HEALTH_CHECKS = 10;
const FREE_CPU_MS = 10;

const RULES = {
  production: {
    zone_id: ZONE,
    kv_binding: 'CONTENT_KV',
    verify_sample: 5,
    entry: {
      kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
      tags: ['cs-{environment}-{uid}', 'ct-{content_type}'],
      urls: ['{base_url}page/{uid}'],
    },
  },
};

// --- workerd's CPU time (benches/workerd-cpu.mjs) -------------------------------------------

const nowNs = () => Number(process.hrtime.bigint());

/** `worker` and `objects`: the two workerd processes (the Worker's, its Durable Objects'). */
function cpuMeter({ worker, objects }) {
  const both = [worker, objects];
  /** Waits until workerd used less than `slackNs` over 20 ms, up to 5 s. */
  async function quiet(slackNs = 100_000) {
    const end = Date.now() + 5000;
    let c0 = total(threadCpu(both));
    while (Date.now() < end) {
      await sleep(20);
      const c1 = total(threadCpu(both));
      if (c1 - c0 <= slackNs) return;
      c0 = c1;
    }
  }
  return {
    /**
     * Runs `fn` alone: {value, process_ms (the Worker's workerd), objects_ms (the Durable Objects'
     * workerd), wall_ms}.
     */
    async measure(fn) {
      await quiet();
      const w0 = total(threadCpu([worker]));
      const o0 = total(threadCpu([objects]));
      const t0 = nowNs();
      const value = await fn();
      const t1 = nowNs();
      await quiet();
      const w1 = total(threadCpu([worker]));
      const o1 = total(threadCpu([objects]));
      return { value, process_ms: (w1 - w0) / 1e6, objects_ms: (o1 - o0) / 1e6, wall_ms: (t1 - t0) / 1e6 };
    },
  };
}

// --- what Miniflare's simulators cost per operation -------------------------------------------

// A JavaScript Worker beside ours that makes `n` operations of one kind (6 at a time, as the
// Worker's connections allow) on the same kinds of bindings: `/<op>?n=`. Its process CPU per
// operation is what Miniflare's KV, Cache and Queue simulators, the caller's side of a Durable
// Object call (to the other process, as the Worker's are) and workerd's HTTP client cost, none of
// which runs in the Worker's isolate on Cloudflare.
const CALIBRATION_WORKER = `
export default {
  async fetch(req, env) {
    const u = new URL(req.url);
    const n = Number(u.searchParams.get('n') ?? 1);
    const op = u.pathname.slice(1);
    const one = {
      none: async () => {},
      kv: (i) => env.KV.delete('calibration:' + i),
      cache: (i) => caches.default.delete('https://calibration.example/' + i),
      queue: (i) => env.Q.send(JSON.stringify({ calibration: i })),
      durable_object: (i) => env.PROBE.get(env.PROBE.idFromName('calibration-' + (i % 4))).fetch('https://probe/calibration').then((r) => r.arrayBuffer()),
      fetch: (i) => fetch(env.ECHO_URL + '?calibration=' + i).then((r) => r.text()),
    }[op];
    for (let i = 0; i < n; i += 6) {
      await Promise.all(Array.from({ length: Math.min(6, n - i) }, (_, k) => one(i + k)));
    }
    return new Response('ok');
  },
};`;

const CALIBRATION_OPS = { kv: 300, cache: 200, queue: 200, durable_object: 200, fetch: 60 };

/**
 * Process CPU per operation (ms) of each kind, less the request that asks for them; `request`: a
 * request to a Worker that does nothing (Miniflare's dispatch into workerd), and `invocation`: a
 * queue invocation of the Worker whose message is not a job message (the dispatch, the batch
 * handed over, the message read and acknowledged, its `bad_message` log line).
 */
async function calibrate(w, meter) {
  const worker = await w.mf.getWorker('calibration');
  const run = (op, n) => meter.measure(async () => (await worker.fetch(`http://calibration/${op}?n=${n}`)).text());
  for (const op of Object.keys(CALIBRATION_OPS)) await run(op, 12); // warm
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const request = [];
  for (let i = 0; i < 7; i++) request.push((await run('none', 1)).process_ms);
  const base = median(request);
  const per = { request: base };
  for (const [op, n] of Object.entries(CALIBRATION_OPS)) {
    const xs = [];
    for (let i = 0; i < 3; i++) xs.push(((await run(op, n)).process_ms - base) / n);
    per[op] = median(xs);
  }
  const own = await w.mf.getWorker();
  const empty = [];
  for (let i = 0; i < 7; i++) {
    empty.push((await meter.measure(() => own.queue(JOBS_QUEUE, [{ id: `calibration-${i}`, timestamp: new Date(), body: '"not a job message"', attempts: 1 }]))).process_ms);
  }
  per.invocation = median(empty);
  return per;
}

/**
 * A queue invocation's own CPU estimate: workerd's, less an empty invocation's (which leaves the
 * Worker's entry into its queue handler in: small) and what its operations cost the simulators.
 */
function ownMs(processMs, line, per) {
  const ops = ['kv', 'cache', 'queue', 'durable_object', 'fetch'];
  const sim = ops.reduce((a, op) => a + (line[op] ?? 0) * per[op], 0);
  return processMs - per.invocation - sim;
}

// --- the captured queue ---------------------------------------------------------------------

async function captureServer() {
  const bodies = [];
  const server = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      bodies.push(b);
      res.end('ok');
    });
  });
  const port = await listen(server, 0);
  return {
    url: `http://127.0.0.1:${port}/`,
    bodies,
    close: () => new Promise((r) => server.close(r)),
  };
}

// --- one plan's run -------------------------------------------------------------------------

async function runPlan(plan) {
  const stack = makeStack({ contentTypes: ['page', 'article'] });
  const fakes = await startFakes({ stack, site: { environments: ['production'] }, cloudflare: { bucket: { rate: 1000, burst: 1000 } } });
  const cap = await captureServer();
  const registry = fs.mkdtempSync(path.join(os.tmpdir(), 'cpu-bench-registry-'));
  const w = await fakes.startWorker({
    rules: RULES,
    adminToken: ADMIN,
    queues: 'producers',
    capture: cap.url,
    objectsApart: registry,
    extraWorkers: [{
      name: 'calibration',
      modules: true,
      script: CALIBRATION_WORKER,
      compatibilityDate: '2026-04-01',
      bindings: { ECHO_URL: cap.url },
      kvNamespaces: { KV: 'CONTENT_KV' },
      queueProducers: { Q: 'contentstack-purge-calibration' },
      durableObjects: { PROBE: { className: 'Job', scriptName: 'objects' } },
    }],
    vars: {
      WORKERS_PLAN: plan,
      PURGE_RATE_PER_SECOND: 1000,
      PURGE_BURST: 1000,
      QUEUE_MAX_ATTEMPTS: 5,
      RETRY_BASE_SECONDS: 0,
      REPURGE_DELAY_SECONDS: 0,
    },
  });
  const pids = workerdPids();
  if (pids.length !== 2) throw new Error(`expected two workerd processes (the objects', the Worker's), found ${pids.length}`);
  const meter = cpuMeter({ objects: pids[0], worker: pids[1] });
  const worker = await w.mf.getWorker();
  const deliver = async (job) => {
    const body = JSON.stringify(jobPayload({ jobId: job.jobId, action: job.action, environment: 'production', apiKey: stack.apiKey }));
    const { init } = webhookRequest('', body, { rsaKey: fakes.cs.privateKey });
    const r = await w.fetch('/webhooks/contentstack', init);
    const text = await r.text();
    if (r.status !== 202) throw new Error(`webhook answered ${r.status}: ${text}`);
  };
  let msgSeq = 0;
  /** Runs one message as one invocation; returns the delay (s) of a retry it asked for, or null. */
  const runMessage = async (text) => {
    const res = await worker.queue(JOBS_QUEUE, [{ id: `m${++msgSeq}`, timestamp: new Date(), body: text, attempts: 1 }]);
    if (res.outcome !== 'ok') return 0;
    if (res.retryBatch?.retry) return res.retryBatch.delaySeconds ?? 0;
    if (res.retryMessages?.length) return res.retryMessages[0].delaySeconds ?? 0;
    return null;
  };
  /** What the fakes saw so far: item pages read, purge calls, probe requests. */
  const seen = () => ({
    pages: fakes.cs.countsBy(/\/v3\/bulk\/jobs\/[^/]+\/items/),
    purge_calls: fakes.cf.requests.filter((r) => r.path.endsWith('/purge_cache')).length,
    probes: fakes.site.requests.filter((r) => r.method === 'GET').length,
  });
  /** Runs every captured message (and those they send) until the job is final; measures each. */
  const drive = async (jobId) => {
    const rows = [];
    const pending = [];
    const deadline = Date.now() + 900_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`job ${jobId} did not end`);
      while (cap.bodies.length) pending.push({ text: cap.bodies.shift(), due: 0 });
      pending.sort((a, b) => a.due - b.due);
      const next = pending[0];
      if (!next || next.due > Date.now()) {
        const rec = await getJob(w, jobId, ADMIN);
        if (isFinal(rec) && pending.length === 0) return { rows, record: rec };
        await sleep(next ? Math.min(200, next.due - Date.now()) : 50);
        continue;
      }
      pending.shift();
      const lines = w.events('invocation').length;
      const before = seen();
      const m = await meter.measure(() => runMessage(next.text));
      const after = seen();
      const line = w.events('invocation').slice(lines).at(-1) ?? {};
      if (m.value !== null) pending.push({ text: next.text, due: Date.now() + m.value * 1000 });
      rows.push({
        kind: line.step ?? JSON.parse(next.text).step?.step,
        steps: line.steps ?? {},
        process_ms: m.process_ms,
        objects_ms: m.objects_ms,
        wall_ms: m.wall_ms,
        ops: Object.fromEntries(['fetch', 'kv', 'durable_object', 'cache', 'queue'].map((k) => [k, line[k] ?? 0])),
        pages: after.pages - before.pages,
        purge_calls: after.purge_calls - before.purge_calls,
        probes: after.probes - before.probes,
        retried: m.value !== null,
      });
    }
  };

  // Warm every path once (a small job end to end, an intake, a health check), as a warm isolate is.
  const warmJob = addJob(stack, { entries: 250, environments: ['production'] });
  await deliver(warmJob);
  await drive(warmJob.jobId);
  await w.scheduled();
  const per = await calibrate(w, meter);

  const intake = [];
  const intakeObjects = [];
  for (let i = 0; i < INTAKES; i++) {
    const job = addJob(stack, { entries: 1, environments: ['production'] });
    const m = await meter.measure(() => deliver(job));
    intake.push(m.process_ms - per.request);
    intakeObjects.push(m.objects_ms);
  }
  cap.bodies.length = 0; // their start messages are not run
  await meter.measure(() => w.scheduled()); // the first after the intakes reads their jobs once
  const health = [];
  const healthObjects = [];
  for (let i = 0; i < HEALTH_CHECKS; i++) {
    const m = await meter.measure(() => w.scheduled());
    health.push(m.process_ms - per.request);
    healthObjects.push(m.objects_ms);
  }

  const big = addJob(stack, { entries: ITEMS, environments: ['production'] });
  await deliver(big);
  const { rows, record } = await drive(big.jobId);
  if (record.status !== 'done') throw new Error(`the ${ITEMS}-item job ended ${record.status}: ${JSON.stringify(record.errors ?? [])}`);
  for (const r of rows) r.own_ms = ownMs(r.process_ms, r.ops, per);

  await w.close();
  await cap.close();
  await fakes.close();
  fs.rmSync(registry, { recursive: true, force: true });

  const summary = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return { n: s.length, mean_ms: s.reduce((a, b) => a + b, 0) / (s.length || 1), p50_ms: quantile(s, 0.5), max_ms: s[s.length - 1] ?? null };
  };
  const sum = (rs, f) => rs.reduce((a, r) => a + r[f], 0);
  // By the step the invocation started with (it may run more steps inline: `steps`).
  const kinds = {};
  for (const r of rows) (kinds[r.kind] ??= []).push(r);
  const steps = Object.fromEntries(Object.entries(kinds).map(([k, rs]) => [k, {
    own: summary(rs.map((r) => r.own_ms)),
    process: summary(rs.map((r) => r.process_ms)),
    objects: summary(rs.map((r) => r.objects_ms)),
    pages: sum(rs, 'pages'),
    purge_calls: sum(rs, 'purge_calls'),
    probes: sum(rs, 'probes'),
  }]));
  const collecting = rows.filter((r) => r.pages > 0);
  const largest = rows.reduce((a, r) => (r.own_ms > (a?.own_ms ?? -Infinity) ? r : a), null);
  return {
    plan,
    simulator_ms_per_op: per,
    intake: summary(intake),
    intake_objects: summary(intakeObjects),
    health_check: summary(health),
    health_check_objects: summary(healthObjects),
    steps,
    // CPU per item page, over the invocations that read pages (their KV deletes and the purges
    // sent alongside included).
    own_ms_per_page: collecting.length ? sum(collecting, 'own_ms') / sum(collecting, 'pages') : null,
    objects_ms_per_page: collecting.length ? sum(collecting, 'objects_ms') / sum(collecting, 'pages') : null,
    job: {
      items: ITEMS,
      invocations: rows.length,
      retried: rows.filter((r) => r.retried).length,
      own_total_ms: sum(rows, 'own_ms'),
      process_total_ms: sum(rows, 'process_ms'),
      objects_total_ms: sum(rows, 'objects_ms'),
      largest,
      over_free_limit: rows.filter((r) => r.own_ms > FREE_CPU_MS).length,
      rows,
    },
  };
}

const results = [];
for (const plan of (process.env.BENCH_CPU_PLANS ?? 'paid,free').split(',')) {
  results.push(await runPlan(plan));
  const { job, ...rest } = results.at(-1);
  console.log(JSON.stringify({ ...rest, job: { ...job, rows: undefined } }, null, 2));
}
writeResult('cpu', { items: ITEMS, free_cpu_limit_ms: FREE_CPU_MS, plans: results, cpus: (await import('node:os')).cpus().length });
