#!/usr/bin/env bash
# Builds the Worker into build/ with worker-build, using the registry-installed
# wasm-bindgen and binaryen's wasm-opt instead of worker-build's GitHub downloads.
# wrangler runs this as its [build] command (dev and deploy alike).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
exec worker-build --release
