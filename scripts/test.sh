#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh machine,
# builds everything, runs every test tier, and ends with a one-line summary.
# Caches (Python venv, Go build cache, control-plane binaries, helm, the image's static cargo
# target dir and container storage, and in CI the cargo target dir, since CI works in a fresh
# clone) live under $OLBC_CACHE_DIR so repeated runs are fast.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export OLBC_CACHE_DIR=${OLBC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}
mkdir -p "$OLBC_CACHE_DIR"
if [ "${CI:-}" = true ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$OLBC_CACHE_DIR/cargo-target"
fi
export CARGO_TERM_COLOR=never
target_dir=${CARGO_TARGET_DIR:-$repo/target}
logs=$(mktemp -d "${TMPDIR:-/tmp}/olbc-test.XXXXXX")
passed=0
failed=0
failures=()

step() { printf '\n==> %s\n' "$*"; }

# Adds the counts of every "test result:" line of a cargo test log to the totals.
count_cargo() {
  local log=$1 p f
  p=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | paste -sd+ - | bc 2>/dev/null || echo 0)
  f=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | paste -sd+ - | bc 2>/dev/null || echo 0)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
}

# A suite that is a script: one pass or one fail.
run_script() {
  local name=$1
  shift
  local t=$SECONDS
  step "$name"
  if "$@" 2>&1 | tee "$logs/$name.log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name (log: $logs/$name.log)")
  fi
  echo "$name: $((SECONDS - t)) s"
}

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
# bc: the totals; python3-yaml: tests/deploy reads rendered charts; buildah, podman, runc:
# the deploy tier builds the image and runs the chart's pod (tests/deploy-pod, docs/deploy.md).
need=()
command -v bc >/dev/null || need+=(bc)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
for t in buildah podman runc; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo --version; go version 2>/dev/null || true; python3 --version

# The conformance tier (docs/conformance.md) runs against the real Keystone/Neutron/Octavia of
# openstack-rig. A rig that already answers belongs to someone else: it is used and left
# running. Otherwise this script installs it (in the background, while the workspace builds:
# apt and pip are mostly I/O), starts it before the tier and stops it on any exit.
# Where the rig lives: $OLBC_RIG_DIR, else beside the checkout (../shared), else the
# machine's shared folder (a CI clone may sit anywhere).
rig_dir=${OLBC_RIG_DIR:-}
if [ -z "$rig_dir" ]; then
  for d in "$repo/../shared/openstack-rig" /work/shared/openstack-rig; do
    [ -x "$d/install.sh" ] && { rig_dir=$d; break; }
  done
fi
rig_mode=none
rig_started=false
rig_install_pid=
rig_answers() { (exec 3<>"/dev/tcp/127.0.0.1/${OSRIG_KEYSTONE_PORT:-5000}") 2>/dev/null; }
cleanup_rig() {
  # An apt/pip install is never killed halfway: dpkg would be left locked.
  [ -n "$rig_install_pid" ] && wait "$rig_install_pid" 2>/dev/null
  if [ "$rig_mode" = ours ] && $rig_started; then
    echo "==> stopping the openstack-rig this run started"
    "$rig_dir/stop.sh" >"$logs/rig-stop.log" 2>&1 || echo "rig stop.sh failed (log: $logs/rig-stop.log)"
    rig_started=false
  fi
}
trap cleanup_rig EXIT
trap 'exit 130' INT TERM
if [ "${OLBC_SKIP_CONFORMANCE:-}" = 1 ]; then
  echo "conformance tier: skipped (OLBC_SKIP_CONFORMANCE=1)"
elif rig_answers; then
  rig_mode=shared
  echo "openstack-rig already answers on 127.0.0.1:${OSRIG_KEYSTONE_PORT:-5000}: using it, leaving it running"
elif [ -n "$rig_dir" ] && [ -x "$rig_dir/install.sh" ]; then
  rig_mode=ours
  echo "openstack-rig: installing in the background (log: $logs/rig-install.log)"
  "$rig_dir/install.sh" >"$logs/rig-install.log" 2>&1 &
  rig_install_pid=$!
else
  # Not silently green: the tier is part of the suite.
  echo "openstack-rig not found (looked beside the checkout and in /work/shared; set OLBC_RIG_DIR, or OLBC_SKIP_CONFORMANCE=1 to skip the tier on purpose)"
  failed=$((failed + 1)); failures+=("openstack-rig not found: conformance tier not run")
fi

step "cargo build (workspace, all targets)"
cargo build --workspace --all-targets 2>&1 | tee "$logs/cargo-build.log" | grep -E '^(error|warning: unused)|Finished'
if [ "${PIPESTATUS[0]}" != 0 ]; then
  tail -n 40 "$logs/cargo-build.log"
  failed=$((failed + 1)); failures+=("cargo build (log: $logs/cargo-build.log)")
fi

step "local Kubernetes control plane (kube-apiserver + etcd from Go modules, cached)"
if ! hack/build-control-plane.sh; then
  failed=$((failed + 1)); failures+=("hack/build-control-plane.sh")
fi

