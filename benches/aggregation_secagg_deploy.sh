#!/usr/bin/env bash
# Flower SecAgg+ on its deployment runtime over loopback: one SuperLink, N SuperNode processes
# (each runs its ClientApp in a subprocess), `flwr run` of benches/aggregation_secagg_app.
#
#   benches/aggregation_secagg_deploy.sh VENV N L OUTDIR
#
# Writes OUTDIR/flower-deploy-N-L.{jsonl,json,log}. Called by benches/aggregation_secagg.sh.
set -euo pipefail
VENV=$1 N=$2 L=$3 OUT=$4
APP=$(cd "$(dirname "$0")" && pwd)/aggregation_secagg_app
# A fresh port range per call (the previous run's SuperLink may still hold its port).
BASE=${FLWR_BASE_PORT:-$((19000 + ($$ % 40) * 1000))}
WORK=$(mktemp -d)
export FLWR_HOME=$WORK/flwr-home
export PATH="$VENV/bin:$PATH"
LOG=$OUT/flower-deploy-$N-$L.log
JSONL=$OUT/flower-deploy-$N-$L.jsonl
SUMMARY=$OUT/flower-deploy-$N-$L.json
TIMEOUT=${FLWR_TIMEOUT:-3600}
rm -f "$JSONL" "$SUMMARY"
pids=()
cleanup() {
    # The SuperNode loops first (so they do not start new SuperNodes), then what they started.
    for p in "${pids[@]}"; do
        kids=$(pgrep -P "$p" || true)
        kill "$p" 2>/dev/null || true
        for k in $kids; do
            kill "$k" 2>/dev/null || true
        done
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Flower 1.41's SuperLink serves its Fleet, Control and Runtime APIs on one HTTP port; its state
# stays in memory (a state file gave "database is locked" errors under load).
"$VENV/bin/flower-superlink" --insecure --port "$BASE" >"$LOG" 2>&1 &
pids+=($!)
for _ in $(seq 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$BASE") 2>/dev/null; then break; fi
    sleep 1
done
# SuperNodes start a few at a time; one whose first connection times out on the loaded machine
# (exit code 305) is started again.
for i in $(seq 1 "$N"); do
    (
        while true; do
            "$VENV/bin/flower-supernode" --insecure --superlink 127.0.0.1:$BASE \
                --port $((BASE + 100 + i)) >>"$WORK/supernodes.log" 2>&1 || true
            sleep 2
        done
    ) &
    pids+=($!)
    if [ $((i % 5)) = 0 ]; then sleep 3; fi
done
# Federation pointing at this SuperLink's control API.
cp -r "$APP" "$WORK/app"
sed -i "s/^address = .*/address = \"127.0.0.1:$BASE\"/" "$WORK/app/pyproject.toml"
sleep $((5 + N / 10))
start=$(date +%s)
for try in 1 2 3; do
    if "$VENV/bin/flwr" run "$WORK/app" loopback --run-config \
        "clients=$N length=$L log=\"$JSONL\" out=\"$SUMMARY\"" >>"$LOG" 2>&1; then
        break
    fi
    echo "flwr run failed (try $try)" >>"$LOG"
    sleep 10
done
while [ ! -s "$SUMMARY" ]; do
    if [ $(($(date +%s) - start)) -gt "$TIMEOUT" ]; then
        echo "flower deployment run N=$N L=$L: no result after ${TIMEOUT}s" >&2
        tail -20 "$WORK/supernodes.log" >&2 || true
        exit 1
    fi
    sleep 2
done
echo "flower deployment N=$N L=$L: $(cat "$SUMMARY")"
