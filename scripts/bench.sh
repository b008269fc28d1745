#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md: hot paths natively with criterion, intake under
# load and job cost against the compiled Worker in Miniflare, and the bundle size next to a
# hello-world Worker built the same way, with a breakdown by crate (twiggy, if installed). Installs
# whatever is missing first (scripts/setup.sh).
# Benchmarks, not tests: nothing here fails on a slow figure. Under 10 minutes on 2 cores.
# Intermediate results: target/bench/ (criterion/, results/*.json, logs/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"

started=$(date +%s)
out="$PWD/target/bench"
export CRITERION_HOME="$out/criterion"
export BENCH_RESULTS_DIR="$out/results"
# The test suite's times (benches/test-time.mjs, run by hand: the suite takes minutes) outlive a run.
test_time=$(cat "$BENCH_RESULTS_DIR/test-time.json" 2>/dev/null || true)
rm -rf "$CRITERION_HOME" "$BENCH_RESULTS_DIR" "$out/logs"
mkdir -p "$BENCH_RESULTS_DIR" "$out/logs"
[ -z "$test_time" ] || printf '%s\n' "$test_time" >"$BENCH_RESULTS_DIR/test-time.json"
cat /proc/loadavg >"$BENCH_RESULTS_DIR/loadavg-start" 2>/dev/null || true

# Runs a step with its output in target/bench/logs/<name>.log, shown only when it fails.
step() {
  local name=$1
  shift
  echo "== $name ($(($(date +%s) - started)) s)"
  if ! "$@" >"$out/logs/$name.log" 2>&1; then
    tail -n 40 "$out/logs/$name.log"
    echo "bench: step '$name' failed; full log in target/bench/logs/$name.log" >&2
    exit 1
  fi
}

build_hello_world() {
  # Built in a copy under target/ so the repository stays clean; its own target dir keeps
  # later runs incremental. Same env (wasm-bindgen CLI, wasm-opt) as scripts/build.sh.
  rm -rf "$out/hello-world"
  cp -a benches/hello-world "$out/hello-world"
  (cd "$out/hello-world" && CARGO_TARGET_DIR="$out/hello-world-target" worker-build --release)
  # The same post-processing as scripts/build.sh, so the sizes compare like with like.
  bash scripts/opt-wasm.sh "$out/hello-world/build/index_bg.wasm"
}

step setup bash scripts/setup.sh
step build bash scripts/build.sh
step build-hello-world build_hello_world
step size node benches/size.mjs build "$out/hello-world/build"
# Rebuilds with the names section kept for twiggy, then strips build/ again (records "not measured"
# when twiggy is not installed: `cargo install twiggy`).
step size-breakdown node benches/size-breakdown.mjs --build
step cargo-bench cargo bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3
step intake node benches/intake-load.mjs
step job-cost node benches/job-cost.mjs
step job-cost-repurge env BENCH_JOB_SIZES=100,1000 BENCH_REPURGE_DELAY=5 BENCH_RESULT_NAME=job-cost-repurge \
  node benches/job-cost.mjs
step lookup-cost node benches/lookup-cost.mjs
step many-jobs node benches/many-jobs.mjs
grep -h '^\(size\|intake\|job-cost\|lookup-cost\|many-jobs\)' "$out/logs/size.log" "$out/logs/size-breakdown.log" "$out/logs/intake.log" \
  "$out/logs/job-cost.log" "$out/logs/job-cost-repurge.log" "$out/logs/lookup-cost.log" "$out/logs/many-jobs.log" || true

node benches/report.mjs --seconds $(($(date +%s) - started)) >BENCHMARKS.md.tmp
mv BENCHMARKS.md.tmp BENCHMARKS.md
echo "== wrote BENCHMARKS.md in $(($(date +%s) - started)) s"
