#!/usr/bin/env bash
# Build kube-apiserver and etcd from Go modules (via the Go module proxy) into a
# version-keyed cache outside the repository. Idempotent: if both binaries are
# already cached, returns immediately.
#
# Last stdout line: the bin directory. All logs go to stderr.
#
#   hack/build-control-plane.sh                 build if needed, print the bin dir
#   hack/build-control-plane.sh --print-bin-dir print the bin dir of the selected versions
#                                               and exit, built or not (nothing is built)
#
# Env:
#   OLBC_K8S_VERSION   k8s.io/kubernetes version   (default: OLBC_K8S_DEFAULT_VERSION of
#                      hack/k8s-versions.env)
#   OLBC_ETCD_VERSION  go.etcd.io/etcd/server/v3   (default v3.6.16)
#   OLBC_CACHE_DIR     cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller)
#   OLBC_GO            go binary (default: `go` on PATH, else /usr/local/go/bin/go)
#   OLBC_NICE          nice level for the builds (default 10)
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=k8s-versions.env
source "$HACK_DIR/k8s-versions.env"

PRINT_ONLY=false
case ${1:-} in
  "") ;;
  --print-bin-dir) PRINT_ONLY=true ;;
  *) echo "usage: $0 [--print-bin-dir]" >&2; exit 2 ;;
esac

K8S_VERSION=${OLBC_K8S_VERSION:-$OLBC_K8S_DEFAULT_VERSION}
ETCD_VERSION=${OLBC_ETCD_VERSION:-v3.6.16}
CACHE_ROOT=${OLBC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}
NICE_LEVEL=${OLBC_NICE:-10}

