#!/usr/bin/env bash
# Creates the benchmark-only Python environment with anomalib (the peer tool of `ntsnet benchmark`).
# Never a dependency of ntsnet itself: only the benchmark's peer runner uses it.
# Usage: bash benchmarks/peers/setup-anomalib.sh [VENV_DIR]   (default: $NTSNET_BENCH_VENV or .bench/venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${NTSNET_BENCH_VENV:-$here/../../.bench/venv}}"
python="${PYTHON:-python3}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import anomalib, torch, sklearn, skimage, openvino, onnxscript' 2>/dev/null; then
  echo "anomalib environment ready: $venv"; exit 0
fi
echo "creating the benchmark-only environment in $venv (anomalib, PyTorch; several GB) ..."
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
"$venv/bin/python" -c 'import anomalib, torch; print("anomalib", anomalib.__version__, "torch", torch.__version__)'
