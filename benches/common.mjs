// Shared by the Node benchmark drivers: where results go, small statistics, and a Worker started
// like devkit/harness/worker.mjs but with the job queue's producer only, so that queue consumers do
// not compete with the intake being measured for the machine's cores.
import { startWorker } from '../devkit/harness/worker.mjs';
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
 * The compiled Worker in Miniflare (the tests' harness) with the queue producers bound but no
 * queue consumer, so messages stay queued and only the intake is measured. Returns {url, close}.
 */
export async function startIntakeOnly({ vars }) {
  const w = await startWorker({ vars, queues: 'producers' });
  return { url: w.url, close: () => w.close() };
}
