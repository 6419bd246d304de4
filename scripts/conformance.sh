#!/usr/bin/env bash
# The conformance tier against a real OpenStack (docs/conformance.md): the client's calls,
# `doctor`, and the controller's end-to-end scenarios, every object under one per-run prefix,
# then a final sweep of that prefix. Prints each part's wall time and the cargo results.
#
#   scripts/conformance.sh            # target from the environment (OS_*, OS_CLOUD or
#                                     # OLBC_CONFORMANCE_CLOUD_CONF, plus OLBC_CONFORMANCE_SUBNET_ID)
#   scripts/conformance.sh --rig      # the local openstack-rig: sources $OSRIG_BASE/openrc and networks.env
#   scripts/conformance.sh --part client|doctor|controller   # one part only (repeatable)
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CARGO_TERM_COLOR=never

rig=false
parts=()
while [ $# -gt 0 ]; do
  case $1 in
    --rig) rig=true ;;
    --part) shift; parts+=("${1:-}") ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#parts[@]} -gt 0 ] || parts=(client doctor controller)

if $rig; then
  base=${OSRIG_BASE:-/tmp/osrig}
  for f in "$base/openrc" "$base/networks.env"; do
    [ -r "$f" ] || { echo "--rig: $f is missing; start the rig first (openstack-rig/start.sh)" >&2; exit 2; }
  done
  # shellcheck disable=SC1091
  . "$base/openrc"
  # shellcheck disable=SC1091
  . "$base/networks.env"
  unset OS_CLOUD OLBC_CONFORMANCE_CLOUD_CONF
  export OLBC_CONFORMANCE_SUBNET_ID=$OSRIG_PRIVATE_SUBNET_ID
  export OLBC_CONFORMANCE_FLOATING_NETWORK_ID=$OSRIG_PUBLIC_NETWORK_ID
fi

if [ -z "${OLBC_CONFORMANCE_CLOUD_CONF:-}${OS_CLOUD:-}${OS_AUTH_URL:-}" ]; then
  echo "conformance: SKIPPED - no target: set OS_* (source an openrc), OS_CLOUD or OLBC_CONFORMANCE_CLOUD_CONF, and OLBC_CONFORMANCE_SUBNET_ID (docs/conformance.md); or use --rig" >&2
  exit 2
fi
if [ -z "${OLBC_CONFORMANCE_SUBNET_ID:-}" ] && [ -z "${OLBC_CONFORMANCE_CLOUD_CONF:-}" ]; then
  echo "conformance: SKIPPED - credentials found but no OLBC_CONFORMANCE_SUBNET_ID (the subnet for VIPs and node addresses)" >&2
  exit 2
fi

# One prefix for the whole run, shared by the three test binaries and the final sweep.
if [ -z "${OLBC_CONFORMANCE_PREFIX:-}" ]; then
  OLBC_CONFORMANCE_PREFIX=$(printf 'olbc-conf-%04x%04x' $RANDOM $RANDOM)
fi
export OLBC_CONFORMANCE_PREFIX
threads=${OLBC_CONFORMANCE_THREADS:-8}
logs=${OLBC_CONFORMANCE_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/olbc-conformance.XXXXXX")}
mkdir -p "$logs"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
echo "conformance: prefix $OLBC_CONFORMANCE_PREFIX, logs in $logs"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
rc=0
timings=()

# One cargo invocation for all parts when all are asked for: `--workspace` has the feature set
# of scripts/test.sh's workspace build, so CI rebuilds nothing. A single part uses `-p`.
if [ ${#parts[@]} = 3 ]; then
  cargo_sel=(--workspace)
  sweep_sel=(--workspace)
else
  sweep_sel=(-p openstack)
  cargo_sel=()
  for p in "${parts[@]}"; do
    case $p in
      client) cargo_sel+=(-p openstack) ;;
      doctor) cargo_sel+=(-p openstack-lb-controller) ;;
      controller) cargo_sel+=(-p controller) ;;
      *) echo "unknown part: $p" >&2; exit 2 ;;
    esac
  done
fi

# Builds first, so that the measured times are the tier's and not the compiler's.
t0=$(now)
build_ok=true
if [ -z "${OLBC_CONTROLLER_BIN:-}" ] || [ ! -x "$OLBC_CONTROLLER_BIN" ]; then
  cargo build -p openstack-lb-controller >"$logs/build.log" 2>&1 || build_ok=false
  export OLBC_CONTROLLER_BIN="$target_dir/debug/openstack-lb-controller"
fi
if $build_ok; then
  cargo test --no-run "${cargo_sel[@]}" --test conformance >>"$logs/build.log" 2>&1 || build_ok=false
  cargo test --no-run "${sweep_sel[@]}" --test conformance >>"$logs/build.log" 2>&1 || build_ok=false
fi
if ! $build_ok; then
  tail -n 40 "$logs/build.log"; echo "conformance: build failed" >&2; exit 1
fi
if [[ " ${parts[*]} " == *" controller "* ]] && [ -z "${OLBC_BIN_DIR:-}" ] &&
  ! hack/build-control-plane.sh >"$logs/control-plane.log" 2>&1; then
  tail -n 20 "$logs/control-plane.log"; echo "conformance: kube-apiserver/etcd could not be built" >&2; exit 1
fi
timings+=("build $(secs "$t0" "$(now)") s")

echo "==> conformance ${parts[*]}"
t=$(now)
log=$logs/tier.log
cargo test --no-fail-fast "${cargo_sel[@]}" --test conformance -- --ignored --skip zz_sweep_run_prefix \
  --test-threads "$threads" --nocapture 2>&1 | tee "$log" |
  grep -E '^(test |test result:|conformance target:|SKIPPED|scenario |thread .* panicked)'
if [ "${PIPESTATUS[0]}" != 0 ]; then
  rc=1
  echo "conformance FAILED (log: $log); the failures:"
  grep -E -A40 'panicked|^---- controller log' "$log" | grep -vE '^ +[0-9]+: |^ +at ' | tail -n 150
fi
timings+=("tests $(secs "$t" "$(now)") s")
# Each test binary's own time, named by the part its tests belong to.
while read -r part took; do timings+=("$part ${took}s"); done < <(awk '
  /^running [0-9]+ tests?$/ { part = "" }
  /^test / && part == "" { part = ($2 ~ /^conformance_/) ? "controller" : ($2 ~ /^doctor_/) ? "doctor" : "client" }
  /^test result:/ { for (i = 1; i <= NF; i++) if ($i == "in") { t = $(i+1); sub(/s$/, "", t); print part, t } }' "$log")

# The safety net: whatever a killed test left with this run's prefix goes now.
t=$(now)
OLBC_CONFORMANCE_SWEEP=1 cargo test "${sweep_sel[@]}" --test conformance -- --ignored --exact zz_sweep_run_prefix --nocapture \
  >"$logs/sweep.log" 2>&1 || { rc=1; echo "conformance: final sweep FAILED (log: $logs/sweep.log)"; }
grep -E '^swept' "$logs/sweep.log" || true
timings+=("sweep $(secs "$t" "$(now)") s")

echo "==> conformance timings: ${timings[*]}"
grep -h '^test result:' "$log" | sed 's/^/  /' || true  # indented: scripts/test.sh counts each result once
exit $rc
