#!/usr/bin/env bash
# Deploy tier (docs/deploy.md): the chart's own pod, and the plain manifests' pod, run from the
# image scripts/image.sh builds, the way a kubelet would run them (tests/deploy-pod/kubelet.py
# says exactly what is emulated), against a local kube-apiserver and the sandbox cloud.
# For each of the two installs: a LoadBalancer Service gets its IP from the sandbox and answers
# HTTP through it; /healthz, /readyz and /metrics answer; two replicas elect one leader and
# SIGTERM of the leader (podman stop) hands the Lease to the other, which then serves Services.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck source=../../scripts/lib-containers.sh
. "$repo/scripts/lib-containers.sh"
bin=${OLBC_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/openstack-lb-controller}
[ -x "$bin" ] || { echo "no controller binary at $bin (cargo build -p openstack-lb-controller, or set OLBC_BIN)" >&2; exit 1; }
"$bin" sandbox --help >/dev/null 2>&1 || { echo "$bin has no sandbox subcommand (built without the dev-tools feature)" >&2; exit 1; }

t0=$SECONDS
image=$("$repo/scripts/image.sh" | tail -n 1)
echo "image: $image ($((SECONDS - t0)) s)"
helm=$("$repo/scripts/build-helm.sh" | tail -n 1)

work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-deploy-pod.XXXXXX")
chmod 755 "$work"
containers=()
pids=()
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    for c in "${containers[@]+"${containers[@]}"}"; do
      echo "---- last lines of container $c ----" >&2
      olbc_podman logs --tail 25 "$c" >&2 2>&1 || true
    done
    [ -f "$work/sandbox.log" ] && { echo "---- sandbox log ----" >&2; tail -n 15 "$work/sandbox.log" >&2; }
  fi
  for c in "${containers[@]+"${containers[@]}"}"; do olbc_podman rm -f -t 2 "$c" >/dev/null 2>&1 || true; done
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  "$repo/hack/control-plane.sh" stop --dir "$work/cp" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# GET with a 5 s bound; prints "<status> <body>" (status 000 when nothing answers).
http() {
  python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    print(r.status, r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(errors="replace"))
except Exception as e:
    print("000", e)
PY
}
# wait_for DESCRIPTION SECONDS COMMAND...: polls once a second, bounded.
wait_for() {
  local what=$1 limit=$2 i
  shift 2
  for ((i = 0; i < limit; i++)); do
    if "$@"; then return 0; fi
    sleep 1
  done
  echo "timed out after ${limit}s waiting for: $what" >&2
  return 1
}

# --- the local cluster and cloud
"$repo/hack/control-plane.sh" start --dir "$work/cp" >/dev/null
export KUBECONFIG="$work/cp/kubeconfig"
api_port=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' | sed -E 's#.*:([0-9]+)/?$#\1#')
node_net="127.$((30 + RANDOM % 60)).$((RANDOM % 250))"
fip_net="127.$((150 + RANDOM % 90)).$((RANDOM % 250))"
"$bin" sandbox --cloud-conf "$work/cloud.conf" --provisioning-delay 200ms \
  --floating-range "$fip_net.0/24" --node-range "$node_net.0/24" >"$work/sandbox.log" 2>&1 &
pids+=($!)
wait_for "the sandbox's cloud.conf" 60 test -s "$work/cloud.conf"
wait_for "the sandbox's admin URL" 30 grep -q 'Admin API' "$work/sandbox.log"
admin=$(sed -n 's/^# Admin API[^:]*: //p' "$work/sandbox.log" | head -n 1)
# Keystone by name, not by address: the static binary in the scratch image must resolve names
# (glibc's built-in files/dns lookup, /etc/nsswitch.conf, the /etc/hosts a runtime provides).
sed -E 's#^(auth-url *= *https?://)127\.0\.0\.1:#\1localhost:#' "$work/cloud.conf" >"$work/cloud-by-name.conf"
grep -q '^auth-url *= *http://localhost:' "$work/cloud-by-name.conf" || { echo "unexpected sandbox cloud.conf:" >&2; grep auth-url "$work/cloud.conf" >&2; exit 1; }
echo "cluster: kube-apiserver 127.0.0.1:$api_port; sandbox cloud, nodes $node_net.0/24, floating IPs $fip_net.0/24"

