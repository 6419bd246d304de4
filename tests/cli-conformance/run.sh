#!/usr/bin/env bash
# Conformance of the sandbox with the REAL OpenStack CLI (python-openstackclient 10.5.0 +
# python-octaviaclient 3.15.0, pinned with all dependencies in requirements.txt and installed
# into a cached venv). Starts `openstack-lb-controller sandbox`, two HTTP backends on
# loopback "node" addresses, and drives one scenario, asserting every step; every wait is
# bounded. Usage: run.sh [path/to/openstack-lb-controller]   (or $OLBC_BIN; else target/debug,
# built if missing). Env: OLBC_CACHE_DIR (venv cache), CONFORMANCE_TIMEOUT (per wait, s).
#
# CLI calls made (Octavia side = engineer B's routes and data plane):
#   token issue; extension list --network; network create --tag; network show; network list
#   --tags; subnet create --allocation-pool; router create; router add subnet; router set
#   --external-gateway; security group create; security group rule create; port create
#   --fixed-ip; port set --tag; port list --tags; port delete; quota show;
#   loadbalancer create --vip-subnet-id; loadbalancer show (polled until ACTIVE);
#   loadbalancer listener create --protocol TCP --protocol-port 80;
#   loadbalancer pool create --listener --protocol TCP --lb-algorithm ROUND_ROBIN;
#   loadbalancer member create --subnet-id --address --protocol-port (x2);
#   loadbalancer healthmonitor create --type HTTP --url-path / --expected-codes 200;
#   loadbalancer status show; floating ip create public; floating ip set --port <vip port>;
#   floating ip show; loadbalancer set --description (x2 concurrently: one must get 409);
#   loadbalancer delete --cascade; loadbalancer list (empty at the end).
#   Then HTTP through the floating IP (curl) must reach both backends.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
timeout_s=${CONFORMANCE_TIMEOUT:-60}
t_start=$SECONDS

# --- the CLI venv (cached by the hash of the pinned requirements) ----------------------
cache=${OLBC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}
req_hash=$(sha256sum "$here/requirements.txt" | cut -c1-12)
venv="$cache/venv-cli-$req_hash"
if [ ! -f "$venv/.complete" ]; then
  echo "== installing the pinned OpenStack CLI into $venv"
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  touch "$venv/.complete"
fi
export PATH="$venv/bin:$PATH"
openstack --version

# --- the sandbox binary ----------------------------------------------------------------
bin=${1:-${OLBC_BIN:-$repo/target/debug/openstack-lb-controller}}
if [ ! -x "$bin" ]; then
  echo "== building openstack-lb-controller"
  (cd "$repo" && cargo build -q -p openstack-lb-controller)
  bin="${CARGO_TARGET_DIR:-$repo/target}/debug/openstack-lb-controller"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-cli.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "CONFORMANCE FAILED: $*" >&2
  echo "--- sandbox stderr (tail) ---" >&2
  tail -n 30 "$work/sandbox.err" >&2 || true
  exit 1
}
step() { printf '== [%3ss] %s\n' "$((SECONDS - t_start))" "$*"; }

# A 2 s provisioning delay keeps PENDING_UPDATE open long enough for the concurrent-mutation
# check below, whatever the CLI's start-up time on a loaded machine.
"$bin" sandbox --provisioning-delay 2s --env-file "$work/openrc" --clouds-yaml "$work/clouds.yaml" \
  >"$work/sandbox.out" 2>"$work/sandbox.err" &
