#!/usr/bin/env bash
# Side by side, in one run: our one-shot aggregation and Flower's SecAgg+ at the same N and L.
#
#   benches/aggregation_secagg.sh                 # N = 1000, L in {10^3, 10^4, 10^5}
#   N=1000 FLWR_N=100 LENGTHS="1000 10000" benches/aggregation_secagg.sh
#
# Ours: the criterion bench `aggregation` of crypto/aggregation (release profile; client,
# member and server time, bytes per message, plaintext-sum floor) plus the per-step CPU times of
# its `timing` example (thread CPU time, not inflated by other processes).
# Flower: flwr==1.41.0 (with its `simulation` extra, which brings Ray) in a venv under
# ~/.cache/veilgrid-bench, SecAggPlusWorkflow + secaggplus_mod, driven by
# benches/aggregation_secagg.py through Flower's Simulation Runtime on this machine. FLWR_N sets
# Flower's client count when N clients take too long there (the table says which N it ran).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}
FLWR_N=${FLWR_N:-$N}
LENGTHS=${LENGTHS:-"1000 10000 100000"}
BENCH_DIR=${VG_BENCH_DIR:-$HOME/.cache/veilgrid-bench}
VENV=$BENCH_DIR/flwr-venv
OUT=$BENCH_DIR/aggregation-$(date +%Y%m%d-%H%M%S)
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"

if ! "$VENV/bin/python" -c 'import flwr, ray, sys; sys.exit(flwr.__version__ != "1.41.0")' 2>/dev/null; then
    echo "== installing flwr[simulation]==1.41.0 into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "flwr[simulation]==1.41.0"
fi

echo "== ours: criterion (release), N = $N fixed in the bench, L in $LENGTHS"
VG_AGG_BENCH_LENGTHS=$(echo "$LENGTHS" | tr ' ' ,) \
    cargo bench -p veilgrid-aggregation --bench aggregation 2>&1 | tee "$OUT/ours-criterion.txt"
echo "== ours: per-step CPU time"
for L in $LENGTHS; do
    echo "L=$L" >> "$OUT/ours-timing.txt"
    cargo run --release -q -p veilgrid-aggregation --example timing -- "$L" "$N" | tee -a "$OUT/ours-timing.txt"
done

echo "== Flower SecAgg+: N = $FLWR_N"
for L in $LENGTHS; do
    rm -f "$OUT/flower-$L.log"
    "$VENV/bin/python" benches/aggregation_secagg.py --clients "$FLWR_N" --length "$L" \
        --log "$OUT/flower-$L.log" --out "$OUT/flower-$L.json" > "$OUT/flower-$L.out" 2>&1
done

python3 - "$OUT" "$TARGET" "$N" "$FLWR_N" $LENGTHS <<'PY'
import json, re, sys, collections
out, target, n, fn, lengths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
crit = open(f"{out}/ours-criterion.txt").read()

def est(group, name):
    try:
        e = json.load(open(f"{target}/criterion/{group}/{name}/new/estimates.json"))
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

member_ms = est(f"agg_L{lengths[0]}", "member_sum_N1000")
open_ms = est(f"agg_L{lengths[0]}", "member_open_and_sum_N1000")
print(f"\nN = {n} (ours), {fn} (Flower); ours: m = 5, t = 2, 16-bit entries; Flower: num_shares = 5, reconstruction_threshold = 3, float32 entries")
print("| L | system | client compute | member compute | server compute | client upload bytes | client download bytes | member bytes | rounds (client) | plaintext-sum floor |")
print("|---|---|---|---|---|---|---|---|---|---|")
for L in lengths:
    m = re.search(rf"bytes L={L}: client message (\d+) .* member message (\d+)", crit)
    cb, mb = (m.group(1), m.group(2)) if m else ("?", "?")
    g = f"agg_L{L}"
    c = tcpu.get(L, {})
    print(f"| {L} | ours (thread CPU) | {c.get('client mask', '?')} | {c.get(f'member respond for {n}', '?')} answer, {c.get('member accept_share', '?')} per share opened | {c.get('server: accept_bytes (decode+add) one', '?')} per message + {c.get('server: finish (reconstruct, expand, decode)', '?')} finish | | | | | |")
    print(f"| {L} | ours (criterion wall, median) | {est(g, 'client'):.2f} ms | {member_ms:.2f} ms answer ({open_ms:.0f} ms incl. opening {n} shares) | {est(g, 'server_N1000'):.1f} ms | {cb} | 0 (+ round description) | {mb} up, declared set down | 1 | {est(g, 'plaintext_sum_N1000'):.2f} ms |")
    st = collections.defaultdict(list)
    try:
        for line in open(f"{out}/flower-{L}.log"):
            r = json.loads(line)
            st[r["stage"]].append(r)
        summ = json.load(open(f"{out}/flower-{L}.json"))
    except OSError:
        print(f"| {L} | Flower SecAgg+ | (did not finish) | | | | | | | |")
        continue
    k = max(len(v) for v in st.values())
    cpu = sum(r["cpu"] for v in st.values() for r in v) / k * 1000
    up = sum(r["out"] for v in st.values() for r in v) / k
    down = sum(r["in"] for v in st.values() for r in v) / k
    per = ", ".join(f"{s} {sum(r['out'] for r in v)/len(v):.0f}" for s, v in st.items())
    print(f"| {L} | Flower SecAgg+ (N = {fn}) | {cpu:.2f} ms CPU | — (clients share keys with neighbours) | {summ['server_thread_cpu_s']*1000:.1f} ms CPU (server thread); round {summ['round_wall_s']:.1f} s wall | {up:.0f} ({per}) | {down:.0f} | — | {len(st)} | |")
PY
echo "(raw outputs in $OUT)"
