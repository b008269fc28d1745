#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md: hot paths natively with criterion, intake under
# load and job cost against the compiled Worker in Miniflare, and the bundle size next to a
# hello-world Worker built the same way, with a breakdown by crate (twiggy, if installed), a job under
# each Cloudflare plan's purge bucket, and a new isolate's first answer next to hello-world's. Installs
# whatever is missing first (scripts/setup.sh).
# Also builds the code before the ledger was split per job (BENCH_BEFORE_COMMIT, default 6e8811a: one
# `Ledger` Durable Object for every job) into target/bench/before-src (its own target dir,
# target/bench/before-target, so later runs are incremental) and measures it in the same run: intake
# side by side with this build, its 10,000-item job, its .wasm. When that build fails the rest still
# runs and BENCHMARKS.md says "not measured" for those figures.
# Benchmarks, not tests: nothing here fails on a slow figure. Under 14 minutes on 2 cores (the first
# run also compiles the before build's dependencies, unless target/ has them to copy).
# Intermediate results: target/bench/ (criterion/, results/*.json, logs/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH"
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

# Runs a step with its output in target/bench/logs/<name>.log; when it fails, shows the log's
# last `lines` lines and fails too.
logged() {
  local lines=$1 name=$2
  shift 2
  echo "== $name ($(($(date +%s) - started)) s)"
  "$@" >"$out/logs/$name.log" 2>&1 && return 0
  tail -n "$lines" "$out/logs/$name.log"
  return 1
}

# A step whose failure ends the run.
step() {
  logged 40 "$@" && return 0
  echo "bench: step '$1' failed; full log in target/bench/logs/$1.log" >&2
  exit 1
}

# As step, but a failure is reported and the run goes on (for the before build's measurements).
soft_step() {
  logged 20 "$@" && return 0
  echo "bench: step '$1' failed (its figures read \"not measured\"); full log in target/bench/logs/$1.log" >&2
  return 1
}

before_commit=$(git rev-parse --verify --quiet "${BENCH_BEFORE_COMMIT:-6e8811a}^{commit}" || true)
export BENCH_BEFORE_COMMIT="${before_commit:0:7}"
before="$out/before-src"
before_ok=0

