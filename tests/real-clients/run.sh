#!/usr/bin/env bash
# Fidelity by real clients (docs/fidelity.md, "Real clients"): python-openstackclient and OCCM
# drive one scenario each through a recording proxy (proxy.py); the answers are reduced to
# shapes and compared by crates/fidelity (fidelity-clients) like the catalogue's.
#
#   run.sh                  the sandbox against the recorded rig answers
#                           (crates/fidelity/recorded/clients-rig.json); no rig needed
#   run.sh --rig            the live openstack-rig and a sandbox, side by side
#   run.sh --rig --record   the same, then rewrites the recording from the rig's answers
#
# The OCCM scenario runs when bench/build-occm.sh has cached OCCM (it is never built here:
# ~10 min); without it only the CLI scenario runs, and that is said. The rig's credentials:
# OS_* in the environment, else $OSRIG_BASE/openrc (default /tmp/osrig); its networks:
# OSRIG_PUBLIC_NETWORK_ID and OSRIG_PRIVATE_SUBNET_ID, else $OSRIG_BASE/networks.env.
# Env: OLBC_BIN (sandbox binary), FIDELITY_CLIENTS_BIN, OLBC_CACHE_DIR, REAL_CLIENTS_TIMEOUT.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
live=false
record=false
for arg in "$@"; do
  case $arg in
    --rig) live=true ;;
    --record) record=true ;;
    *) echo "usage: $0 [--rig [--record]]" >&2; exit 2 ;;
  esac
done
$record && ! $live && { echo "--record needs --rig: the recording holds the real cloud's answers" >&2; exit 2; }
t_start=$SECONDS
say() { printf '== [%3ss] %s\n' "$((SECONDS - t_start))" "$*"; }
recorded=$repo/crates/fidelity/recorded/clients-rig.json
allow=$repo/crates/fidelity/allow-list.yaml
rig_base=${OSRIG_BASE:-/tmp/osrig}

# --- the pinned CLI venv, shared with tests/cli-conformance ---------------------------------
cache=${OLBC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}
req=$repo/tests/cli-conformance/requirements.txt
venv="$cache/venv-cli-$(sha256sum "$req" | cut -c1-12)"
if [ ! -f "$venv/.complete" ]; then
  say "installing the pinned OpenStack CLI into $venv"
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  touch "$venv/.complete"
fi
py=$venv/bin/python

# --- binaries ------------------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin=${OLBC_BIN:-$target_dir/debug/openstack-lb-controller}
fc=${FIDELITY_CLIENTS_BIN:-$target_dir/debug/fidelity-clients}
if [ ! -x "$bin" ] || [ ! -x "$fc" ]; then
  say "building openstack-lb-controller and fidelity-clients"
  (cd "$repo" && cargo build -q -p openstack-lb-controller -p fidelity --bin openstack-lb-controller --bin fidelity-clients)
  bin=$target_dir/debug/openstack-lb-controller
  fc=$target_dir/debug/fidelity-clients
fi
occm=$("$repo/bench/build-occm.sh" --check 2>/dev/null || true)
if [ -z "$occm" ]; then
  say "NOTE: OCCM is not cached (bench/build-occm.sh builds it once, ~10 min): the OCCM scenario is not run"
elif ! command -v kubectl >/dev/null; then
  say "NOTE: kubectl not found (hack/control-plane.sh and the OCCM scenario need it): the OCCM scenario is not run"
  occm=
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-real-clients.XXXXXX")
pids=()
cps=()
cleanup() {
  local pid d
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
  for d in "${cps[@]+"${cps[@]}"}"; do "$repo/hack/control-plane.sh" stop --dir "$d" >/dev/null 2>&1 || true; done
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "REAL CLIENTS FAILED: $*" >&2; exit 1; }

# --- the sandbox ---------------------------------------------------------------------------
octet=$((171 + RANDOM % 28))
"$bin" sandbox --provisioning-delay 1s --floating-range "127.$octet.0.0/16" \
  --env-file "$work/sandbox.openrc" >"$work/sandbox.out" 2>"$work/sandbox.err" &
pids+=($!)
for _ in $(seq 1 300); do
  [ -s "$work/sandbox.openrc" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 20 "$work/sandbox.err" >&2; fail "the sandbox exited at start"; }
  sleep 0.1
done
[ -s "$work/sandbox.openrc" ] || fail "the sandbox was not ready after 30 s"

# Prints "PUBLIC_NETWORK_ID VIP_SUBNET_ID" of the cloud OS_* points at (asked directly, not
# through the proxy: this is set-up, not the client under test).
sandbox_ids() {
  (
    set -a; source "$work/sandbox.openrc"; set +a
    "$venv/bin/openstack" network show public -f value -c id | tr '\n' ' '
    "$venv/bin/openstack" subnet show nodes -f value -c id
  )
}
rig_ids() {
  (
    if [ -z "${OSRIG_PUBLIC_NETWORK_ID:-}" ] && [ -f "$rig_base/networks.env" ]; then source "$rig_base/networks.env"; fi
    [ -n "${OSRIG_PUBLIC_NETWORK_ID:-}" ] && [ -n "${OSRIG_PRIVATE_SUBNET_ID:-}" ] \
      || { echo "OSRIG_PUBLIC_NETWORK_ID / OSRIG_PRIVATE_SUBNET_ID not set and no $rig_base/networks.env" >&2; exit 1; }
    echo "$OSRIG_PUBLIC_NETWORK_ID $OSRIG_PRIVATE_SUBNET_ID"
  )
}

