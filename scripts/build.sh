#!/usr/bin/env bash
# Builds the Worker into build/ with worker-build, using the registry-installed
# wasm-bindgen and binaryen's wasm-opt instead of worker-build's GitHub downloads.
# wrangler runs this as its [build] command (dev and deploy alike).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Nothing to do when the bundle is newer than every input.
if [ -f build/index_bg.wasm ] && [ -f build/worker/shim.mjs ] && [ "${FORCE_BUILD:-}" != 1 ] \
   && [ -z "$(find src Cargo.toml Cargo.lock scripts/build.sh -newer build/index_bg.wasm -print -quit)" ]; then
  echo "build: build/ is up to date"
  exit 0
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
worker-build --release
bash scripts/opt-wasm.sh build/index_bg.wasm
