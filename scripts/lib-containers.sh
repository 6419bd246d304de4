# Sourced by scripts/image.sh and the deploy tier: buildah and podman as they work on a machine
# without a registry and with hybrid cgroups (CI runners, this dev VM).
#  - vfs storage under $OLBC_CACHE_DIR/containers: needs no overlay/fuse support and keeps the
#    image between runs; the run root (sockets, locks) is in $TMPDIR, short enough for socket
#    paths and keyed by the storage root so two checkouts with two caches never share one.
#  - podman with runc and cgroupfs: crun fails on this kernel's hybrid cgroup layout.
#  - --events-backend file: no journald in containers and CI.
# shellcheck shell=bash

: "${OLBC_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}"
olbc_containers_root=${OLBC_CONTAINERS_ROOT:-$OLBC_CACHE_DIR/containers}
olbc_containers_runroot=${TMPDIR:-/tmp}/olbc-containers-$(id -u)-$(printf %s "$olbc_containers_root" | cksum | cut -d' ' -f1)
olbc_storage_opts=(--root "$olbc_containers_root/storage" --runroot "$olbc_containers_runroot" --storage-driver vfs)

olbc_buildah() { buildah "${olbc_storage_opts[@]}" "$@"; }
olbc_podman() {
  podman "${olbc_storage_opts[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"
}

# Installs buildah, podman and runc from Debian when one is missing (root, or sudo without a
# password). Fails with the command to run otherwise.
olbc_ensure_container_tools() {
  local missing=() t sudo=
  for t in buildah podman runc; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  [ ${#missing[@]} = 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then sudo=sudo; else
      echo "missing ${missing[*]}: run  sudo apt-get install -y ${missing[*]}" >&2
      return 1
    fi
  fi
  command -v apt-get >/dev/null || { echo "missing ${missing[*]} and no apt-get to install them" >&2; return 1; }
  echo "installing ${missing[*]} from Debian (once)" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}
