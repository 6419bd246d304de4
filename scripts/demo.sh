#!/usr/bin/env bash
# The one demo command (README): builds what it needs on a fresh machine (the binary; the first
# time also kube-apiserver and etcd from Go modules, cached), then runs
# `openstack-lb-controller demo`: sandbox cloud + local Kubernetes API + controller + an example
# Service whose external IP answers. Extra arguments go to `demo` (e.g. --once).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
command -v go >/dev/null || { echo "go not found: needed once to build kube-apiserver and etcd" >&2; exit 1; }
echo "building openstack-lb-controller ..." >&2
cargo build -q -p openstack-lb-controller
echo "building the local Kubernetes control plane (first time only: several minutes) ..." >&2
hack/build-control-plane.sh >/dev/null
target_dir=${CARGO_TARGET_DIR:-$repo/target}
exec "$target_dir/debug/openstack-lb-controller" demo "$@"