# run_target NAME OPENRC NET SUBNET: both scenarios through a recording proxy into
# $work/NAME.jsonl. OPENRC is empty for the rig when OS_* is already in the environment.
run_target() {
  local name=$1 rc=$2 net=$3 subnet=$4
  (
    set -e
    if [ -n "$rc" ]; then set -a; source "$rc"; set +a; fi
    [ -n "${OS_AUTH_URL:-}" ] || { echo "$name: no OS_AUTH_URL" >&2; exit 1; }
    prefix="fid-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    keystone=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$OS_AUTH_URL")
    "$py" "$here/proxy.py" --keystone "$keystone" --record "$work/$name.jsonl" --ready "$work/$name.proxy" \
      --prefix "$prefix" 2>"$work/$name.proxy.err" &
    proxy_pid=$!
    trap 'kill $proxy_pid 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do [ -s "$work/$name.proxy" ] && break; sleep 0.1; done
    [ -s "$work/$name.proxy" ] || { echo "$name: the proxy did not start" >&2; exit 1; }
    proxy=$(cat "$work/$name.proxy")
    upstream_auth=$OS_AUTH_URL
    export OS_AUTH_URL="$proxy/v3"
    common=(--target "$name" --proxy "${proxy%/o0}" --public-network "$net" --vip-subnet "$subnet" --prefix "$prefix")
    status=0
    "$py" "$here/scenario.py" cli "${common[@]}" || status=1
    if [ -n "$occm" ] && [ $status = 0 ]; then
      mkdir -p "$work/$name-occm"
      "$repo/hack/control-plane.sh" start --dir "$work/$name-cp" >"$work/$name-cp.log" 2>&1 \
        || { echo "$name: hack/control-plane.sh start failed (log: $work/$name-cp.log)" >&2; exit 1; }
      "$py" "$here/scenario.py" occm "${common[@]}" --occm "$occm" --kubeconfig "$work/$name-cp/kubeconfig" \
        --work "$work/$name-occm" --upstream-auth-url "$upstream_auth" || { status=1; tail -n 30 "$work/$name-occm/occm.log" >&2 || true; }
      "$repo/hack/control-plane.sh" stop --dir "$work/$name-cp" >/dev/null 2>&1 || true
    fi
    # Whatever a failed scenario left behind on the cloud is removed (directly, not recorded).
    if [ $status != 0 ]; then
      export OS_AUTH_URL=$upstream_auth
      for id in $("$venv/bin/openstack" loadbalancer list -f value -c id -c name | awk -v p="$prefix" 'index($2, p) {print $1}'); do
        "$venv/bin/openstack" loadbalancer delete --cascade "$id" || true
      done
      for id in $("$venv/bin/openstack" floating ip list --long -f value -c ID -c Description -c Tags | awk -v p="$prefix" 'index($0, p) {print $1}'); do
        "$venv/bin/openstack" floating ip delete "$id" || true
      done
    fi
    exit $status
  )
}
for d in sandbox rig; do cps+=("$work/$d-cp"); done

read -r sb_net sb_subnet <<<"$(sandbox_ids)"
[ -n "$sb_subnet" ] || fail "cannot find the sandbox's public network and nodes subnet"
if $live; then
  rig_rc=""
  if [ -z "${OS_AUTH_URL:-}" ]; then
    [ -f "$rig_base/openrc" ] || fail "no OS_* in the environment and no $rig_base/openrc: is the openstack-rig running?"
    rig_rc=$rig_base/openrc
  fi
  read -r rig_net rig_subnet <<<"$(rig_ids)" || fail "the rig's network ids"
  say "live: the rig and a sandbox, side by side"
  run_target rig "$rig_rc" "$rig_net" "$rig_subnet" & rig_pid=$!
  run_target sandbox "$work/sandbox.openrc" "$sb_net" "$sb_subnet" & sb_pid=$!
  rc_rig=0 rc_sb=0
  wait $rig_pid || rc_rig=$?
  wait $sb_pid || rc_sb=$?
  [ $rc_rig = 0 ] || fail "the scenario failed against the rig"
  [ $rc_sb = 0 ] || fail "the scenario failed against the sandbox"
  if $record; then
    [ -n "$occm" ] || fail "--record needs OCCM (bench/build-occm.sh): the recording must hold both scenarios"
    "$fc" reduce "$work/rig.jsonl" "$recorded" rig
  fi
  # A stale recording is not this run's failure, but the ordinary runs compare with it.
  if ! $record && ! "$fc" compare "$recorded" "$work/rig.jsonl" "$allow" >"$work/recording-vs-rig.txt" 2>&1; then
    say "NOTE: the live rig no longer answers as crates/fidelity/recorded/clients-rig.json says (re-record with --rig --record):"
    grep -v '^allowed:' "$work/recording-vs-rig.txt" | sed 's/ real / recorded /; s/ sandbox / live rig /' | head -n 20
  fi
  say "comparing the sandbox with the live rig"
  "$fc" compare "$work/rig.jsonl" "$work/sandbox.jsonl" "$allow" || fail "the sandbox differs from the rig (above)"
else
  say "the sandbox against the recorded rig answers"
  run_target sandbox "$work/sandbox.openrc" "$sb_net" "$sb_subnet" || fail "the scenario failed against the sandbox"
  reference=$recorded
  if [ -z "$occm" ]; then
    reference=$work/recorded-cli-only.json
    jq '.steps |= map(select(.name | startswith("occm-") | not))' "$recorded" >"$reference"
  fi
  "$fc" compare "$reference" "$work/sandbox.jsonl" "$allow" || fail "the sandbox differs from the recorded rig answers (above)"
fi
echo "real clients passed in $((SECONDS - t_start)) s"
