#!/usr/bin/env bash
# Drops the names and producers sections (a fifth of the module) from a names-kept wasm module,
# nothing else. build.sh does not use it: scripts/opt-wasm.sh strips while it optimizes. Skipped
# with KEEP_WASM_NAMES=1. Usage: scripts/strip-wasm.sh path/to/index_bg.wasm
set -euo pipefail
[ "${KEEP_WASM_NAMES:-}" = 1 ] && exit 0
here="$(cd "$(dirname "$0")/.." && pwd)"
"${WASM_OPT_BIN:-$here/node_modules/.bin/wasm-opt}" "$1" --strip-debug --strip-producers -o "$1" \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