pids+=($!)
for _ in $(seq 1 100); do
  [ -s "$work/openrc" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || fail "sandbox exited at start"
  sleep 0.1
done
[ -s "$work/openrc" ] || fail "sandbox not ready after 10 s"
# shellcheck disable=SC1091
source "$work/openrc"
step "sandbox up at $OS_AUTH_URL"

# Polls `openstack <args>` until its output equals $want (bounded by $timeout_s).
wait_for() {
  local want=$1 got=""
  shift
  local deadline=$((SECONDS + timeout_s))
  while [ $SECONDS -lt $deadline ]; do
    got=$(openstack "$@" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    [ "$got" = ERROR ] && fail "openstack $* went to ERROR"
    sleep 0.3
  done
  fail "openstack $*: wanted '$want', still '$got' after ${timeout_s}s"
}
lb_active() { wait_for ACTIVE loadbalancer show "$1" -f value -c provisioning_status; }

# --- identity and networking -----------------------------------------------------------
token=$(openstack token issue -f value -c id)
[ -n "$token" ] || fail "no token"
openstack extension list --network -f value -c Alias | grep -x router >/dev/null || fail "router extension missing"
step "token and extensions"

net_id=$(openstack network create --tag conformance --description "cli net" cli-net -f value -c id)
[ "$(openstack network show "$net_id" -f value -c description)" = "cli net" ] || fail "network description"
openstack network list --tags conformance -f value -c ID | grep -x "$net_id" >/dev/null || fail "network --tags filter"
openstack subnet create --network cli-net --subnet-range 192.168.77.0/24 \
  --allocation-pool start=192.168.77.10,end=192.168.77.50 cli-subnet -f value -c id >/dev/null
pools=$(openstack subnet show cli-subnet -f json | jq -cS .allocation_pools)
[ "$pools" = '[{"end":"192.168.77.50","start":"192.168.77.10"}]' ] || fail "allocation pools: $pools"
openstack router create cli-router -f value -c id >/dev/null
openstack router add subnet cli-router cli-subnet
openstack router set --external-gateway public cli-router
gw=$(openstack router show cli-router -f json | jq -r .external_gateway_info.network_id)
[ "$gw" = "$(openstack network show public -f value -c id)" ] || fail "router gateway"
step "network, subnet, router"

sg_id=$(openstack security group create cli-sg -f value -c id)
openstack security group rule create --protocol tcp --dst-port 30000:30010 --remote-ip 10.0.0.0/8 "$sg_id" >/dev/null
port_id=$(openstack port create --network cli-net --fixed-ip subnet=cli-subnet,ip-address=192.168.77.42 \
  --security-group "$sg_id" cli-port -f value -c id)
openstack port set --tag conformance "$port_id"
openstack port list --tags conformance -f value -c ID | grep -x "$port_id" >/dev/null || fail "port --tags filter"
ip=$(openstack port show "$port_id" -f json | jq -r '.fixed_ips[0].ip_address')
[ "$ip" = 192.168.77.42 ] || fail "fixed ip $ip"
openstack port delete "$port_id"
openstack quota show admin -f json | jq -e '.[] | select(.Resource == "floating_ips") | .Limit == 50' >/dev/null \
  || fail "quota show"
step "security group, port, tags, quota"

# --- two backends on loopback node addresses ---------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
backend_port=$(free_port)
for n in 1 2; do
  mkdir -p "$work/www$n"
  echo "backend-$n" >"$work/www$n/index.html"
  python3 -m http.server "$backend_port" --bind "127.100.0.1$n" --directory "$work/www$n" \
    >"$work/backend$n.log" 2>&1 &
  pids+=($!)
done
for n in 1 2; do
  ok=""
  for _ in $(seq 1 50); do
    if curl -fsS -m 2 "http://127.100.0.1$n:$backend_port/" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || fail "backend $n did not start"
done
step "backends on 127.100.0.11/12:$backend_port"

# --- load balancer -----------------------------------------------------------------------
nodes_subnet=$(openstack subnet show nodes -f value -c id)
lb_json=$(openstack loadbalancer create --name cli-lb --vip-subnet-id "$nodes_subnet" -f json)
lb_id=$(jq -r .id <<<"$lb_json")
vip_port=$(jq -r .vip_port_id <<<"$lb_json")
[ "$(jq -r .provisioning_status <<<"$lb_json")" = PENDING_CREATE ] || fail "LB not PENDING_CREATE"
lb_active "$lb_id"
step "loadbalancer ACTIVE"
listener_id=$(openstack loadbalancer listener create --name cli-listener --protocol TCP --protocol-port 80 \
  "$lb_id" -f value -c id)
lb_active "$lb_id"
pool_id=$(openstack loadbalancer pool create --name cli-pool --listener "$listener_id" --protocol TCP \
  --lb-algorithm ROUND_ROBIN -f value -c id)
lb_active "$lb_id"
for n in 1 2; do
  openstack loadbalancer member create --name "m$n" --subnet-id "$nodes_subnet" \
    --address "127.100.0.1$n" --protocol-port "$backend_port" "$pool_id" >/dev/null
  lb_active "$lb_id"
done
openstack loadbalancer healthmonitor create --name cli-hm --type HTTP --url-path / --expected-codes 200 \
  --delay 1 --timeout 1 --max-retries 1 "$pool_id" >/dev/null
lb_active "$lb_id"
step "listener, pool, 2 members, health monitor"

status=$(openstack loadbalancer status show "$lb_id")
jq -e '.loadbalancer.listeners[0].pools[0].members | length == 2' <<<"$status" >/dev/null \
  || fail "status tree: $status"
jq -e '.loadbalancer.listeners[0].pools[0].health_monitor.type == "HTTP"' <<<"$status" >/dev/null \
  || fail "status tree has no health monitor: $status"
step "status show"

fip_json=$(openstack floating ip create public --description "cli conformance" -f json)
fip_id=$(jq -r .id <<<"$fip_json")
fip=$(jq -r .floating_ip_address <<<"$fip_json")
openstack floating ip set --port "$vip_port" "$fip_id"
[ "$(openstack floating ip show "$fip_id" -f value -c port_id)" = "$vip_port" ] || fail "FIP not on the VIP port"
[ "$(openstack floating ip show "$fip_id" -f value -c status)" = ACTIVE ] || fail "FIP not ACTIVE"
step "floating IP $fip on the VIP port"

seen1="" seen2="" body=""
for _ in $(seq 1 100); do
  body=$(curl -sS -m 2 "http://$fip:80/" 2>/dev/null || true)
  case "$body" in
    backend-1) seen1=1 ;;
    backend-2) seen2=1 ;;
  esac
  [ -n "$seen1" ] && [ -n "$seen2" ] && break
  sleep 0.2
