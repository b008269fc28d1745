// Times a command (meant for the test suite) and records it for BENCHMARKS.md's "Targets"
// table, which reads target/bench/results/test-time.json. Not part of `npm run bench`: the suite
// takes minutes; scripts/bench.sh keeps the file across its runs, and the table shows when and how
// it was measured.
//
// Usage: node benches/test-time.mjs <warm|fresh|machine> <command> [args…]
//
//   warm  — a checkout that has been built and tested before (target/, node_modules/, build/ kept):
//             node benches/test-time.mjs warm bash scripts/test.sh
//   fresh — a new clone, so the time includes the dependencies' download and first build:
//             git clone <repository> /tmp/fresh && cd /tmp/fresh &&
//             BENCH_RESULTS_DIR=/path/to/checkout/target/bench/results \
//               node benches/test-time.mjs fresh bash -c 'npm ci && bash scripts/test.sh'
//   machine — a fresh machine: a new clone with none of the tools installed and every cache empty
//             (Rust's registry, npm's), Chromium and the wasm32 target removed; the README's
//             "A fresh machine" says how it was simulated here:
//               CARGO_HOME=/tmp/fresh-cargo npm_config_cache=/tmp/fresh-npm CI=true \
//                 node /path/to/checkout/benches/test-time.mjs machine npm test
//
// Writes {"warm_s" | "fresh_s": seconds} into test-time.json (BENCH_RESULTS_DIR, else
// target/bench/results), keeping the other kind's figure, with "measured_at", "command" and "cpus"
// of this run and both runs' details under "runs". Records only a command that succeeded; exits
// with the command's status.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Not imported from common.mjs, which loads the test harness (absent before `npm ci` in a fresh clone).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = process.env.BENCH_RESULTS_DIR ?? path.join(root, 'target/bench/results');

const [kind, cmd, ...args] = process.argv.slice(2);
if (!['warm', 'fresh', 'machine'].includes(kind) || !cmd) {
  console.error('usage: node benches/test-time.mjs <warm|fresh|machine> <command> [args…]');
  process.exit(2);
}

const started = process.hrtime.bigint();
const run = spawnSync(cmd, args, { stdio: 'inherit' });
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
const command = [cmd, ...args].map(quote).join(' ');
if (run.error || run.status !== 0) {
  console.error(`test-time: \`${command}\` failed (${run.error?.message ?? `status ${run.status ?? run.signal}`}) after ${seconds.toFixed(1)} s; not recorded`);
  process.exit(run.status || 1);
}

const file = path.join(resultsDir, 'test-time.json');
let record = {};
try {
  record = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch {}
const measuredAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const cpus = os.availableParallelism?.() ?? os.cpus().length;
record[`${kind}_s`] = Math.round(seconds * 10) / 10;
record.measured_at = measuredAt;
record.command = command;
record.cpus = cpus;
record.runs = { ...(record.runs ?? {}), [kind]: { s: record[`${kind}_s`], measured_at: measuredAt, command, cwd: process.cwd(), cpus } };
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
console.error(`test-time: ${kind} ${seconds.toFixed(1)} s (${(seconds / 60).toFixed(1)} min) → ${path.relative(process.cwd(), file) || file}`);
