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
# The ImageNet teacher: --teacher-weights (among the extra options), else $NTSNET_TEACHER_WEIGHTS, else this project's
# shared trunk when it is there, else ntsnet's own order (cache folder, then torchvision's download). Never a random
# teacher: without weights, fit stops and says where to put which file.
shared="../shared/weights/resnet18-imagenet-trunk.safetensors"
if [ -z "${NTSNET_TEACHER_WEIGHTS:-}" ] && [ -f "$shared" ]; then export NTSNET_TEACHER_WEIGHTS="$shared"; fi
start=$(date +%s)
node dist/src/cli/main.js fit --data "$data" --out "$out" --preset cpu --teacher imagenet --test "$@"
echo "demo: fit + test wall time $(( $(date +%s) - start )) s"
