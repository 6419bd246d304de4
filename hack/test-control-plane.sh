#!/usr/bin/env bash
# pass/fail always return 0, so `cond && pass || fail` is a safe if/else here.
# shellcheck disable=SC2015
# Self-test for hack/control-plane.sh: starts two instances concurrently in temp
# dirs, exercises what the controller tests rely on (Nodes, LoadBalancer Services,
# ServiceAccount tokens + RBAC), stops them and checks no process is left.
# Exit status is non-zero on any failure. Set OLBC_KEEP_TEST_DIR=1 to keep the dirs.
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CP=$HACK_DIR/control-plane.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/olbc-cp-test.XXXXXX")
A=$WORK/a
B=$WORK/b
FAILS=0

say() { printf '%s\n' "$*"; }
pass() { say "PASS: $*"; }
fail() { say "FAIL: $*"; FAILS=$((FAILS + 1)); }
fatal() { say "FATAL: $*"; exit 1; }

# Processes (by PID) whose command line mentions the test dir; read-only scan.
leftover_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    if tr '\0' ' ' 2>/dev/null <"$f" | grep -F -- "$WORK/" >/dev/null; then
      # Ignore shells/tools of this very test (e.g. grep itself).
      case "$(cat "/proc/$pid/comm" 2>/dev/null)" in etcd|kube-apiserver) echo "$pid" ;; esac
    fi
  done
}

