#!/usr/bin/env bash
# Builds the web console into dist/ (committed, so `cargo build` of the controller needs no Node):
# installs the locked npm packages if needed, regenerates the TypeScript API from ../../proto,
# type-checks, bundles with esbuild and gzips the bundle. Same inputs, same bytes.
set -euo pipefail
cd "$(dirname "$0")"

if ! cmp -s package-lock.json node_modules/.languard-lock 2>/dev/null; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.languard-lock
fi
npx buf generate
npx tsc -p .
rm -rf dist
mkdir dist
npx esbuild src/main.ts --bundle --minify --format=esm --target=es2022 \
  --legal-comments=none --charset=utf8 --log-level=warning --outfile=dist/app.js
cp src/index.html dist/index.html
# Pre-compressed copies, sent to browsers that accept gzip (-n: no name or time, so reproducible).
gzip -9 -n -k dist/app.js dist/app.css
ls -l dist