build_before() {
  [ -n "$before_commit" ] || { echo "bench: no commit ${BENCH_BEFORE_COMMIT:-6e8811a} in this repository" >&2; return 1; }
  # The tree is extracted once per commit (git archive: no worktree registered in .git) and kept, so
  # its mtimes stay put and both build.sh's up-to-date check and cargo stay incremental.
  if [ "$(cat "$before/.bench-commit" 2>/dev/null)" != "$before_commit" ]; then
    rm -rf "$before"
    mkdir -p "$before"
    # (`|| return`: set -e does not reach into a function run under `if !`, as steps are.)
    git archive "$before_commit" | tar -x -C "$before" || return 1
    echo "$before_commit" >"$before/.bench-commit"
  fi
  # Its setup is this checkout's, already run (step setup: the same worker-build and wasm-bindgen,
  # pinned by the same Cargo.toml; wasm-opt is $WASM_OPT_BIN, this checkout's binaryen). The copy's own
  # setup.sh would `npm ci` into a node_modules of its own for nothing, so it is replaced there.
  [ ! -L "$before/node_modules" ] || rm -f "$before/node_modules"
  printf '#!/usr/bin/env bash\n# Replaced by scripts/bench.sh: the checkout running the bench did the setup.\n' \
    >"$before/scripts/setup.sh" || return 1
  local tdir="$out/before-target"
  # First run: start from a copy of this checkout's compiled dependencies when Cargo.lock is the
  # same (cargo rebuilds whatever does not match), instead of compiling them all again.
  if [ ! -d "$tdir" ] && cmp -s Cargo.lock "$before/Cargo.lock" && [ -d target/wasm32-unknown-unknown/release ]; then
    mkdir -p "$tdir/wasm32-unknown-unknown/release" "$tdir/release"
    for d in build deps .fingerprint; do
      [ -d "target/wasm32-unknown-unknown/release/$d" ] && cp -a "target/wasm32-unknown-unknown/release/$d" "$tdir/wasm32-unknown-unknown/release/" || true
      [ -d "target/release/$d" ] && cp -a "target/release/$d" "$tdir/release/" || true
    done
  fi
  (cd "$before" && CARGO_TARGET_DIR="$tdir" bash scripts/build.sh) || return 1
  test -f "$before/build/index_bg.wasm" && test -f "$before/build/worker/shim.mjs"
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
soft_step build-before build_before && before_ok=1
step build-hello-world build_hello_world
if [ "$before_ok" = 1 ]; then
  step size node benches/size.mjs build "$out/hello-world/build" "$before/build"
else
  step size node benches/size.mjs build "$out/hello-world/build"
fi
# Rebuilds with the names section kept for twiggy, then strips build/ again (records "not measured"
# when twiggy is not installed: `cargo install twiggy`).
step size-breakdown node benches/size-breakdown.mjs --build
step cargo-bench cargo bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3
step intake node benches/intake-load.mjs
if [ "$before_ok" = 1 ]; then
  # The single ledger's build and this one side by side, interleaved (RSA): after ÷ before.
  soft_step intake-compare env BENCH_COMPARE_BUILD_DIR="$before" BENCH_COMPARE_LEDGER=single \
    BENCH_COMPARE_COMMIT="$BENCH_BEFORE_COMMIT" node benches/intake-load.mjs || true
fi
step job-cost node benches/job-cost.mjs
if [ "$before_ok" = 1 ]; then
  # The single ledger's 10,000-item job, the same bench (its Worker with the `LEDGER` binding).
  soft_step job-cost-before env BENCH_JOB_SIZES=10000 BENCH_RESULT_NAME=job-cost-before \
    BENCH_BUILD_DIR="$before" BENCH_LEDGER=single node benches/job-cost.mjs || true
fi
step job-cost-repurge env BENCH_JOB_SIZES=100,1000 BENCH_REPURGE_DELAY=5 BENCH_RESULT_NAME=job-cost-repurge \
  node benches/job-cost.mjs
step lookup-cost node benches/lookup-cost.mjs
step many-jobs node benches/many-jobs.mjs
# Two zones (purge calls per zone ÷ their minimum) and the warm pace (requests per second ÷ warm_rate).
step zones-warm node benches/zones-warm.mjs
# A two-locale job under each Cloudflare plan's purge bucket (Free scaled), against its floors: about 3 min.
step plans node benches/plans.mjs
# A new isolate (a fresh Miniflare each sample) to its first answer, ÷ the hello-world Worker's.
step cold-start node benches/cold-start.mjs "$out/hello-world"
# CPU per invocation (workerd's CPU time around each invocation, run one at a time), Paid and Free budgets.
step cpu node benches/cpu.mjs
grep -h '^\(size\|intake\|job-cost\|lookup-cost\|many-jobs\|zones-warm\|plans\|cold-start\|cpu\)' "$out/logs/size.log" "$out/logs/size-breakdown.log" "$out/logs/intake.log" \
  "$out/logs/intake-compare.log" "$out/logs/job-cost.log" "$out/logs/job-cost-before.log" "$out/logs/job-cost-repurge.log" \
  "$out/logs/lookup-cost.log" "$out/logs/many-jobs.log" "$out/logs/zones-warm.log" "$out/logs/plans.log" "$out/logs/cold-start.log" 2>/dev/null || true

# The run's end, kept with the results, so that the report can be rendered again from them alone.
cat /proc/loadavg >"$BENCH_RESULTS_DIR/loadavg-end" 2>/dev/null || true
date -u +%Y-%m-%dT%H:%M:%SZ >"$BENCH_RESULTS_DIR/finished"
node benches/report.mjs --seconds $(($(date +%s) - started)) >BENCHMARKS.md.tmp
mv BENCHMARKS.md.tmp BENCHMARKS.md
echo "== wrote BENCHMARKS.md in $(($(date +%s) - started)) s"
