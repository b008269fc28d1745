#!/usr/bin/env bash
# Installs what building and testing need, and nothing when it is already there.
#
#   bash scripts/setup.sh [part …]        default parts: wasm npm
#
# Parts:
#   wasm     the wasm32-unknown-unknown target, worker-build, and wasm-bindgen-cli at the version
#            pinned in Cargo.toml (what scripts/build.sh needs)
#   npm      the npm packages (npm ci)
#   deny     cargo-deny (scripts/deny.sh)
#   fuzz     cargo-fuzz (scripts/fuzz.sh)
#   browser  Debian's chromium (the dashboard test)
#
# Each part holds its own lock (target/setup/<part>.lock) while it checks and installs, so scripts
# that run at once share the work: scripts/test.sh starts every part in the background, and a
# script that needs a part (build.sh, deny.sh, fuzz.sh) waits for the install under way instead of
# starting a second one. A part that installed something appends "<part> <seconds>" to
# $SETUP_TIMES when that is set (test.sh prints them: the phase table in the README).
#
# Nothing here is prebuilt: crates.io and npm offer no binaries of these tools (their release
# binaries are on GitHub, which this project's machines cannot reach), so the Rust tools are
# compiled, with `--locked` (each tool's own lockfile). Build tools, not the product: they are
# compiled without LTO and with parallel codegen units (cargo-deny's own profile asks for fat LTO
# and one codegen unit, which costs minutes for a tool that runs for a second).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)

# cargo install, --locked first; a lockfile that names a version the registry no longer offers
# (wasm-bindgen-cli 0.2.130's pins a yanked webpki-roots) fails at once, and then the tool is
# installed with its dependencies resolved afresh.
install_crate() {
  local crate=$1
  shift
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
  if ! cargo install --locked --quiet "$crate" "$@"; then
    echo "setup: $crate: its lockfile does not resolve here; installing without --locked" >&2
    cargo install --quiet "$crate" "$@"
  fi
}

part_wasm() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target" >&2
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$(worker-build --version 2>/dev/null || true)" != "$WORKER_BUILD_VERSION" ]; then
    echo "setup: installing worker-build $WORKER_BUILD_VERSION (about 2 minutes, once)" >&2
    install_crate worker-build --version "=$WORKER_BUILD_VERSION" --force
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    echo "setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes, once)" >&2
    # Without its default features: they are TLS for its test runner's downloads, unused here.
    install_crate wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --no-default-features --force
  fi
}

part_npm() {
  if [ ! -x node_modules/.bin/wrangler ] || [ ! -f node_modules/.package-lock.json ] \
     || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: installing npm packages" >&2
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

part_deny() {
  if ! cargo deny --version >/dev/null 2>&1; then
    echo "setup: installing cargo-deny (a few minutes, once)" >&2
    install_crate cargo-deny
  fi
}

part_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz (about a minute, once)" >&2
    install_crate cargo-fuzz
  fi
}

part_browser() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "setup: installing Debian's chromium for the dashboard test" >&2
    local sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
}

# Runs one part under its lock; records its time (the wait for the lock left out) when it took
# more than a second, that is, when it installed something.
run_part() {
  local part=$1
  mkdir -p target/setup
  (
    flock 9
    t0=$SECONDS
    "part_$part"
    if [ -n "${SETUP_TIMES:-}" ] && [ $((SECONDS - t0)) -gt 1 ]; then
      echo "$part $((SECONDS - t0))" >>"$SETUP_TIMES"
    fi
  ) 9>"target/setup/$part.lock"
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(wasm npm)
for part in "${parts[@]}"; do
  case "$part" in
    wasm | npm | deny | fuzz | browser) run_part "$part" ;;
    --browser) run_part browser ;; # the old flag
    *) echo "setup: unknown part '$part' (wasm, npm, deny, fuzz, browser)" >&2; exit 2 ;;
  esac
done