log() { printf '[build-control-plane] %s\n' "$*" >&2; }
die() { printf '[build-control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] \
  || die "OLBC_K8S_VERSION must look like v1.MINOR.PATCH, got '$K8S_VERSION'"
K8S_MINOR=${BASH_REMATCH[1]}
# Staging modules (k8s.io/api, k8s.io/apiserver, ...) are published as v0.MINOR.PATCH.
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
[[ $ETCD_VERSION =~ ^v3\.[0-9]+\.[0-9]+$ ]] \
  || die "OLBC_ETCD_VERSION must look like v3.MINOR.PATCH, got '$ETCD_VERSION'"

BIN_DIR="$CACHE_ROOT/control-plane/k8s-${K8S_VERSION#v}-etcd-${ETCD_VERSION#v}/bin"

have_bins() { [[ -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/etcd ]]; }

if $PRINT_ONLY; then
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

if have_bins; then
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

if [[ -n ${OLBC_GO:-} ]]; then
  GO=$OLBC_GO
elif command -v go >/dev/null 2>&1; then
  GO=$(command -v go)
elif [[ -x /usr/local/go/bin/go ]]; then
  GO=/usr/local/go/bin/go
else
  die "no Go toolchain found (set OLBC_GO or put go on PATH)"
fi

# Hermetic-ish Go settings: never auto-download toolchains, resolve modules
# freely inside the throwaway module, static binaries, no VCS stamping.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOWORK=off

# gomod_path MODULE@VERSION -> path to the downloaded go.mod of that module
gomod_path() {
  local json
  json=$("$GO" mod download -json "$1" 2>&1) || {
    local err; err=$(sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
    die "cannot download $1 through the Go module proxy ($("$GO" env GOPROXY)): ${err:-$json}"
  }
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" | head -n1
}

# Resolve both modules first so a bad version fails fast, before any build.
K8S_GOMOD=$(gomod_path "k8s.io/kubernetes@$K8S_VERSION")
ETCD_GOMOD=$(gomod_path "go.etcd.io/etcd/server/v3@$ETCD_VERSION")

mkdir -p "$BIN_DIR"
# Serialise concurrent builders (e.g. several test processes starting at once).
exec 9>"$BIN_DIR/../.build.lock"
if ! flock -n 9; then
  log "another build is running for $BIN_DIR; waiting for its lock"
  flock 9
fi
if have_bins; then
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/olbc-cp-build.XXXXXX")
cleanup() { rm -rf "$WORK"; rm -f "$BIN_DIR"/.*.tmp.$$; }
trap cleanup EXIT

log "go: $("$GO" version)"
log "building into $BIN_DIR (k8s.io/kubernetes $K8S_VERSION, go.etcd.io/etcd/server/v3 $ETCD_VERSION)"

go_build() { # NAME MODULE_DESC OUT PKG [extra go build args...]
  local name=$1 desc=$2 out=$3 pkg=$4; shift 4
  local start=$SECONDS
  log "go build $pkg ($desc) ..."
  if ! nice -n "$NICE_LEVEL" "$GO" build -trimpath -o "$out" "$@" "$pkg"; then
    die "go build of $pkg failed (module $desc, go $("$GO" env GOVERSION)); see output above"
  fi
  log "built $name in $((SECONDS - start))s"
}

# ---------------------------------------------------------------- kube-apiserver
build_kube_apiserver() {
  local dir="$WORK/kube-apiserver" k8s_mod tmp
  mkdir -p "$dir"
  k8s_mod=$K8S_GOMOD
  [[ -f $k8s_mod ]] || die "go.mod of k8s.io/kubernetes@$K8S_VERSION not found"

  # k8s.io/kubernetes requires its staging repos as v0.0.0 and replaces them with
  # ./staging/src/k8s.io/*; those replaces are ignored for a dependency, so the
  # consuming module must map every one of them to the published v0.X.Y.
  local staging
  staging=$(sed -n -E 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/src/.*#\2#p' "$k8s_mod" | sort -u)
  local n; n=$(wc -l <<<"$staging")
  (( n >= 20 )) || die "only $n staging replace directives found in $k8s_mod; format changed?"

  {
    echo "module olbc.local/control-plane/kube-apiserver"
    echo
    grep -E '^go [0-9]' "$k8s_mod"
    grep -E '^godebug ' "$k8s_mod" || true
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done <<<"$staging"
    echo ")"
  } >"$dir/go.mod"
  log "generated go.mod with $n staging replaces -> $STAGING_VERSION"

  local pkg=k8s.io/kubernetes/cmd/kube-apiserver
  (cd "$dir" && "$GO" get "$pkg@$K8S_VERSION" >&2) \
    || die "go get $pkg@$K8S_VERSION failed (module k8s.io/kubernetes $K8S_VERSION, staging $STAGING_VERSION)"

  local v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version ld="-s -w"
  local x
  for x in "$v" "$cv"; do
    ld+=" -X $x.gitVersion=$K8S_VERSION -X $x.gitMajor=1 -X $x.gitMinor=$K8S_MINOR -X $x.gitTreeState=clean"
  done
  tmp="$BIN_DIR/.kube-apiserver.tmp.$$"
  (cd "$dir" && go_build kube-apiserver "k8s.io/kubernetes $K8S_VERSION" "$tmp" "$pkg" -ldflags "$ld")
  mv -f "$tmp" "$BIN_DIR/kube-apiserver"
}

# ---------------------------------------------------------------------- etcd
# etcd does not depend on the Kubernetes version: a binary of the same etcd version cached
# beside another Kubernetes version is hard-linked (or copied), so an extra Kubernetes version
# costs only the kube-apiserver build.
reuse_etcd() {
  local other
  for other in "$CACHE_ROOT"/control-plane/k8s-*-etcd-"${ETCD_VERSION#v}"/bin/etcd; do
    [[ -x $other && $other != "$BIN_DIR/etcd" ]] || continue
    if ln -f "$other" "$BIN_DIR/etcd" 2>/dev/null || cp -f "$other" "$BIN_DIR/etcd"; then
      log "etcd $ETCD_VERSION reused from $other"
      return 0
    fi
  done
  return 1
}

build_etcd() {
  local dir="$WORK/etcd" etcd_mod tmp
  mkdir -p "$dir"
  etcd_mod=$ETCD_GOMOD
  [[ -f $etcd_mod ]] || die "go.mod of go.etcd.io/etcd/server/v3@$ETCD_VERSION not found"
  {
    echo "module olbc.local/control-plane/etcd"
    echo
    grep -E '^go [0-9]' "$etcd_mod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  } >"$dir/go.mod"
  # The server module's root package is `package main` (the etcd binary).
  local pkg=go.etcd.io/etcd/server/v3
  (cd "$dir" && "$GO" get "$pkg@$ETCD_VERSION" >&2) \
    || die "go get $pkg@$ETCD_VERSION failed"
  tmp="$BIN_DIR/.etcd.tmp.$$"
  (cd "$dir" && go_build etcd "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$tmp" "$pkg" -ldflags "-s -w")
  mv -f "$tmp" "$BIN_DIR/etcd"
}

total_start=$SECONDS
[[ -x $BIN_DIR/etcd ]] || reuse_etcd || build_etcd
[[ -x $BIN_DIR/kube-apiserver ]] || build_kube_apiserver
log "done in $((SECONDS - total_start))s"
"$BIN_DIR/etcd" --version >&2 || die "built etcd does not run"
"$BIN_DIR/kube-apiserver" --version >&2 || die "built kube-apiserver does not run"
printf '%s\n' "$BIN_DIR"
