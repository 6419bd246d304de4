#!/usr/bin/env bash
# Build openstack-cloud-controller-manager (OCCM) from its Go module (via the Go module proxy)
# into a version-keyed cache outside the repository, for the side-by-side benchmark.
# Idempotent: if the binary is already cached, returns immediately.
#
# Last stdout line: the path of the binary. All logs go to stderr.
#
# Env:
#   OLBC_OCCM_VERSION  k8s.io/cloud-provider-openstack version (default v1.34.1)
#   OLBC_CACHE_DIR     cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller)
#   OLBC_GO            go binary (default: `go` on PATH, else /usr/local/go/bin/go)
#   OLBC_NICE          nice level for the build (default 10)
#   --check            only report whether the binary is cached (exit 0 = yes, 1 = no); no build
set -euo pipefail

OCCM_VERSION=${OLBC_OCCM_VERSION:-v1.34.1}
CACHE_ROOT=${OLBC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}
NICE_LEVEL=${OLBC_NICE:-10}

log() { printf '[build-occm] %s\n' "$*" >&2; }
die() { printf '[build-occm] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $OCCM_VERSION =~ ^v1\.[0-9]+\.[0-9]+$ ]] \
  || die "OLBC_OCCM_VERSION must look like v1.MINOR.PATCH (a tag of k8s.io/cloud-provider-openstack), got '$OCCM_VERSION'"

BIN_DIR="$CACHE_ROOT/occm/${OCCM_VERSION#v}/bin"
BIN="$BIN_DIR/openstack-cloud-controller-manager"

if [[ -x $BIN ]]; then
  printf '%s\n' "$BIN"
  exit 0
fi
if [[ ${1:-} == --check ]]; then
  log "not cached: $BIN"
  exit 1
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

# Same settings as hack/build-control-plane.sh: no toolchain downloads, modules resolved
# freely inside the throwaway module, static binary, no VCS stamping.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOWORK=off

MODULE=k8s.io/cloud-provider-openstack
json=$("$GO" mod download -json "$MODULE@$OCCM_VERSION" 2>&1) || {
  err=$(sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
  die "cannot download $MODULE@$OCCM_VERSION through the Go module proxy ($("$GO" env GOPROXY)): ${err:-$json}"
}
UPSTREAM_GOMOD=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" | head -n1)
[[ -f $UPSTREAM_GOMOD ]] || die "go.mod of $MODULE@$OCCM_VERSION not found"

mkdir -p "$BIN_DIR"
# Serialise concurrent builders.
exec 9>"$BIN_DIR/../.build.lock"
if ! flock -n 9; then
  log "another build is running for $BIN_DIR; waiting for its lock"
  flock 9
fi
if [[ -x $BIN ]]; then
  printf '%s\n' "$BIN"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/olbc-occm-build.XXXXXX")
cleanup() { rm -rf "$WORK"; rm -f "$BIN_DIR"/.*.tmp.$$; }
trap cleanup EXIT

# Replace directives only apply in the main module, so OCCM's own (which pin k8s.io modules
# it requires as v0.0.0) must be repeated in the module that consumes it. Both the block and
# the single-line form are copied; a local-path replace could not work from the proxy.
replaces=$(awk '
  /^replace[[:space:]]*\(/ { inblock = 1; next }
  inblock && /^\)/ { inblock = 0; next }
  inblock && /=>/ { sub(/^[[:space:]]+/, ""); print; next }
  /^replace[[:space:]]+[^(]/ && /=>/ { sub(/^replace[[:space:]]+/, ""); print }
' "$UPSTREAM_GOMOD")
if grep -E '=>[[:space:]]*\.' <<<"$replaces" >/dev/null; then
  die "$MODULE@$OCCM_VERSION replaces a module with a local path; cannot build it from the proxy"
fi
n=$(grep -c '=>' <<<"$replaces" || true)

{
  echo "module olbc.local/bench/occm"
  echo
  grep -E '^go [0-9]' "$UPSTREAM_GOMOD"
  grep -E '^godebug ' "$UPSTREAM_GOMOD" || true
  echo
  echo "require $MODULE $OCCM_VERSION"
  if ((n > 0)); then
    echo
    echo "replace ("
    while read -r line; do [[ -n $line ]] && printf '\t%s\n' "$line"; done <<<"$replaces"
    echo ")"
  fi
} >"$WORK/go.mod"
log "go: $("$GO" version)"
log "generated a throwaway module with $n replace directives copied from $MODULE@$OCCM_VERSION"

PKG=$MODULE/cmd/openstack-cloud-controller-manager
(cd "$WORK" && "$GO" get "$PKG@$OCCM_VERSION" >&2) \
  || die "go get $PKG@$OCCM_VERSION failed"

start=$SECONDS
log "go build $PKG ($OCCM_VERSION) into $BIN_DIR ..."
ld="-s -w -X k8s.io/component-base/version.gitVersion=$OCCM_VERSION -X k8s.io/cloud-provider-openstack/pkg/version.Version=$OCCM_VERSION"
tmp="$BIN_DIR/.openstack-cloud-controller-manager.tmp.$$"
(cd "$WORK" && nice -n "$NICE_LEVEL" "$GO" build -trimpath -ldflags "$ld" -o "$tmp" "$PKG") \
  || die "go build of $PKG failed (module $MODULE $OCCM_VERSION, go $("$GO" env GOVERSION)); see output above"
mv -f "$tmp" "$BIN"
log "built in $((SECONDS - start))s"
"$BIN" --version >&2 || die "built openstack-cloud-controller-manager does not run"
printf '%s\n' "$BIN"
