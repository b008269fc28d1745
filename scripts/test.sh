#!/usr/bin/env bash
# Runs every test: formatting and lints, the native Rust unit tests, then the Worker built to
# wasm and driven by Miniflare (and the dashboard in headless Chromium) under node --test.
# Installs whatever is missing first (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh --browser
echo "== cargo fmt --check"
cargo fmt --check
echo "== module graph (no cycles)"
node scripts/check-modules.mjs
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --quiet
echo "== cargo deny check bans licenses sources"
bash scripts/deny.sh
echo "== fuzzing, 10 s per target (bash scripts/fuzz.sh 60 for a longer run)"
bash scripts/fuzz.sh 10
echo "== build the Worker (wasm)"
bash scripts/build.sh >/tmp/contentstack-edge-purge-build.log 2>&1 || { cat /tmp/contentstack-edge-purge-build.log; exit 1; }
echo "== node --test (Miniflare + fakes)"
mkdir -p test-output
WRANGLER_SEND_METRICS=false node --test --test-concurrency=1 --test-timeout=600000 \
  tests/fakes/fakes.test.mjs tests/*.test.mjs
