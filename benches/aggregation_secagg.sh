#!/usr/bin/env bash
# Side by side, in one run: our one-shot aggregation and Flower's SecAgg+ at the same L.
#
#   benches/aggregation_secagg.sh                 # N = 1000, L in {10^3, 10^4, 10^5}
#   FLWR_DEPLOY_N=20 FLWR_SIM_N=100 LENGTHS="1000 10000" benches/aggregation_secagg.sh
#
# Ours: the criterion bench `benches/aggregation.rs` (client, member, server time, bytes per
# message, plaintext-sum floor; N = 1000), built with the dev profile at opt-level 3
# (`CARGO_PROFILE_DEV_OPT_LEVEL=3`; dependencies are at opt-level 3 in the dev profile anyway)
# unless VG_RELEASE=1 (then `cargo bench`, a release build of every dependency), plus the
# per-step CPU times of crypto/aggregation's `timing` example (thread CPU time, not inflated by
# other processes on the machine).
#
# Flower: flwr[simulation]==1.41.0 in a venv under ~/.cache/veilgrid-bench, SecAggPlusWorkflow +
# secaggplus_mod (num_shares = 5, reconstruction_threshold = 3), two ways:
#  * deployment runtime on loopback (benches/aggregation_secagg_deploy.sh): one SuperLink and
#    FLWR_DEPLOY_N SuperNode processes (default 50: each SuperNode is a Python process that
#    starts a ClientApp subprocess per message, so N = 1000 of them do not fit this 2-core
#    machine), talking HTTP over 127.0.0.1;
#  * Simulation Runtime (Ray) at FLWR_SIM_N clients (default N = 1000), the same app in one
#    process tree (benches/aggregation_secagg.py), for the N of the issue.
# Set FLWR_DEPLOY_N=0 or FLWR_SIM_N=0 to skip one.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}
FLWR_SIM_N=${FLWR_SIM_N:-$N}
FLWR_DEPLOY_N=${FLWR_DEPLOY_N:-50}
LENGTHS=${LENGTHS:-"1000 10000 100000"}
BENCH_DIR=${VG_BENCH_DIR:-$HOME/.cache/veilgrid-bench}
VENV=$BENCH_DIR/flwr-venv
OUT=$BENCH_DIR/aggregation-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
export CRITERION_HOME=$OUT/criterion
echo "== $(date -u +%FT%TZ) on $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/run.txt"

if ! "$VENV/bin/python" -c 'import flwr, ray, sys; sys.exit(flwr.__version__ != "1.41.0")' 2>/dev/null; then
    echo "== installing flwr[simulation]==1.41.0 into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "flwr[simulation]==1.41.0"
fi

LENGTHS_CSV=$(echo "$LENGTHS" | tr ' ' ,)
echo "== ours: benches/aggregation.rs, N = $N fixed in the bench, L in $LENGTHS"
if [ "${VG_RELEASE:-0}" = 1 ]; then
    VG_AGG_BENCH_LENGTHS=$LENGTHS_CSV cargo bench --bench aggregation 2>&1 | tee "$OUT/ours-criterion.txt"
    TIMING=(cargo run --release -q -p veilgrid-aggregation --example timing --)
