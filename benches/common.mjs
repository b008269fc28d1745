// Shared by the Node benchmark drivers: where results go, small statistics, and a Worker started
// like tests/helpers/worker.mjs but with the job queue's producer only, so that queue consumers do
// not compete with the intake being measured for the machine's cores.
import { Miniflare } from 'miniflare';
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
 * The compiled Worker in Miniflare, with KV, the Durable Objects, static assets and the queue
 * producers, but no queue consumer (messages stay queued). Returns {url, close}.
 */
export async function startIntakeOnly({ vars }) {
  const mf = new Miniflare({
    modules: true,
    scriptPath: path.join(root, 'build/worker/shim.mjs'),
    modulesRoot: root,
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
    ],
    compatibilityDate: '2026-04-01',
    cf: false,
    bindings: vars,
    kvNamespaces: ['CONTENT_KV'],
    durableObjects: {
      LEDGER: { className: 'Ledger', useSQLite: true },
      LIMITER: { className: 'RateLimiter', useSQLite: true },
    },
    queueProducers: { JOBS: 'contentstack-purge-jobs', DEAD_LETTERS: 'contentstack-purge-dead-letters' },
    assets: {
      directory: path.join(root, 'www'),
      binding: 'ASSETS',
      routerConfig: { invoke_user_worker_ahead_of_assets: true, has_user_worker: true },
    },
    // Drain the Worker's log lines so the pipes never fill up.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, close: () => mf.dispose() };
}