# Two Nodes as kubelets would register them, their ports in Neutron, and a "pod" answering on
# each node's NodePort (started once the Service has one).
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for i in 1 2; do
  node="tier-node-$i"; ip="$node_net.$((10 + i))"
  python3 -c 'import json,sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1]+"/nodes", json.dumps({"name":sys.argv[2],"ip_address":sys.argv[3]}).encode(), {"content-type":"application/json"}), timeout=10)' "$admin" "$node" "$ip"
  kubectl create -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: $node, labels: {kubernetes.io/hostname: $node}}
YAML
  kubectl patch node "$node" --subresource=status --type=merge -p "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$ip\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"tier node\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
done
kubectl create namespace apps >/dev/null

backend() { # ip port name
  python3 - "$@" <<'PY' &
import http.server, sys
ip, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {name}\n".encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((ip, port), H).serve_forever()
PY
  pids+=($!)
}

service() { # name -> creates the LoadBalancer Service and its backends, prints the nodePort
  local name=$1 np i
  kubectl -n apps create -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: $name}
spec:
  type: LoadBalancer
  selector: {app: $name}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
  np=$(kubectl -n apps get svc "$name" -o jsonpath='{.spec.ports[0].nodePort}')
  for i in 1 2; do backend "$node_net.$((10 + i))" "$np" "$name on tier-node-$i"; done
}
ingress_ip() { kubectl -n apps get svc "$1" -o jsonpath='{.status.loadBalancer.ingress[0].ip}'; }
has_ip() { [ -n "$(ingress_ip "$1")" ]; }
answers() { http "http://$1/" | grep '^200 hello from' >/dev/null; }
gone() { ! kubectl -n apps get svc "$1" >/dev/null 2>&1; }
lease_holder() { kubectl -n "$1" get lease "$2" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
holder_is() { [ "$(lease_holder "$1" "$2")" = "$3" ]; }
holder_is_one_of() { local h; h=$(lease_holder "$1" "$2"); [ -n "$h" ] && [[ " $3 " == *" $h "* ]]; }
healthy() { http "http://127.0.0.1:$1/healthz" | grep '^200' >/dev/null && http "http://127.0.0.1:$1/readyz" | grep '^200' >/dev/null; }

# run_install LABEL NAMESPACE DEPLOYMENT: the Deployment (already applied, its Secret created)
# run as two pods; every claim of this tier checked against them.
run_install() {
  local label=$1 ns=$2 deploy=$3 lease pods=() ports=() p pod mp hp leader other ip svc
  kubectl -n "$ns" get deployment "$deploy" -o json >"$work/$label-deployment.json"
  lease=$(python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0].get("args",[]); print(next((x.split("=",1)[1] for x in a if x.startswith("--lease-name=")), "openstack-lb-controller"))' "$work/$label-deployment.json")
  echo "== $label: Deployment $ns/$deploy, Lease $ns/$lease"
  for p in a b; do
    # Named as a ReplicaSet names its pods (random suffix): the container names then never
    # collide with another run of this tier on the same machine.
    pod="$deploy-$p$(python3 -c 'import secrets; print(secrets.token_hex(3))')"; mp=$(free_port); hp=$(free_port)
    local -a run_args=()
    mapfile -d '' run_args < <(python3 "$repo/tests/deploy-pod/kubelet.py" "$work/$label-deployment.json" \
      "$pod" "$image" "$work" "$api_port" "$work/cp/pki/ca.crt" "$mp" "$hp")
    [ ${#run_args[@]} -gt 0 ] || { echo "kubelet.py produced no arguments" >&2; return 1; }
    containers+=("olbc-$pod")
    olbc_podman run -d "${run_args[@]}" >/dev/null
    pods+=("$pod"); ports+=("$mp:$hp")
  done
  for i in 0 1; do
    wait_for "/healthz and /readyz of ${pods[$i]}" 60 healthy "${ports[$i]#*:}"
    echo "${pods[$i]}: /healthz 200, /readyz 200 (health port ${ports[$i]#*:})"
  done
  wait_for "a leader in Lease $ns/$lease" 60 holder_is_one_of "$ns" "$lease" "${pods[*]}"
  leader=$(lease_holder "$ns" "$lease")
  if [ "$leader" = "${pods[0]}" ]; then other=${pods[1]}; mp=${ports[0]%%:*}; else other=${pods[0]}; mp=${ports[1]%%:*}; fi
  echo "leader: $leader (Lease $ns/$lease); standby: $other"

  svc="web-$label"
  service "$svc"
  wait_for "an external IP on apps/$svc" 90 has_ip "$svc"
  ip=$(ingress_ip "$svc")
  wait_for "HTTP through $ip" 60 answers "$ip"
  echo "Service apps/$svc: external IP $ip answers: $(http "http://$ip/" | cut -d' ' -f2-)"
  http "http://127.0.0.1:$mp/metrics" >"$work/metrics"
  grep -q '^200' "$work/metrics" && grep -q '^olbc_reconciles_total' "$work/metrics" \
    || { echo "/metrics of $leader did not answer with olbc_ metrics" >&2; head -c 600 "$work/metrics" >&2; return 1; }
  echo "/metrics of $leader: $(grep -c '^olbc_' "$work/metrics") olbc_ samples, e.g. $(grep -m1 '^olbc_managed_load_balancers{state="ready"}' "$work/metrics" || grep -m1 '^olbc_' "$work/metrics")"

  local t=$SECONDS code
  olbc_podman stop -t 30 "olbc-$leader" >/dev/null
  code=$(olbc_podman inspect --format '{{.State.ExitCode}}' "olbc-$leader")
  echo "SIGTERM (podman stop) of $leader: exited with $code after $((SECONDS - t)) s"
  [ "$code" = 0 ] || { echo "the leader did not exit cleanly on SIGTERM" >&2; return 1; }
  olbc_podman logs "olbc-$leader" >"$work/leader.log" 2>&1
  if grep -q 'could not release the Lease' "$work/leader.log"; then
    echo "the leader did not release its Lease on SIGTERM:" >&2; tail -n 5 "$work/leader.log" >&2; return 1
  fi
  echo "its last log line: $(tail -n 1 "$work/leader.log")"
  wait_for "Lease $ns/$lease to pass to $other" 60 holder_is "$ns" "$lease" "$other"
  echo "leader after SIGTERM: $(lease_holder "$ns" "$lease") ($((SECONDS - t)) s after the stop)"

  # The new leader acts: a new Service gets an IP, and both are cleaned up on delete.
  service "$svc-2"
  wait_for "an external IP on apps/$svc-2 from the new leader" 90 has_ip "$svc-2"
  wait_for "HTTP through $(ingress_ip "$svc-2")" 60 answers "$(ingress_ip "$svc-2")"
  echo "Service apps/$svc-2 (new leader): external IP $(ingress_ip "$svc-2") answers"
  kubectl -n apps delete svc "$svc" "$svc-2" --wait=false >/dev/null
  wait_for "apps/$svc and apps/$svc-2 to be released and gone" 90 eval "gone $svc && gone $svc-2"
  echo "Services deleted: load balancers released, finalizers removed"
  for p in "${pods[@]}"; do olbc_podman rm -f -t 2 "olbc-$p" >/dev/null; done
}

# --- 1. the chart, release "edge" in namespace "lb-system"
ns=lb-system
kubectl create namespace "$ns" >/dev/null
"$helm" template edge deploy/helm/openstack-lb-controller --namespace "$ns" --set image.repository="${image%:*}" \
  --set image.tag="${image##*:}" --set image.pullPolicy=Never >"$work/chart.yaml"
kubectl apply -f "$work/chart.yaml" >/dev/null
deploy=$(python3 -c 'import sys,yaml; print(next(d["metadata"]["name"] for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"]=="Deployment"))' "$work/chart.yaml")
secret=$(kubectl -n "$ns" get deployment "$deploy" -o jsonpath='{.spec.template.spec.volumes[?(@.name=="cloud-config")].secret.secretName}')
kubectl -n "$ns" create secret generic "$secret" --from-file=cloud.conf="$work/cloud-by-name.conf" >/dev/null
run_install chart "$ns" "$deploy"

# --- 2. the plain manifests, as shipped (kube-system), with the sandbox's cloud.conf as the Secret
kubectl apply -f deploy/manifests/rbac.yaml -f deploy/manifests/deployment.yaml >/dev/null
secret=$(kubectl -n kube-system get deployment openstack-lb-controller -o jsonpath='{.spec.template.spec.volumes[?(@.name=="cloud-config")].secret.secretName}')
kubectl -n kube-system create secret generic "$secret" --from-file=cloud.conf="$work/cloud-by-name.conf" >/dev/null
run_install manifests kube-system openstack-lb-controller

echo "deploy tier passed ($((SECONDS - t0)) s)"
