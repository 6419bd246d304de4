#!/usr/bin/env bash
# The README's demo command works on this machine, and keeps working when it is not alone:
# while another sandbox holds a floating IP, two `demo --once` run at the same time. Each
# gets the example Service an external IP that is neither the other demo's nor the other
# sandbox's, two different backends OF ITS OWN answer through it (the answers name the
# node address and nodePort, which differ per demo), and it tears down cleanly.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-demo-test.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "demo test: $*" >&2; exit 1; }

# The binary and the control plane, built once (as scripts/demo.sh does) so that the two
# demos below start together instead of racing two builds.
bin=${OLBC_BIN:-}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  (cd "$repo" && cargo build -q -p openstack-lb-controller)
  bin="${CARGO_TARGET_DIR:-$repo/target}/debug/openstack-lb-controller"
fi
"$repo/hack/build-control-plane.sh" >/dev/null

# 1. Another sandbox on the machine, holding a floating IP (not associated: nothing listens
#    on it, only its claim protects it).
"$bin" sandbox --env-file "$work/other.openrc" >"$work/other.out" 2>"$work/other.err" &
pids+=($!)
for _ in $(seq 1 100); do
  [ -s "$work/other.openrc" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/other.err" >&2; fail "the other sandbox exited at start"; }
  sleep 0.1
done
[ -s "$work/other.openrc" ] || fail "the other sandbox is not ready after 10 s"
public=$(sed -n 's/^# networks: public \([0-9a-f-]*\) .*/\1/p' "$work/other.out")
[ -n "$public" ] || fail "the other sandbox printed no public network"
held=$(
  set -a; . "$work/other.openrc"; set +a
  python3 - "$public" <<'EOF'
import json, os, sys, urllib.request
def call(method, url, body, token=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("X-Subject-Token"), json.load(r)
E = os.environ
token, body = call("POST", E["OS_AUTH_URL"] + "/auth/tokens", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": E["OS_USERNAME"], "domain": {"name": E["OS_USER_DOMAIN_NAME"]}, "password": E["OS_PASSWORD"]}}},
    "scope": {"project": {"name": E["OS_PROJECT_NAME"], "domain": {"name": E["OS_PROJECT_DOMAIN_NAME"]}}}}})
network = next(e["url"] for s in body["token"]["catalog"] if s["type"] == "network"
               for e in s["endpoints"] if e["interface"] == "public")
_, fip = call("POST", network.rstrip("/") + "/v2.0/floatingips",
              {"floatingip": {"floating_network_id": sys.argv[1]}}, token)
print(fip["floatingip"]["floating_ip_address"])
EOF
)
[ -n "$held" ] || fail "could not create a floating IP on the other sandbox"
echo "another sandbox holds floating IP $held"

# 2. Two demos at once (from the checkout: they run hack/control-plane.sh).
cd "$repo"
for d in a b; do
  timeout 300 "$bin" demo --once --dir "$work/demo-$d" >"$work/$d.out" 2>"$work/$d.err" &
  pids+=($!)
done
rc=0
wait "${pids[1]}" || rc=$?
wait "${pids[2]}" || rc=$((rc + $?))
for d in a b; do echo "--- demo $d"; cat "$work/$d.out"; done
[ "$rc" = 0 ] || { tail -n 20 "$work/a.err" "$work/b.err" >&2; fail "a demo failed (exit codes summed: $rc)"; }

# 3. Each demo: its own address, its own backends.
ips=()
for d in a b; do
  out="$work/$d.out"
  ip=$(sed -n 's/.*status.loadBalancer.ingress = \(127\.200\.[0-9.]*\).*/\1/p' "$out" | head -n 1)
  [ -n "$ip" ] || fail "demo $d: no external IP in 127.200.0.0/16"
  [ "$ip" != "$held" ] || fail "demo $d got $ip, which the other sandbox holds"
  port=$(sed -n 's/.*port 80 -> nodePort \([0-9]*\).*/\1/p' "$out" | head -n 1)
  [ -n "$port" ] || fail "demo $d: no nodePort line"
  answers=$(grep -c '^hello from nginx on demo-node-' "$out" || true)
  own=$(grep -c "^hello from nginx on demo-node-[0-9] (127\.100\.0\.1[0-9]:$port)\$" "$out" || true)
  distinct=$(grep '^hello from nginx on demo-node-' "$out" | sort -u | wc -l)
  [ "$answers" = 2 ] || fail "demo $d: expected 2 answers through $ip, got $answers"
  [ "$own" = 2 ] || fail "demo $d: answers through $ip did not all come from its own backends on nodePort $port"
  [ "$distinct" = 2 ] || fail "demo $d: expected two different backends to answer, got $distinct"
  grep -q 'load balancer  deleted, floating IP released' "$out" || fail "demo $d: no clean-up line"
  grep -q 'sandbox        stopped' "$out" || fail "demo $d: sandbox not stopped"
  ips+=("$ip")
  echo "demo $d: $ip answered by its own backends on nodePort $port"
done
[ "${ips[0]}" != "${ips[1]}" ] || fail "both demos got ${ips[0]}"
echo "demo passed (two at once, beside another sandbox holding $held)"