done
[ -n "$seen1" ] && [ -n "$seen2" ] || fail "traffic through $fip:80 reached backend-1=${seen1:-no} backend-2=${seen2:-no} (last: '$body')"
step "curl through the floating IP reached both backends"

# Two mutations at once: the first puts the LB in PENDING_UPDATE, the other must get 409.
openstack loadbalancer set --description first "$lb_id" >"$work/set1.out" 2>&1 & a=$!
openstack loadbalancer set --description second "$lb_id" >"$work/set2.out" 2>&1 & b=$!
rc_a=0 rc_b=0
wait "$a" || rc_a=$?
wait "$b" || rc_b=$?
if [ "$rc_a" = 0 ] && [ "$rc_b" != 0 ]; then loser="$work/set2.out"
elif [ "$rc_b" = 0 ] && [ "$rc_a" != 0 ]; then loser="$work/set1.out"
else fail "expected exactly one of two concurrent updates to fail (rc $rc_a/$rc_b)"; fi
grep -q "409" "$loser" || fail "the refused update was not a 409: $(cat "$loser")"
lb_active "$lb_id"
step "mutation during PENDING_UPDATE refused with 409"

openstack loadbalancer delete --cascade "$lb_id"
wait_for "" loadbalancer list -f value -c id
[ -z "$(openstack loadbalancer list -f value -c id)" ] || fail "loadbalancer list not empty"
[ "$(openstack floating ip show "$fip_id" -f value -c port_id)" = None ] || fail "FIP still associated after LB deletion"
step "cascade delete; loadbalancer list empty"

echo "cli conformance passed in $((SECONDS - t_start)) s"
