// Shared by the Node benchmark drivers: where results go, small statistics, and a Worker started
// like devkit/harness/worker.mjs but with the job queue's producer only, so that queue consumers do
// not compete with the intake being measured for the machine's cores.
import { startWorker, LEDGER_OBJECTS, SINGLE_LEDGER_OBJECTS, waitFor, getJob, isFinal } from '../devkit/harness/worker.mjs';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const resultsDir = process.env.BENCH_RESULTS_DIR ?? path.join(root, 'target/bench/results');

/** Writes `name`.json into the results directory. */
export function writeResult(name, value) {
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
  return file;
}

/** The q-quantile (0..1) of an ascending array, nearest-rank. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * As the harness's waitForFinal, counting the polls (each one GET /api/jobs/{id}: one call to the
 * job's object, which the benches count among its Durable Object calls). Returns {record, polls}.
 */
export async function waitFinalCountingPolls(w, jobId, token, { timeoutMs, intervalMs }) {
  let polls = 0;
  const record = await waitFor(async () => {
    polls++;
    const j = await getJob(w, jobId, token);
    return isFinal(j) ? j : null;
  }, { what: `job ${jobId} to finish`, timeoutMs, intervalMs });
  return { record, polls };
}

/**
 * The compiled Worker in Miniflare (the tests' harness) with the queue producers bound but no
 * queue consumer, so messages stay queued and only the intake is measured. Returns {url, close}.
 * `buildDir` and `ledgerObjects` go to startWorker: another build of the Worker (another checkout's
 * `build/`) with its own Durable Object bindings.
 */
export async function startIntakeOnly({ vars, buildDir, ledgerObjects }) {
  const w = await startWorker({ vars, queues: 'producers', ...(buildDir ? { buildDir } : {}), ...(ledgerObjects ? { ledgerObjects } : {}) });
  return { url: w.url, close: () => w.close() };
}

/**
 * The Durable Object layout a build needs, by name: 'per-job' (one `Job` object per job and the
 * `JobIndex`, this code) or 'single' (one `Ledger` object for every job, up to commit 6e8811a).
 */
export function ledgerLayout(name) {
  if (name === undefined || name === '' || name === 'per-job') return LEDGER_OBJECTS;
  if (name === 'single') return SINGLE_LEDGER_OBJECTS;
  throw new Error(`unknown ledger layout ${JSON.stringify(name)} (per-job or single)`);
}

/**
 * Where a bench's Worker comes from: env BENCH_BUILD_DIR (a checkout with its own `build/`, default
 * this repository) and BENCH_LEDGER ('per-job' or 'single', as ledgerLayout). Returns the
 * startWorker options and a label for the results.
 */
export function buildFromEnv(env = process.env) {
  const dir = env.BENCH_BUILD_DIR ? path.resolve(env.BENCH_BUILD_DIR) : null;
  const layout = env.BENCH_LEDGER || 'per-job';
  return {
    worker: { ...(dir ? { buildDir: dir } : {}), ledgerObjects: ledgerLayout(layout) },
    label: { build_dir: dir ? path.relative(root, dir) || '.' : '.', ledger: layout },
  };
}

/** The bucket the Worker's schedule plans against (`TokenBucket::planned`, src/pace/mod.rs). */
export function plannedBucket({ rate, burst }) {
  const JITTER_S = 0.25;
  const margin = rate * 0.98 * JITTER_S;
  const b = Math.max(1, burst - margin);
  let r = rate * 0.98;
  if (burst - b < r * JITTER_S - 1e-9) r = Math.min(r, rate / (1 + rate * JITTER_S));
  return { rate: r, burst: b };
}
