#!/usr/bin/env bash
# The benchmark command (see BENCHMARKS.md). The bench tool builds every
# function and the development server in release before measuring (and runs
# `npm ci --prefix dev` for dynalite if needed); `--smoke` for a quick run.
# The Django comparison installs dev/bench/requirements.txt into target/bench-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo run --release -p warm-transfer-dev --bin warm-transfer-bench -- "$@"
