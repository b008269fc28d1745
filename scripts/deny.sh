#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, banned/duplicate/wildcard crates, sources.
#
#   bash scripts/deny.sh
#
# Runs `cargo deny check bans licenses sources`. The `advisories` check is left out on
# purpose: its database is cloned from GitHub, which this project's machines cannot reach.
# Installs cargo-deny the first time (scripts/setup.sh deny, a few minutes); afterwards the
# check takes well under a second and needs no network (it reads Cargo.lock and the local
# registry cache via `cargo metadata`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh deny

echo "== cargo deny check bans licenses sources ($(cargo deny --version))"
cargo deny --log-level warn check --hide-inclusion-graph bans licenses sources