else
    export CARGO_PROFILE_DEV_OPT_LEVEL=3
    # The bench file is built from services/aggregator (same file as the root package's
    # `aggregation` bench; the root package also links tfhe). VG_AGG_BENCH_PKG=veilgrid for the root.
    BIN=$(cargo test -p "${VG_AGG_BENCH_PKG:-veilgrid-aggregator}" --bench aggregation --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "aggregation" and m.get("executable"):
        print(m["executable"])')
    VG_AGG_BENCH_LENGTHS=$LENGTHS_CSV "$BIN" --bench 2>&1 | tee "$OUT/ours-criterion.txt"
    TIMING=(cargo run -q -p veilgrid-aggregation --example timing --)
fi
echo "== ours: per-step CPU time"
for L in $LENGTHS; do
    echo "L=$L" >> "$OUT/ours-timing.txt"
    "${TIMING[@]}" "$L" "$N" | tee -a "$OUT/ours-timing.txt"
done

echo "== $(date -u +%TZ) load $(cut -d' ' -f1-3 /proc/loadavg): Flower SecAgg+, deployment runtime on loopback, N = $FLWR_DEPLOY_N" | tee -a "$OUT/run.txt"
if [ "$FLWR_DEPLOY_N" -gt 0 ]; then
    for L in $LENGTHS; do
        benches/aggregation_secagg_deploy.sh "$VENV" "$FLWR_DEPLOY_N" "$L" "$OUT" || true
        echo "   $(date -u +%TZ) L=$L done, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run.txt"
    done
fi
echo "== $(date -u +%TZ) load $(cut -d' ' -f1-3 /proc/loadavg): Flower SecAgg+, Simulation Runtime, N = $FLWR_SIM_N" | tee -a "$OUT/run.txt"
if [ "$FLWR_SIM_N" -gt 0 ]; then
    for L in $LENGTHS; do
        rm -f "$OUT/flower-sim-$L.log"
        "$VENV/bin/python" benches/aggregation_secagg.py --clients "$FLWR_SIM_N" --length "$L" \
            --log "$OUT/flower-sim-$L.log" --out "$OUT/flower-sim-$L.json" > "$OUT/flower-sim-$L.out" 2>&1 || true
        echo "   $(date -u +%TZ) L=$L done, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run.txt"
    done
fi
echo "== $(date -u +%TZ) done, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run.txt"

python3 - "$OUT" "$N" "$FLWR_DEPLOY_N" "$FLWR_SIM_N" $LENGTHS <<'PY'
import json, re, sys, collections
out, n, dn, sn, lengths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
crit = open(f"{out}/ours-criterion.txt").read()

def est(group, name):
    try:
        e = json.load(open(f"{out}/criterion/{group}/{name}/new/estimates.json"))
        return e["median"]["point_estimate"] / 1e6
    except OSError:
        return float("nan")

# Thread CPU times from the `timing` example, by L.
tcpu = {}
cur = None
for line in open(f"{out}/ours-timing.txt"):
    if line.startswith("L="):
        cur = line.strip()[2:]
        tcpu[cur] = {}
    elif cur and " cpu " in line:
        name, rest = line.split(" cpu ", 1)
        tcpu[cur][name.strip()] = rest.split("wall")[0].strip()

open_ms = est(f"agg_L{lengths[0]}", "member_open_share")
m = re.search(r"member_answer_N1000: median (\S+)", crit)
answer = m.group(1) if m else "?"
print(f"\nours: N = {n}, m = 5, t = 2, 16-bit entries. Flower SecAgg+: num_shares = 5, reconstruction_threshold = 3, float32 entries; deployment runtime N = {dn}, simulation N = {sn}")
print("| L | system | client compute | member compute | server compute | client sends (B) | client receives (B) | member bytes | rounds (client) | plaintext-sum floor |")
print("|---|---|---|---|---|---|---|---|---|---|")
for L in lengths:
    m = re.search(rf"bytes L={L}: client message (\d+) .* member message (\d+)", crit)
    cb, mb = (m.group(1), m.group(2)) if m else ("?", "?")
    g = f"agg_L{L}"
    c = tcpu.get(L, {})
    print(f"| {L} | ours (thread CPU) | {c.get('client mask', '?')} | {c.get('member accept_share', '?')} per share opened during the round; {c.get(f'member respond for {n}', '?')} answer | {c.get('server: accept_bytes (decode+add) one', '?')} per message + {c.get('server: finish (reconstruct, expand, decode)', '?')} finish | | | | | |")
    print(f"| {L} | ours (criterion wall, median) | {est(g, 'client'):.2f} ms | {open_ms*1000:.0f} µs per share during the round; answer {answer} | {est(g, 'server_N1000'):.1f} ms | {cb} | round description (≈ 0.3 KB) | {mb} up, declared set down | 1 | {est(g, 'plaintext_sum_N1000'):.2f} ms |")
    for kind, fn, log, summary in [
        ("deployment, loopback", dn, f"{out}/flower-deploy-{dn}-{L}.jsonl", f"{out}/flower-deploy-{dn}-{L}.json"),
        ("simulation", sn, f"{out}/flower-sim-{L}.log", f"{out}/flower-sim-{L}.json"),
    ]:
        if fn == "0":
            continue
        st = collections.defaultdict(list)
        try:
            for line in open(log):
                r = json.loads(line)
                st[r["stage"]].append(r)
            summ = json.load(open(summary))
        except OSError:
            print(f"| {L} | Flower SecAgg+ {kind} (N = {fn}) | (did not finish) | | | | | | | |")
            continue
        k = max(len(v) for v in st.values())
        cpu = sum(r["cpu"] for v in st.values() for r in v) / k * 1000
        up = sum(r["out"] for v in st.values() for r in v) / k
        down = sum(r["in"] for v in st.values() for r in v) / k
        per = ", ".join(f"{s} {sum(r['out'] for r in v)/len(v):.0f}" for s, v in st.items())
        print(f"| {L} | Flower SecAgg+ {kind} (N = {fn}) | {cpu:.2f} ms CPU | — (clients share keys with neighbours) | {summ['server_thread_cpu_s']*1000:.1f} ms CPU (ServerApp thread); round {summ['round_wall_s']:.1f} s wall | {up:.0f} ({per}) | {down:.0f} | — | {len(st)} | |")
PY
echo "(raw outputs in $OUT)"
