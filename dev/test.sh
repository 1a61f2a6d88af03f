#!/usr/bin/env bash
# The project's test command (see README): formatting, lints, then every test
# of the workspace, including the end-to-end scenarios and the browser tests.
# What a fresh machine lacks is installed on first use: dynalite and
# playwright-core (npm, into dev/node_modules), moto_server (pip, in a virtualenv), cargo-nextest,
# Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x dev/node_modules/.bin/dynalite ] || [ ! -d dev/node_modules/playwright-core ]; then
  npm ci --prefix dev --no-audit --no-fund --loglevel=error
fi
# moto_server: a real Secrets Manager API on loopback for the secret loader's
# tests and the bench; in its own virtualenv, so its dependencies never move
# the SAM CLI's.
if [ -z "${MOTO_SERVER:-}" ] && ! command -v moto_server >/dev/null 2>&1; then
  # Outside the checkout, like pip's own cache: another clone reuses it.
  moto_venv="${XDG_CACHE_HOME:-$HOME/.cache}/warm-transfer/moto-5"
  if [ ! -x "$moto_venv/bin/moto_server" ]; then
    mkdir -p "$(dirname "$moto_venv")"
    python3 -m venv "$moto_venv"
    "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
  fi
  export MOTO_SERVER="$moto_venv/bin/moto_server"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# nextest runs every test binary in one pass and ends with one summary line.
exec cargo nextest run --cargo-quiet --config-file dev/nextest.toml --workspace --no-fail-fast --hide-progress-bar
