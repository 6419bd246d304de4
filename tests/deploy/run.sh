#!/usr/bin/env bash
# Deployment artifacts are accepted by a real kube-apiserver: `helm lint`, `helm template`
# with the chart's options, and `kubectl apply --dry-run=server` of both the chart's output
# and the plain manifests in deploy/manifests.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
chart="$repo/deploy/helm/openstack-lb-controller"
helm=$("$repo/scripts/build-helm.sh" | tail -n 1)
work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-deploy.XXXXXX")
cleanup() { "$repo/hack/control-plane.sh" stop --dir "$work/cp" >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$helm" lint "$chart"
# Every optional part rendered at least once, client-side.
"$helm" template olbc "$chart" --namespace kube-system \
  --set metrics.serviceMonitor.enabled=true --set loadBalancerClass=openstack \
  --set 'extraArgs={--gc-orphans=false}' --set cloudConfig.content='[Global]' >"$work/full.yaml"
grep -q 'kind: ServiceMonitor' "$work/full.yaml"
grep -q -- '--load-balancer-class=openstack' "$work/full.yaml"
# No ServiceMonitor CRD on a bare apiserver: the server-side check renders without it.
"$helm" template olbc "$chart" --namespace kube-system >"$work/chart.yaml"

"$repo/hack/control-plane.sh" start --dir "$work/cp" >/dev/null
export KUBECONFIG="$work/cp/kubeconfig"
kubectl apply --dry-run=server -f "$work/chart.yaml"
kubectl apply --dry-run=server -f "$repo/deploy/manifests/"
echo "deploy artifacts accepted by kube-apiserver"
