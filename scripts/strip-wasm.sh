#!/usr/bin/env bash
# Drops the names and producers sections from a wasm module built by worker-build (they are a
# fifth of the module; worker-build keeps names for readable stack traces). Skipped with
# KEEP_WASM_NAMES=1. Usage: scripts/strip-wasm.sh path/to/index_bg.wasm
set -euo pipefail
[ "${KEEP_WASM_NAMES:-}" = 1 ] && exit 0
here="$(cd "$(dirname "$0")/.." && pwd)"
"${WASM_OPT_BIN:-$here/node_modules/.bin/wasm-opt}" "$1" --strip-debug --strip-producers -o "$1" \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
