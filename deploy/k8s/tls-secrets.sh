#!/usr/bin/env bash
# The mutual-TLS Secrets the manifests mount at /etc/veilgrid/tls (--tls-dir), made
# with the `veilgrid` binary's own CA commands (rcgen; no openssl needed):
#
#   bash deploy/k8s/tls-secrets.sh [--namespace NS] [--dir DIR] [--router-san NAME]...
#                                  [--parties "0 1 2"]
#   kubectl apply -f DIR/secrets.yaml
#
#   --namespace    the namespace the overlay deploys to (veilgrid; the local overlay
#                  uses veilgrid-local). The router's certificate names its Service in
#                  it, since providers dial https://veilgrid-router:7700.
#   --dir          where the CA and certificates are kept (default veilgrid-k8s-tls).
#                  ca.key stays here and never goes into a Secret: keep the directory
#                  offline, it is what issues every identity of the grid.
#   --router-san   extra DNS names or addresses of the router (an ingress host),
#                  repeatable.
#   --parties      which matching parties' certificates go into veilgrid-tls-matcher
#                  (default all three: the single-operator StatefulSet). An operator
#                  running one party passes only its own index.
#
# One Secret per service, keys named as files (ca.pem, <name>.pem, <name>.key):
#   veilgrid-tls-router      router          veilgrid-tls-aggregator  aggregator
#   veilgrid-tls-prover      prover          veilgrid-tls-committee   agg-member
#   veilgrid-tls-fhe         fhe             veilgrid-tls-matcher     matcher-<i>
# plus a client certificate `cli` in DIR for operators (`veilgrid providers --router
# https://127.0.0.1:7700 --tls-dir DIR` through `kubectl port-forward`).
#
# Existing certificates in DIR are kept, so re-running only adds what is missing;
# delete a pair (<name>.pem, <name>.key) to issue it again. VEILGRID names the binary
# (default: `veilgrid` on PATH).
set -euo pipefail

ns=veilgrid
dir=veilgrid-k8s-tls
parties="0 1 2"
router_sans=()
bin="${VEILGRID:-veilgrid}"

while [ $# -gt 0 ]; do
    case "$1" in
        --namespace) ns="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --router-san) router_sans+=(--san "$2"); shift 2 ;;
        --parties) parties="$2"; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "tls-secrets: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for p in $parties; do
    case "$p" in 0|1|2) ;; *) echo "tls-secrets: --parties takes 0, 1 and 2, not $p" >&2; exit 2 ;; esac
done
case "$ns" in
    ''|*[!a-z0-9-]*) echo "tls-secrets: --namespace $ns is not a Kubernetes namespace name" >&2; exit 2 ;;
esac

mkdir -p "$dir"
[ -f "$dir/ca.pem" ] || "$bin" ca init --dir "$dir" >/dev/null
issue() { # issue KIND NAME [--san S]...
    local kind="$1" name="$2"; shift 2
    if [ ! -f "$dir/$name.pem" ] || [ ! -f "$dir/$name.key" ]; then
        "$bin" ca issue --dir "$dir" "--$kind" "$name" "$@" >/dev/null
    fi
}
issue service router \
    --san veilgrid-router --san "veilgrid-router.$ns" --san "veilgrid-router.$ns.svc" \
    --san "veilgrid-router.$ns.svc.cluster.local" ${router_sans[@]+"${router_sans[@]}"}
for s in prover fhe aggregator agg-member; do issue service "$s"; done
for p in $parties; do issue service "matcher-$p"; done
issue client cli

b64() { base64 < "$1" | tr -d '\n'; }
secret() { # secret NAME CERT...
    local name="$1"; shift
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$name" "$ns"
    printf '  labels:\n    app.kubernetes.io/part-of: veilgrid\ntype: Opaque\ndata:\n'
    printf '  ca.pem: %s\n' "$(b64 "$dir/ca.pem")"
    for c in "$@"; do
        printf '  %s.pem: %s\n' "$c" "$(b64 "$dir/$c.pem")"
        printf '  %s.key: %s\n' "$c" "$(b64 "$dir/$c.key")"
    done
}
matchers=()
for p in $parties; do matchers+=("matcher-$p"); done
out="$dir/secrets.yaml"
(
    umask 077
    {
        echo "# Made by deploy/k8s/tls-secrets.sh for namespace $ns. Holds private keys."
        secret veilgrid-tls-router router
        secret veilgrid-tls-prover prover
        secret veilgrid-tls-fhe fhe
        secret veilgrid-tls-aggregator aggregator
        secret veilgrid-tls-committee agg-member
        secret veilgrid-tls-matcher "${matchers[@]}"
    } > "$out"
)
echo "wrote $out (namespace $ns); apply it with: kubectl apply -f $out"