# End-to-end tests start the binary built above instead of building it themselves.
export OLBC_CONTROLLER_BIN="$target_dir/debug/openstack-lb-controller"
step "cargo test (unit, property, snapshot, sandbox, client, controller against kube-apiserver)"
# The chaos tests (names start with chaos_) run on their own below, so that nothing else
# competes with them for the CPU and their figures are printed.
cargo test --workspace --no-fail-fast -- --skip chaos_ 2>&1 | tee "$logs/cargo-test.log"
cargo_rc=${PIPESTATUS[0]}
count_cargo "$logs/cargo-test.log"
if [ "$cargo_rc" != 0 ]; then
  failures+=("cargo test (exit $cargo_rc; log: $logs/cargo-test.log)")
  # a compile error yields no "test result" lines: count it as a failure
  grep -qE '^test result:.* [1-9][0-9]* failed' "$logs/cargo-test.log" || failed=$((failed + 1))
fi

# Seeded chaos (docs/reliability.md): faults, kills and restarts under churn, then
# two replicas with leader election. OLBC_CHAOS_SEED replays a run; the seed is printed.
step "chaos (e2e_chaos, e2e_leader_chaos; seed printed, OLBC_CHAOS_SEED to replay)"
t=$SECONDS
timeout 900 cargo test -p controller --test e2e_chaos --test e2e_leader_chaos -- --nocapture \
  2>&1 | tee "$logs/chaos.log"
chaos_rc=${PIPESTATUS[0]}
count_cargo "$logs/chaos.log"
grep -E '^(chaos|leader chaos)' "$logs/chaos.log" || true
echo "chaos: $((SECONDS - t)) s"
if [ "$chaos_rc" != 0 ]; then
  failures+=("chaos (exit $chaos_rc; log: $logs/chaos.log)")
  grep -qE '^test result:.* [1-9][0-9]* failed' "$logs/chaos.log" || failed=$((failed + 1))
fi

for suite in "$repo"/tests/*/run.sh; do
  [ -x "$suite" ] || continue
  name=$(basename "$(dirname "$suite")")
  run_script "$name" env OLBC_BIN="$target_dir/debug/openstack-lb-controller" "$suite"
done

# The conformance tier and the live fidelity check share one rig window.
if [ "$rig_mode" != none ]; then
  step "openstack-rig (${rig_mode}) + conformance tier + live fidelity"
  rig_ok=true
  if [ "$rig_mode" = ours ]; then
    t=$SECONDS
    if ! wait "$rig_install_pid"; then
      rig_ok=false; tail -n 30 "$logs/rig-install.log"
      failed=$((failed + 1)); failures+=("openstack-rig install.sh (log: $logs/rig-install.log)")
    fi
    rig_install_pid=
    echo "rig install: waited $((SECONDS - t)) s"
    if $rig_ok; then
      t=$SECONDS
      rig_started=true
      if "$rig_dir/start.sh" >"$logs/rig-start.log" 2>&1; then
        echo "rig start: $((SECONDS - t)) s"
      else
        rig_ok=false; tail -n 30 "$logs/rig-start.log"
        failed=$((failed + 1)); failures+=("openstack-rig start.sh (log: $logs/rig-start.log)")
      fi
    fi
  fi
  if $rig_ok; then
    t=$SECONDS
    OLBC_CONFORMANCE_LOG_DIR="$logs/conformance" scripts/conformance.sh --rig 2>&1 | tee "$logs/conformance.log"
    conf_rc=${PIPESTATUS[0]}
    echo "conformance tier: $((SECONDS - t)) s"
    count_cargo "$logs/conformance.log"
    if [ "$conf_rc" != 0 ]; then
      failures+=("conformance tier (exit $conf_rc; logs: $logs/conformance)")
      grep -qE '^test result:.* [1-9][0-9]* failed' "$logs/conformance.log" || failed=$((failed + 1))
    fi
    t=$SECONDS
    step "live fidelity (OLBC_RIG=1 cargo test -p fidelity, its live_rig test)"
    # `--workspace --test fidelity`: the workspace's feature set, so nothing is rebuilt.
    OLBC_RIG=1 cargo test --workspace --test fidelity -- live_rig 2>&1 | tee "$logs/fidelity-live.log"
    fid_rc=${PIPESTATUS[0]}
    echo "live fidelity: $((SECONDS - t)) s"
    count_cargo "$logs/fidelity-live.log"
    if [ "$fid_rc" != 0 ]; then
      failures+=("live fidelity (exit $fid_rc; log: $logs/fidelity-live.log)")
      grep -qE '^test result:.* [1-9][0-9]* failed' "$logs/fidelity-live.log" || failed=$((failed + 1))
    elif ! grep -qE '^test live_rig[a-z_]* \.\.\. ok' "$logs/fidelity-live.log"; then
      failed=$((failed + 1)); failures+=("live fidelity: no live_rig test ran (log: $logs/fidelity-live.log)")
    fi
    # Real clients (the openstack CLI, OCCM) against the rig and the sandbox (docs/fidelity.md).
    run_script real-clients-live env OLBC_BIN="$target_dir/debug/openstack-lb-controller" tests/real-clients/run.sh --rig
  fi
fi

# Stopped here, not only by the trap, so that the summary is the last thing printed.
cleanup_rig

step "summary"
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
