#!/usr/bin/env bash
# One-time setup on a fresh machine: npm packages, the native TensorFlow binding, and the TypeScript build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v node >/dev/null || { echo "setup: Node.js >= 20 is required (https://nodejs.org)"; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || { echo "setup: Node.js >= 20 is required (found $(node --version))"; exit 1; }
if [ ! -d node_modules/@tensorflow/tfjs-node ] || [ ! -d node_modules/typescript ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Install scripts are skipped: tfjs-node's downloads libtensorflow, which scripts/setup-tfjs-node.sh handles
  # (online first, PyPI wheel build as fallback).
  npm ci --ignore-scripts --no-audit --no-fund
fi
bash scripts/setup-tfjs-node.sh
npx tsc -p tsconfig.json
chmod +x dist/src/cli/main.js
echo "setup: done. Run the CLI with: node dist/src/cli/main.js --help (or 'npm link' for an 'ntsnet' command)"
