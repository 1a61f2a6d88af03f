#!/usr/bin/env bash
# The project's test command (see README): formatting, lints, then every test
# of the workspace. dynalite (npm) is installed into dev/node_modules on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x dev/node_modules/.bin/dynalite ]; then
  npm ci --prefix dev --no-audit --no-fund --loglevel=error
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# nextest runs every test binary in one pass and ends with one summary line.
exec cargo nextest run --workspace --no-fail-fast --hide-progress-bar
