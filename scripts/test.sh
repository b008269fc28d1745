#!/usr/bin/env bash
# Runs every test: formatting and lints, the native Rust unit tests, then the Worker built to
# wasm and driven by Miniflare (and the dashboard in headless Chromium) under node --test.
# Installs whatever is missing first (see scripts/setup.sh).
#
# To save time, with every check kept:
# - the wasm build of the Worker (about 30 s after a change in src/, 1.5 min from scratch, much of
#   it on one core: fat LTO with one codegen unit, then wasm-opt) runs in the background from the
#   start, beside clippy, the unit tests and the fuzz build, and is waited for before fuzzing;
# - the fuzz targets run one per core (scripts/fuzz.sh; each still gets its 10 s on a core);
# - the Node suites run NODE_TEST_JOBS files at a time (default 3; 1 = one after another), the
#   longest first. Each suite starts its own fakes on ephemeral ports and its own Miniflare, and
#   writes only its own files under test-output/, so they do not interfere.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH"
started=$SECONDS
mkdir -p test-output
phases=test-output/phases.txt
: >"$phases"
# Each step's start, for the phase table printed at the end.
step() {
  printf '== %s   [%d s]\n' "$*" $((SECONDS - started))
  printf '%d\t%s\n' $((SECONDS - started)) "$*" >>"$phases"
}
jobs="${NODE_TEST_JOBS:-3}"
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then
  echo "NODE_TEST_JOBS must be a positive number" >&2
  exit 2
fi

# Set-up, all parts at once in the background (scripts/setup.sh): on a fresh machine the npm
# packages and Chromium download while the Rust tools compile, and the tools compile while the
# checks below compile the project. Each part holds a lock, so a later step that needs one
# (build.sh, deny.sh, fuzz.sh, the suites) waits for its install rather than starting another;
# a part that failed in the background is tried again there, in the foreground, with its error.
# The tools the critical path needs first (the wasm build's) get the CPU before cargo-deny and
# cargo-fuzz (nice). Installed parts are checked in well under a second.
export SETUP_TIMES="$PWD/test-output/setup-times.txt"
: >"$SETUP_TIMES"
step "set-up in the background (what a fresh machine lacks)"
bg=()
for part in npm browser wasm; do
  setsid bash scripts/setup.sh "$part" >"test-output/setup-$part.log" 2>&1 &
  bg+=($!)
done
for part in fuzz deny; do
  setsid nice -n 10 bash scripts/setup.sh "$part" >"test-output/setup-$part.log" 2>&1 &
  bg+=($!)
done

step "build the Worker (wasm), in the background"
build_log=$(mktemp -t contentstack-edge-purge-build.XXXXXX)
# Its own process group, so that it is stopped with everything it started if this script ends early.
setsid bash scripts/build.sh >"$build_log" 2>&1 &
build_pid=$!
stop_background() {
  kill -- -"$build_pid" 2>/dev/null || true
  for p in "${bg[@]}"; do kill -- -"$p" 2>/dev/null || true; done
}
trap stop_background EXIT

step "cargo fmt --check"
cargo fmt --check
step "module graph (no cycles)"
node scripts/check-modules.mjs --top
node scripts/check-modules.mjs
step "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
step "cargo test"
cargo test --quiet
step "cargo deny check bans licenses sources"
bash scripts/deny.sh
step "fuzz targets: build"
bash scripts/fuzz.sh build
step "wait for the Worker build (wasm)"
if ! wait "$build_pid"; then
  cat "$build_log"
  echo "the Worker build failed (log above: $build_log)" >&2
  exit 1
fi
rm -f "$build_log"
# After the wasm build, so that no compiler takes CPU time from the fuzzers.
step "fuzzing, 10 s per target (bash scripts/fuzz.sh 60 for a longer run)"
bash scripts/fuzz.sh 10

# Measured seconds of each suite run alone on 2 cores: the longest start first. A file not
# listed counts as 60 s, so a new suite starts early rather than last.
declare -A SUITE_SECONDS=(
  [tests/platform.test.mjs]=115 [tests/pipeline.test.mjs]=65 [tests/faults.test.mjs]=58
  [tests/intake.test.mjs]=20 [tests/dashboard.test.mjs]=19 [tests/references.test.mjs]=12
  [tests/fakes/fakes.test.mjs]=10 [tests/verification.test.mjs]=8 [tests/lookups.test.mjs]=7
  [tests/health.test.mjs]=5 [tests/hostile.test.mjs]=3 [tests/admin.test.mjs]=2
  [tests/dryrun.test.mjs]=40 [tests/retention.test.mjs]=30 [tests/objects.test.mjs]=30
  [tests/zones.test.mjs]=30 [tests/warm.test.mjs]=25
)
step "set-up: the npm packages and Chromium (waits for the background install, if any)"
bash scripts/setup.sh npm browser
trap - EXIT
files=(tests/fakes/fakes.test.mjs tests/*.test.mjs)
step "node --test (Miniflare + fakes): ${#files[@]} suites, $jobs at a time"
# Each suite's TAP output goes to test-output/node/<suite>.log (all printed at the end, in file
# order); one line per suite as it finishes.
rm -rf test-output/node
mkdir -p test-output/node
run_suite() {
  local f=$1 name t0 rc=0 line
  name=$(basename "$f" .test.mjs)
  t0=$SECONDS
  WRANGLER_SEND_METRICS=false node --test --test-timeout=600000 "$f" >"test-output/node/$name.log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    line=$(printf '   %-14s %4d s  ok' "$name" $((SECONDS - t0)))
  else
    line=$(printf '   %-14s %4d s  FAILED (exit %d, test-output/node/%s.log)' "$name" $((SECONDS - t0)) "$rc" "$name")
  fi
  echo "$line"
  echo "$line" >>test-output/node/summary.txt
  return $((rc == 0 ? 0 : 1))
}
export -f run_suite
node_rc=0
for f in "${files[@]}"; do echo "${SUITE_SECONDS[$f]:-60} $f"; done | sort -k1,1nr -k2,2 | cut -d' ' -f2 \
  | xargs -P "$jobs" -n 1 bash -c 'run_suite "$1"' _ || node_rc=$?
for f in "${files[@]}"; do
  cat "test-output/node/$(basename "$f" .test.mjs).log"
done
echo "== node suites (seconds each, run $jobs at a time)"
cat test-output/node/summary.txt
if [ "$node_rc" -ne 0 ]; then
  echo "NODE SUITES FAILED (see above)" >&2
  exit 1
fi
step "all checks passed"
# The phase table (README, "A fresh machine"): each step's seconds, then what set-up installed.
echo "== phases (seconds)"
awk -F'\t' -v end=$((SECONDS - started)) 'NR > 1 { printf "   %5d  %s\n", $1 - t, n } { t = $1; n = $2 } END { printf "   %5d  total\n", end }' "$phases"
if [ -s "$SETUP_TIMES" ]; then
  echo "== set-up installs, in the background (seconds each)"
  sed 's/^/   /' "$SETUP_TIMES"
fi
