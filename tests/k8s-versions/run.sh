#!/usr/bin/env bash
# The ends of the supported Kubernetes range (README "Supported Kubernetes versions"): the e2e
# smoke (crates/controller/tests/e2e_k8s_versions.rs: create, update, delete one LoadBalancer
# Service against the sandbox) on the oldest and on the newest supported kube-apiserver of
# hack/k8s-versions.env. Each version is built once by hack/build-control-plane.sh and cached
# under its own version dir; later runs only start it.
#
# Env: OLBC_K8S_VERSIONS  space-separated versions to run instead (e.g. "v1.33.13")
#      OLBC_BIN           controller binary (scripts/test.sh sets it); else cargo builds it
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck source=../../hack/k8s-versions.env
source hack/k8s-versions.env
read -r -a versions <<<"${OLBC_K8S_VERSIONS:-$OLBC_K8S_OLDEST_VERSION $OLBC_K8S_NEWEST_VERSION}"
[ ${#versions[@]} -gt 0 ] || { echo "OLBC_K8S_VERSIONS is empty" >&2; exit 1; }
if [ -n "${OLBC_BIN:-}" ]; then
  [ -x "$OLBC_BIN" ] || { echo "OLBC_BIN=$OLBC_BIN is not an executable" >&2; exit 1; }
  export OLBC_CONTROLLER_BIN=$OLBC_BIN
fi
log=$(mktemp "${TMPDIR:-/tmp}/olbc-k8s-versions.XXXXXX")
trap 'rm -f "$log"' EXIT

summary=()
for v in "${versions[@]}"; do
  t=$SECONDS
  echo "--- kube-apiserver $v: build (cached per version)"
  OLBC_K8S_VERSION=$v hack/build-control-plane.sh >/dev/null
  build_s=$((SECONDS - t))
  t=$SECONDS
  echo "--- kube-apiserver $v: e2e smoke"
  # `--workspace`: the feature set scripts/test.sh built with, so nothing is rebuilt.
  # OLBC_BIN_DIR is cleared so the test cannot run on a control plane of another version.
  if ! env -u OLBC_BIN_DIR OLBC_K8S_VERSION="$v" \
      cargo test -q --workspace --test e2e_k8s_versions -- --nocapture >"$log" 2>&1; then
    cat "$log"
    echo "FAILED: the e2e smoke on kube-apiserver $v" >&2
    exit 1
  fi
  # A test that skipped (no binaries) also passes: require the version line it prints
  # (libtest's progress dots may share its line).
  if ! grep -qE "kube-apiserver ${v//./\\.}\$" "$log"; then
    cat "$log"
    echo "FAILED: the e2e smoke did not run on kube-apiserver $v" >&2
    exit 1
  fi
  grep -E '^test result:' "$log" | tail -n 1
  summary+=("$v: build ${build_s} s, smoke $((SECONDS - t)) s")
done
printf 'e2e smoke passed on %s\n' "${summary[@]}"
