#!/usr/bin/env bash
# Make @tensorflow/tfjs-node's native binding work on this machine.
#
# Order of attempts (first that works wins):
#   1. the binding is already there and loads            -> nothing to do
#   2. a build cached earlier by this script              -> copy it in
#   3. tfjs-node's own online install (downloads libtensorflow from storage.googleapis.com)
#   4. build from source against the libtensorflow shipped in TensorFlow's PyPI wheel
#      (see shared/notes/tfjs-node-offline.md); the result is cached for next time.
# Exits non-zero with an explanation if none works.
#
# Environment:
#   NTSNET_CACHE            cache root (default ~/.cache/ntsnet)
#   NTSNET_TF_WHEEL_VERSION tensorflow-cpu wheel version to build against (default 2.21.0)
#   NTSNET_SKIP_ONLINE=1    skip attempt 3 (saves its time-out when offline)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/node_modules/@tensorflow/tfjs-node"
tf_version="${NTSNET_TF_WHEEL_VERSION:-2.21.0}"
cache_root="${NTSNET_CACHE:-$HOME/.cache/ntsnet}"
say() { echo "[setup-tfjs-node] $*" >&2; }

if [ ! -d "$pkg" ]; then
  say "node_modules/@tensorflow/tfjs-node is missing: run 'npm ci --ignore-scripts' (or 'npm install') first."
  exit 1
fi
tfjs_version="$(node -p "require('$pkg/package.json').version")"
key="tfjs-node-${tfjs_version}-tf${tf_version}-node$(node -p process.versions.modules)-$(uname -m)"
cache="$cache_root/$key"

loads() { (cd "$root" && node -e "require('@tensorflow/tfjs-node')" >/dev/null 2>&1); }

if loads; then say "tfjs-node binding loads: nothing to do."; exit 0; fi

if [ -f "$cache/lib/napi-v8/tfjs_binding.node" ]; then
  say "using cached build $cache"
  rm -rf "$pkg/deps" "$pkg/lib"
  cp -a "$cache/deps" "$cache/lib" "$pkg/"
  if loads; then exit 0; fi
  say "cached build does not load; rebuilding"
fi

if [ "${NTSNET_SKIP_ONLINE:-0}" != "1" ]; then
  say "trying tfjs-node's own online install (timeout 180 s)"
  if (cd "$pkg" && timeout 180 node scripts/install.js >/tmp/ntsnet-tfjs-online.log 2>&1) && loads; then
    say "online install worked"; exit 0
  fi
  say "online install failed (log: /tmp/ntsnet-tfjs-online.log); building from the PyPI wheel"
fi

for tool in python3 g++ make; do
  command -v "$tool" >/dev/null || { say "'$tool' is needed to build the binding from source: install it (Debian: apt-get install python3 g++ make)"; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say "downloading tensorflow-cpu==$tf_version wheel from PyPI (about 270 MB)"
if ! python3 -m pip download -q --no-deps --only-binary=:all: "tensorflow-cpu==$tf_version" -d "$work/wheel" >&2; then
  say "could not download tensorflow-cpu==$tf_version from PyPI. Fix: give this machine access to PyPI or
  to storage.googleapis.com, or put a libtensorflow build in $cache (see docs/INSTALL.md)."
  exit 1
fi
whl="$(ls "$work"/wheel/*.whl)"
(cd "$work" && python3 - "$whl" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if n.startswith('tensorflow/include/') or n in ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'):
        z.extract(n, 'x')
PY
)
rm -rf "$pkg/deps"
mkdir -p "$pkg/deps/lib"
cp -a "$work/x/tensorflow/include" "$pkg/deps/include"
cp "$work/x/tensorflow/libtensorflow_cc.so.2" "$work/x/tensorflow/libtensorflow_framework.so.2" "$pkg/deps/lib/"
ln -sf libtensorflow_cc.so.2 "$pkg/deps/lib/libtensorflow.so.2"
ln -sf libtensorflow_cc.so.2 "$pkg/deps/lib/libtensorflow.so"
ln -sf libtensorflow_framework.so.2 "$pkg/deps/lib/libtensorflow_framework.so"
say "building the binding (about 2 minutes on 2 cores)"
nodedir="$(dirname "$(dirname "$(command -v node)")")"
(cd "$pkg" && JOBS=2 "$root/node_modules/.bin/node-pre-gyp" rebuild --build-from-source --napi_build_version=8 --nodedir="$nodedir" >"$work/build.log" 2>&1) || {
  tail -30 "$work/build.log" >&2; say "build failed (output above)"; exit 1; }
# The headers are only needed for the build: keep the installed package and the cache small.
rm -rf "$pkg/deps/include" "$pkg/build"
if ! loads; then say "built binding does not load"; (cd "$root" && node -e "require('@tensorflow/tfjs-node')") || true; exit 1; fi
mkdir -p "$cache_root"
tmp="$(mktemp -d "$cache_root/.tmp.XXXXXX")"
cp -a "$pkg/deps" "$pkg/lib" "$tmp/"
rm -rf "$cache"; mv "$tmp" "$cache"
say "built and cached in $cache"
