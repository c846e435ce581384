#!/usr/bin/env bash
# Runs the web console's end-to-end test: the real controller (built beforehand with
# `cargo build -p languard-controller`, or LANGUARD_CONTROLLER_BIN) in headless Chromium, all on
# 127.0.0.1. Installs what it needs: Debian's chromium if missing, the locked npm packages.
# The test itself is bounded to 210 s (and killed at 230 s).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! cmp -s package-lock.json node_modules/.languard-lock 2>/dev/null; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.languard-lock
fi
bin=${LANGUARD_CONTROLLER_BIN:-../../target/debug/languard-controller}
if [ ! -x "$bin" ]; then
  echo "no controller binary at $bin: run 'cargo build -p languard-controller' first" >&2
  exit 1
fi
exec timeout -k 10 230 node --test-reporter=spec e2e/console.test.mjs
