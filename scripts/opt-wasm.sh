#!/usr/bin/env bash
# Optimizes the wasm module built by worker-build (whose own wasm-opt step is off in Cargo.toml)
# with binaryen's wasm-opt: `-O` (which is `-Os`) then `-Oz`, dropping the names and producers
# sections in the same run. worker-build would keep names (`--debuginfo`) for readable stack
# traces; they are a fifth of the module, and optimizing without them also merges more (about
# 2.7 KB less gzip than `-O --debuginfo` followed by a strip). KEEP_WASM_NAMES=1 keeps the names
# (for twiggy; scripts/strip-wasm.sh can strip such a copy afterwards).
# Usage: scripts/opt-wasm.sh path/to/index_bg.wasm
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# The feature set worker-build passes (what workerd supports; rustc's wasm32 defaults plus the
# exception handling of wasm-bindgen's catch wrappers).
features=(--enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling)
if [ "${KEEP_WASM_NAMES:-}" = 1 ]; then
  names=(--debuginfo)
else
  names=(--strip-debug --strip-producers)
fi
"${WASM_OPT_BIN:-$here/node_modules/.bin/wasm-opt}" "$1" -O -Oz "${names[@]}" "${features[@]}" \
  -o "$1.opt"
mv "$1.opt" "$1"
