#!/usr/bin/env bash
# CI: an independent verifier (snarkjs, Node) accepts a Groth16 proof exported by
# the auditor CLI. Starts a grid, proves a clearing through the router, fetches
# the audit directory, verifies it, exports the proof for snarkjs and runs
# `snarkjs groth16 verify` on it; then checks that snarkjs rejects a wrong
# public input. Needs node and npm (the npm registry, for `npm ci`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/veilgrid-target}"
export CARGO_TERM_COLOR=never VEILGRID_LOG=error
stamp() { echo "== snarkjs: $*"; }

stamp "npm ci (circuits/snarkjs-check, package-lock.json pinned)"
(cd circuits/snarkjs-check && npm ci --no-audit --no-fund --loglevel=error)
SNARKJS="node $PWD/circuits/snarkjs-check/node_modules/snarkjs/build/cli.cjs"

# The same build as `cargo test --workspace` (a no-op right after it in CI): a plain
# `cargo build --bin` resolves features without dev-dependencies and would rebuild
# tfhe-rs and arkworks (~7 minutes) just for this step.
stamp "cargo test --workspace --no-run (builds target/debug/veilgrid)"
cargo test --workspace --no-run --quiet
VEILGRID="$CARGO_TARGET_DIR/debug/veilgrid"

work=$(mktemp -d)
grid_pid=""
cleanup() {
  if [ -n "$grid_pid" ]; then kill "$grid_pid" 2>/dev/null || true; wait "$grid_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
router="https://127.0.0.1:$port"
# `veilgrid up` runs mutual TLS by default: its CA and the `cli` client certificate are
# made under the data directory, where the client commands below find them
export VEILGRID_DATA_DIR="$work/data"
stamp "veilgrid up on $router"
"$VEILGRID" up --listen "127.0.0.1:$port" >"$work/up.log" 2>&1 &
grid_pid=$!
for _ in $(seq 1 100); do
  if "$VEILGRID" providers --router "$router" --json 2>/dev/null | grep -q '"prover"'; then break; fi
  sleep 0.2
done

stamp "prove a clearing through the router"
"$VEILGRID" prover prove --router "$router" --key clearing-4x4 \
  --witness '{"orders":[{"side":"sell","limit":0,"qty":3},{"side":"buy","limit":2,"qty":2}]}'

stamp "audit fetch + verify"
"$VEILGRID" audit fetch --router "$router" --out "$work/audit"
"$VEILGRID" audit verify "$work/audit"

stamp "audit export --format snarkjs"
"$VEILGRID" audit export --format snarkjs --dir "$work/audit" --proof 000001 --out "$work/snarkjs"

stamp "snarkjs groth16 verify"
$SNARKJS groth16 verify "$work/snarkjs/verification_key.json" "$work/snarkjs/public.json" "$work/snarkjs/proof.json" | tee "$work/ok.txt"
grep -q "OK" "$work/ok.txt"

stamp "snarkjs rejects a wrong public input"
python3 - "$work/snarkjs/public.json" <<'PY'
import json, sys
p = sys.argv[1]
v = json.load(open(p))
v[2] = str(int(v[2]) + 1)
json.dump(v, open(p, "w"))
PY
if $SNARKJS groth16 verify "$work/snarkjs/verification_key.json" "$work/snarkjs/public.json" "$work/snarkjs/proof.json" >"$work/bad.txt" 2>&1 && grep -q "OK" "$work/bad.txt"; then
  echo "snarkjs accepted a wrong public input" >&2
  exit 1
fi
stamp "done"
