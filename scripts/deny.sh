#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, banned/duplicate/wildcard crates, sources.
#
#   bash scripts/deny.sh
#
# Runs `cargo deny check bans licenses sources`. The `advisories` check is left out on
# purpose: its database is cloned from GitHub, which this project's machines cannot reach.
# Installs cargo-deny from crates.io the first time (several minutes); afterwards the
# check takes well under a second and needs no network (it reads Cargo.lock and the local
# registry cache via `cargo metadata`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo deny --version >/dev/null 2>&1; then
  echo "== installing cargo-deny from crates.io (a few minutes, once)"
  # --locked uses cargo-deny's own lockfile; if that fails to build here, retry without it.
  cargo install cargo-deny --locked || cargo install cargo-deny
fi

echo "== cargo deny check bans licenses sources ($(cargo deny --version))"
cargo deny --log-level warn check --hide-inclusion-graph bans licenses sources
