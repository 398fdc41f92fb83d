#!/usr/bin/env bash
# The main job end to end: set up, train NTSNet (cpu preset) on MVTec AD bottle, evaluate, print the metrics table.
# Usage: bash scripts/demo.sh [DATA_DIR] [OUT_DIR] [extra 'ntsnet fit' options...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${1:-../shared/data/mvtec_ad/bottle}"
out="${2:-runs/bottle-cpu}"
shift $(( $# > 2 ? 2 : $# )) || true
if [ ! -d "$data" ]; then
  echo "demo: dataset folder $data not found. Pass an MVTec AD category folder: bash scripts/demo.sh PATH/TO/bottle" >&2
  exit 1
fi
bash scripts/setup.sh
# --teacher auto: the ImageNet ResNet18 weights (--teacher-weights, cache, or download) when available, else a
# random teacher with a loud warning, so the demo also runs offline. Pass --teacher imagenet to require them.
node dist/src/cli/main.js fit --data "$data" --out "$out" --preset cpu --teacher auto --test "$@"
