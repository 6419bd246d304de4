#!/usr/bin/env bash
# Migration from OCCM, both ways, with the real openstack-cloud-controller-manager: OCCM
# builds load balancers for three Services (two TCP ports; source ranges and a health
# monitor; a plain one), this controller takes them over in place with the same cluster name
# (same ids and IPs, only the cluster-tag writes), and OCCM takes them back and deletes them
# cleanly. One sandbox cloud, one local kube-apiserver; each controller is its own sandbox user,
# so the writes of each phase are counted from its own share of the request log.
# See docs/migrating-from-occm.md.
#
# OCCM comes from bench/build-occm.sh: cached by version under $OLBC_CACHE_DIR; built from
# its Go module when missing (several minutes once; the Go build and module caches are the
# ones hack/build-control-plane.sh uses).
#
# Env: OLBC_BIN (the openstack-lb-controller binary; scripts/test.sh passes the debug build;
#      without it, `cargo build` here), OLBC_OCCM_VERSION, OLBC_CACHE_DIR.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

log() { printf '[occm-migration] %s\n' "$*" >&2; }
die() { printf '[occm-migration] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -n ${OLBC_BIN:-} ]]; then
  olbc_bin=$OLBC_BIN
else
  cargo build -q -p openstack-lb-controller
  olbc_bin=${CARGO_TARGET_DIR:-$repo/target}/debug/openstack-lb-controller
fi
[[ -x $olbc_bin ]] || die "OLBC_BIN=$olbc_bin is not an executable"
t0=$SECONDS
occm_bin=$(bench/build-occm.sh | tail -n1) || die "bench/build-occm.sh could not provide OCCM"
((SECONDS - t0 > 5)) && log "OCCM built in $((SECONDS - t0)) s"
log "OCCM: $occm_bin ($("$occm_bin" --version 2>&1 | head -n1))"

work=$(mktemp -d "${TMPDIR:-/tmp}/olbc-occm-migration.XXXXXX")
# shellcheck source=bench/world.sh
. bench/world.sh
driver_pid=
cleanup() {
  if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null || true # it stops the controller it runs
    wait "$driver_pid" 2>/dev/null || true
  fi
  world_stop "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 0.5 s per change: fast, yet every write still leaves the load balancer PENDING_UPDATE.
world_start "$work" "$olbc_bin" --provisioning-delay 500ms

rc=0
timeout 600 python3 tests/occm-migration/migrate.py --kubeconfig "$world_kubeconfig" \
  --sandbox-admin "$world_admin_url" --cloud-conf "$world_cloud_conf" --work "$work" \
  --olbc-bin "$olbc_bin" --occm-bin "$occm_bin" --node-octet "$world_node_octet" \
  --figures "$work/figures.json" &
driver_pid=$!
wait "$driver_pid" || rc=$?
driver_pid=
log "logs of this run: $work (occm-1.log, olbc.log, occm-2.log, sandbox.err, figures.json)"
((rc == 0)) || die "the migration failed (exit $rc)"
echo "occm-migration passed in $((SECONDS)) s"
