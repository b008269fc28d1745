#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time and reports, per target, the
# executions run and the crashes found. Exits non-zero if any target crashed (or a
# regression input under fuzz/regressions/ fails again).
#
#   bash scripts/fuzz.sh [seconds-per-target]        # default 30
#   FUZZ_TARGETS="payload template" bash scripts/fuzz.sh 60   # a subset
#   FUZZ_SANITIZER=address bash scripts/fuzz.sh 60           # with AddressSanitizer
#   bash scripts/fuzz.sh build                        # only build the targets
#
# Targets run FUZZ_JOBS at a time (default: the number of cores; 1 = one after another), each
# for the full time on its own core, so the executions per target stay what they are alone.
#
# How this works on stable Rust (no nightly here):
#   cargo-fuzz's default build enables AddressSanitizer via `-Zsanitizer=address`, which
#   stable rustc refuses. `cargo fuzz build/run --sanitizer none` (`-s none`) passes only
#   stable flags (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`,
#   `--cfg fuzzing`), so libFuzzer's coverage-guided fuzzing works on stable 1.95 as is.
#   What is lost is ASan, which matters little for these targets: the fuzzed code is safe
#   Rust; a panic, an overflow (overflow-checks/debug-assertions are on), a stack overflow,
#   a timeout or an OOM is still caught and saved as a crash.
#   ASan also works on this stable toolchain if rustc is told to accept -Z flags
#   (RUSTC_BOOTSTRAP=1, verified with 1.95); it is opt-in, builds into fuzz/target/asan and
#   runs about 2x slower:
#     FUZZ_SANITIZER=address bash scripts/fuzz.sh 60
#
# The first run builds all targets (about 70 s on 2 cores once the crates are downloaded; every
# dependency is built again here, with the fuzzing instrumentation); later runs reuse the build
# (a no-op under a second, about 25 s after a change in src/).
# Seeds from fuzz/seeds/<target>/ are copied into the git-ignored fuzz/corpus/<target>/,
# which keeps growing between runs. Crashing inputs land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH"

BUILD_ONLY=0
if [ "${1:-}" = build ]; then
  BUILD_ONLY=1
  set -- 1
fi
SECONDS_PER_TARGET="${1:-30}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "usage: bash scripts/fuzz.sh [seconds-per-target | build]" >&2
  exit 2
fi
JOBS="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
if ! [[ "$JOBS" =~ ^[0-9]+$ ]] || [ "$JOBS" -lt 1 ]; then
  echo "FUZZ_JOBS must be a positive number" >&2
  exit 2
fi
TARGETS=(${FUZZ_TARGETS:-hmac_header rsa_header payload template config})
case "${FUZZ_SANITIZER:-none}" in
  none) SANITIZER=(--sanitizer none) ;;
  address)
    # -Zsanitizer on stable: RUSTC_BOOTSTRAP lets stable rustc accept it. Separate target
    # dir so switching sanitizers does not rebuild the default (none) build.
    export RUSTC_BOOTSTRAP=1
    SANITIZER=(--sanitizer address --target-dir target/asan)
    ;;
  *) echo "FUZZ_SANITIZER must be none or address" >&2; exit 2 ;;
esac

bash scripts/setup.sh fuzz

cd fuzz
echo "== cargo fuzz build ${SANITIZER[*]} (all targets)"
build_start=$(date +%s)
cargo fuzz build "${SANITIZER[@]}" >/tmp/contentstack-edge-purge-fuzz-build.log 2>&1 || {
  cat /tmp/contentstack-edge-purge-fuzz-build.log
  exit 1
}
echo "   built in $(( $(date +%s) - build_start )) s"
[ "$BUILD_ONLY" -eq 1 ] && exit 0

# One target: its messages go to $out/$target.out, its summary row to $out/$target.row, and
# $out/$target.failed marks a crash or a failing regression input.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fuzz_target() {
  local target=$1 failed=0 corpus artifacts regressions marker log rc execs crashes corpus_size
  corpus="corpus/$target"
  artifacts="artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "seeds/$target" ]; then
    cp -n "seeds/$target"/* "$corpus"/ 2>/dev/null || true
  fi

  # Known crashing inputs are replayed first: each must now pass.
  regressions=0
  if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target" 2>/dev/null)" ]; then
    regressions=$(ls -A "regressions/$target" | wc -l)
    echo "== $target: replaying $regressions regression input(s)"
    if ! cargo fuzz run "${SANITIZER[@]}" "$target" "regressions/$target"/* \
         >"/tmp/fuzz-$target-regressions.log" 2>&1; then
      grep -E "panicked|ERROR|SUMMARY" "/tmp/fuzz-$target-regressions.log" | head -5 || true
      echo "   regression input(s) for $target fail (log: /tmp/fuzz-$target-regressions.log)"
      failed=1
    fi
  fi

  echo "== $target: fuzzing for ${SECONDS_PER_TARGET}s"
  marker=$(mktemp)
  log="/tmp/fuzz-$target.log"
  set +e
  # -timeout: an input taking over 10 s counts as a crash (hang).
  # -max_len 8192: room for the 128-level-deep payload seeds and real-sized configs.
  cargo fuzz run "${SANITIZER[@]}" "$target" "$corpus" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -max_len=8192 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  if [ -z "$execs" ]; then
    # libFuzzer prints no final stats when it dies on a crash; use its last status line.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  fi
  crashes=$(find "$artifacts" -type f -newer "$marker" \
    \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  rm -f "$marker"
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1 # died without writing an artifact (e.g. a build or harness error)
  fi
  corpus_size=$(ls -A "$corpus" | wc -l)
  echo "   executions: ${execs:-0}   crashes: $crashes   corpus: $corpus_size inputs"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    grep -E "panicked at|assertion|SUMMARY|Test unit written|ERROR: libFuzzer" "$log" | head -8 || true
    echo "   full log: $log ; reproduce: (cd fuzz && cargo fuzz run ${SANITIZER[*]} $target <artifact>)"
  fi
  printf '%-12s %8ss %12s %8s\n' "$target" "$SECONDS_PER_TARGET" "${execs:-0}" "$crashes" >"$out/$target.row"
  if [ "$failed" -ne 0 ]; then touch "$out/$target.failed"; fi
}

echo "== fuzzing ${#TARGETS[@]} targets for ${SECONDS_PER_TARGET}s each, $JOBS at a time"
running=0
for target in "${TARGETS[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_target "$target" >"$out/$target.out" 2>&1 &
  running=$((running + 1))
done
wait

failed=0
for target in "${TARGETS[@]}"; do
  cat "$out/$target.out"
  if [ -e "$out/$target.failed" ] || [ ! -e "$out/$target.row" ]; then failed=1; fi
done
echo
echo "== summary"
printf '%-12s %9s %12s %8s\n' target time executions crashes
for target in "${TARGETS[@]}"; do
  cat "$out/$target.row" 2>/dev/null || printf '%-12s %9s %12s %8s\n' "$target" "-" "-" "?"
done
if [ "$failed" -ne 0 ]; then
  echo "FUZZING FOUND CRASHES (see above)" >&2
  exit 1
fi
echo "no crashes"
