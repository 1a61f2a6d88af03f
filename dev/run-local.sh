#!/usr/bin/env bash
# Runs the product locally with no AWS or Twilio account: dynalite (local
# DynamoDB), the Twilio simulator and the development server on 127.0.0.1.
# It first drives one complete warm transfer and prints its timeline, then
# keeps serving the agent console until Ctrl-C. `--no-serve` stops after the demo.
# `--twilio --public-url URL --agent NUMBER --customer NUMBER` runs the same
# stack against your own Twilio account instead (docs/try-with-twilio.md).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x dev/node_modules/.bin/dynalite ]; then
  npm ci --prefix dev --no-audit --no-fund --loglevel=error
fi
exec cargo run --quiet -p warm-transfer-dev --bin warm-transfer-local -- "$@"