STOPPED=0
stop_all() {
  ((STOPPED)) && return 0
  STOPPED=1
  timeout 60 "$CP" stop --dir "$A" >/dev/null 2>&1 || fail "stop --dir $A"
  timeout 60 "$CP" stop --dir "$B" >/dev/null 2>&1 || fail "stop --dir $B"
}
cleanup() {
  local rc=$?
  stop_all || true
  if [[ ${OLBC_KEEP_TEST_DIR:-0} == 1 ]]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT

k() { kubectl --request-timeout=10s "$@"; }

# ---------------------------------------------------------------- build + start
t0=$SECONDS
BIN_DIR=$(timeout 3600 "$HACK_DIR/build-control-plane.sh" | tail -n1) || fatal "build-control-plane.sh failed"
say "binaries: $BIN_DIR ($((SECONDS - t0))s)"

t0=$SECONDS
timeout 180 "$CP" start --dir "$A" >"$WORK/a.out" 2>"$WORK/a.err" & pa=$!
timeout 180 "$CP" start --dir "$B" >"$WORK/b.out" 2>"$WORK/b.err" & pb=$!
rca=0; wait "$pa" || rca=$?
rcb=0; wait "$pb" || rcb=$?
if ((rca != 0 || rcb != 0)); then
  say "--- start A (rc=$rca) ---"; cat "$WORK/a.err"
  say "--- start B (rc=$rcb) ---"; cat "$WORK/b.err"
  fatal "concurrent start failed"
fi
pass "two instances started concurrently in $((SECONDS - t0))s"
[[ $(tail -n1 "$WORK/a.out") == "export KUBECONFIG=$A/kubeconfig" ]] && pass "start prints export line" \
  || fail "start output: $(cat "$WORK/a.out")"
[[ $("$CP" env --dir "$A" 2>/dev/null) == "export KUBECONFIG=$A/kubeconfig" ]] && pass "env prints export line" \
  || fail "env output"
grep -qx "KUBECONFIG=$A/kubeconfig" "$A/env" && pass "DIR/env written" || fail "DIR/env content"
pa_port=$(sed -n 's/^apiserver_port=//p' "$A/ports"); pb_port=$(sed -n 's/^apiserver_port=//p' "$B/ports")
[[ $pa_port != "$pb_port" ]] && pass "distinct apiserver ports ($pa_port, $pb_port)" || fail "same port used twice"
out=$(timeout 30 "$CP" start --dir "$A" 2>/dev/null | tail -n1)
[[ $out == "export KUBECONFIG=$A/kubeconfig" ]] && pass "start is idempotent while running" || fail "second start: $out"

export KUBECONFIG=$A/kubeconfig
say "server version: $(k version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -n1)"

# ------------------------------------------------------------------- basics
[[ $(k get --raw /readyz) == ok ]] && pass "/readyz ok" || fail "/readyz"
k get namespace default kube-system -o name >/dev/null && pass "namespaces default, kube-system exist" || fail "namespaces"
k get clusterrole cluster-admin view -o name >/dev/null && pass "RBAC bootstrap roles present" || fail "bootstrap roles"
[[ $(k auth whoami -o jsonpath='{.status.userInfo.groups}') == *system:masters* ]] \
  && pass "admin kubeconfig is system:masters" || fail "admin identity"

# ------------------------------------------------------------------- Node
k apply -f - >/dev/null <<'EOF' || fail "create node"
apiVersion: v1
kind: Node
metadata:
  name: olbc-test-node
  labels:
    kubernetes.io/hostname: olbc-test-node
spec:
  providerID: openstack:///00000000-0000-0000-0000-000000000011
EOF
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
k patch node olbc-test-node --subresource=status --type=merge -p "{\"status\":{
  \"addresses\":[{\"type\":\"InternalIP\",\"address\":\"127.0.0.11\"},{\"type\":\"Hostname\",\"address\":\"olbc-test-node\"}],
  \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"fake node\",
                   \"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null || fail "patch node status"
ip=$(k get node olbc-test-node -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
ready=$(k get node olbc-test-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
[[ $ip == 127.0.0.11 && $ready == True ]] && pass "node InternalIP=$ip Ready=$ready" || fail "node status ip='$ip' ready='$ready'"
k get nodes -o wide || true

# -------------------------------------------------------- LoadBalancer Service
k apply -f - >/dev/null <<'EOF' || fail "create service"
apiVersion: v1
kind: Service
metadata:
  name: olbc-test-lb
  namespace: default
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector:
    app: demo
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: https
    port: 443
    targetPort: 8443
EOF
nps=$(k get svc olbc-test-lb -o jsonpath='{.spec.ports[*].nodePort}')
hc=$(k get svc olbc-test-lb -o jsonpath='{.spec.healthCheckNodePort}')
cip=$(k get svc olbc-test-lb -o jsonpath='{.spec.clusterIP}')
ok=1; read -ra np_arr <<<"$nps"; [[ ${#np_arr[@]} -eq 2 ]] || ok=0
for p in "${np_arr[@]}" "$hc"; do [[ $p =~ ^[0-9]+$ ]] && ((p >= 30000 && p <= 32767)) || ok=0; done
((ok)) && pass "LoadBalancer service: nodePorts=[$nps] healthCheckNodePort=$hc clusterIP=$cip" \
  || fail "service allocation nodePorts='$nps' healthCheckNodePort='$hc'"
[[ $cip == 10.96.* ]] && pass "clusterIP from service range" || fail "clusterIP '$cip'"
k patch svc olbc-test-lb --subresource=status --type=merge \
  -p '{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.10"}]}}}' >/dev/null || fail "patch service status"
[[ $(k get svc olbc-test-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}') == 203.0.113.10 ]] \
  && pass "service status.loadBalancer.ingress writable via status subresource" || fail "service status"
k get svc olbc-test-lb || true

# ------------------------------------------------- ServiceAccount token + RBAC
k create serviceaccount olbc-test >/dev/null || fail "create serviceaccount"
token=$(k create token olbc-test --duration=10m) && [[ -n $token ]] && pass "kubectl create token works" \
  || fail "create token"
SAK=$WORK/sa.kubeconfig
server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
kubectl config --kubeconfig="$SAK" set-cluster olbc --server="$server" \
  --certificate-authority="$A/pki/ca.crt" --embed-certs=true >/dev/null
kubectl config --kubeconfig="$SAK" set-credentials sa --token="$token" >/dev/null
kubectl config --kubeconfig="$SAK" set-context sa --cluster=olbc --user=sa --namespace=default >/dev/null
kubectl config --kubeconfig="$SAK" use-context sa >/dev/null
ks() { kubectl --kubeconfig="$SAK" --request-timeout=10s "$@"; }

who=$(ks auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1) || true
[[ $who == system:serviceaccount:default:olbc-test ]] && pass "token authenticates as $who" || fail "whoami: $who"
ks get --raw /version >/dev/null 2>&1 && pass "token can call the API (/version)" || fail "token /version"
err=$(ks get services 2>&1) && fail "listing services should be forbidden" || {
  [[ $err == *[Ff]orbidden* ]] && pass "RBAC denies list services: ${err%%$'\n'*}" || fail "unexpected error: $err"
}
k create role olbc-svc-reader --verb=get,list,watch --resource=services >/dev/null
k create rolebinding olbc-svc-reader --role=olbc-svc-reader --serviceaccount=default:olbc-test >/dev/null
allowed=0
for _ in $(seq 1 40); do
  if ks get services -o name >/dev/null 2>&1; then allowed=1; break; fi
  sleep 0.25
done
((allowed)) && pass "after RoleBinding the token can list services" || fail "RoleBinding not effective within 10s"
err=$(ks get services -n kube-system 2>&1) && fail "kube-system should stay forbidden" || {
  [[ $err == *[Ff]orbidden* ]] && pass "RBAC still denies services in kube-system" || fail "unexpected: $err"
}
err=$(ks get nodes 2>&1) && fail "nodes should stay forbidden" || {
  [[ $err == *[Ff]orbidden* ]] && pass "RBAC still denies nodes" || fail "unexpected: $err"
}

# ------------------------------------------------------ second instance isolated
[[ $(KUBECONFIG=$B/kubeconfig k get --raw /readyz) == ok ]] && pass "instance B ready" || fail "instance B readyz"
KUBECONFIG=$B/kubeconfig k get svc olbc-test-lb >/dev/null 2>&1 && fail "instance B sees A's service" \
  || pass "instance B is independent of A"

# ------------------------------------------------------------------- stop
pids="$(cat "$A"/*.pid "$B"/*.pid 2>/dev/null | tr '\n' ' ')"
stop_all
alive=""
for p in $pids; do kill -0 "$p" 2>/dev/null && alive+=" $p"; done
[[ -z $alive ]] && pass "recorded PIDs ($pids) are gone" || fail "still alive:$alive"
left=$(leftover_pids | tr '\n' ' ')
[[ -z $left ]] && pass "no etcd/kube-apiserver process left for $WORK" || fail "leftover processes: $left"
ls "$A"/*.pid >/dev/null 2>&1 && fail "pid files not removed" || pass "pid files removed"

if ((FAILS)); then
  say "RESULT: $FAILS check(s) FAILED"
  exit 1
fi
say "RESULT: all checks passed"
