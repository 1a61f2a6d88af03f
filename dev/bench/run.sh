#!/usr/bin/env bash
# The benchmark command (see BENCHMARKS.md): builds every function and the
# bench tool in release, then measures. `--smoke` for a quick run. The
# Django comparison installs dev/bench/requirements.txt into target/bench-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x dev/node_modules/.bin/dynalite ]; then
  npm ci --prefix dev --no-audit --no-fund --loglevel=error
fi
packages=()
for dir in functions/*/; do packages+=(-p "$(basename "$dir")"); done
cargo build --release "${packages[@]}"
cargo build --release -p warm-transfer-dev --bin warm-transfer-bench --bin warm-transfer-local
exec target/release/warm-transfer-bench "$@"
