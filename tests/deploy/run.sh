#!/usr/bin/env bash
# The chart and the plain manifests as an operator meets them: `helm lint --strict`, every
# override rendered and asserted on (check_chart.py), unknown values keys rejected, and the
# output accepted by a real kube-apiserver (server-side dry run; two releases of one name in
# two namespaces applied for real, side by side).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
chart="$repo/deploy/helm/openstack-lb-controller"
helm=$("$repo/scripts/build-helm.sh" | tail -n 1)
python3 -c 'import yaml' 2>/dev/null || { echo "python3-yaml is required (apt-get install python3-yaml)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-deploy.XXXXXX")
cleanup() {
  "$repo/hack/control-plane.sh" stop --dir "$work/cp" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --namespace lb-system \
  --set cloudConfig.hostPath=/etc/kubernetes/cloud-config-occm --set caBundle.hostPath=/etc/kubernetes/ca-bundle.crt \
  --set podDisruptionBudget.enabled=true --set metrics.serviceMonitor.enabled=true --set fullnameOverride=lbc
printf 'replicas: 2\nreplcias: 3\n' >"$work/typo.yaml"
if "$helm" lint --strict "$chart" -f "$work/typo.yaml" >"$work/typo.log" 2>&1; then
  echo "helm lint accepted an unknown key (replcias)" >&2; exit 1
fi
grep -F 'replcias' "$work/typo.log" >/dev/null || { cat "$work/typo.log" >&2; exit 1; }
echo "helm lint --strict: chart ok; a values file with an unknown key is rejected"

python3 "$repo/tests/deploy/check_chart.py" "$helm" "$chart" "$work"

"$repo/hack/control-plane.sh" start --dir "$work/cp" >/dev/null
export KUBECONFIG="$work/cp/kubeconfig"
kubectl create namespace lb-system >/dev/null
# No ServiceMonitor CRD on a bare apiserver: every other rendering goes to the server.
for f in default edge operator magnum inline; do
  kubectl apply --dry-run=server -f "$work/$f.yaml" >/dev/null
  echo "server-side dry run: $f accepted"
done
kubectl apply --dry-run=server -f "$repo/deploy/manifests/" >/dev/null
echo "server-side dry run: deploy/manifests accepted"

# One release name in two namespaces, applied for real: nothing collides.
for ns in team-a team-b; do
  kubectl create namespace "$ns" >/dev/null
  "$helm" template twin "$chart" --namespace "$ns" | kubectl apply -f - >/dev/null
done
kubectl get clusterrole twin-openstack-lb-controller-team-a twin-openstack-lb-controller-team-b -o name
kubectl get clusterrolebinding twin-openstack-lb-controller-team-a -o jsonpath='{.subjects[0].namespace}{"\n"}' | grep -x team-a >/dev/null
kubectl get clusterrolebinding twin-openstack-lb-controller-team-b -o jsonpath='{.subjects[0].namespace}{"\n"}' | grep -x team-b >/dev/null
echo "deploy artifacts accepted by kube-apiserver"
