#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh machine,
# builds everything, runs every test tier, and ends with a one-line summary.
# Caches (Python venv, Go build cache, control-plane binaries, and in CI the cargo target dir,
# since CI works in a fresh clone) live under $OLBC_CACHE_DIR so repeated runs are fast.
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
  step "$name"
  if "$@" 2>&1 | tee "$logs/$name.log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name (log: $logs/$name.log)")
  fi
}

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc >/dev/null; }
cargo --version; go version 2>/dev/null || true; python3 --version

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
cargo test --workspace --no-fail-fast 2>&1 | tee "$logs/cargo-test.log"
cargo_rc=${PIPESTATUS[0]}
count_cargo "$logs/cargo-test.log"
if [ "$cargo_rc" != 0 ]; then
  failures+=("cargo test (exit $cargo_rc; log: $logs/cargo-test.log)")
  # a compile error yields no "test result" lines: count it as a failure
  grep -qE '^test result:.* [1-9][0-9]* failed' "$logs/cargo-test.log" || failed=$((failed + 1))
fi

for suite in "$repo"/tests/*/run.sh; do
  [ -x "$suite" ] || continue
  name=$(basename "$(dirname "$suite")")
  run_script "$name" env OLBC_BIN="$target_dir/debug/openstack-lb-controller" "$suite"
done

step "summary"
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
