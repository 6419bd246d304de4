#!/usr/bin/env bash
# Builds the helm CLI from its Go module (the only way to get it here: no binary downloads)
# into the cache, keyed by version. Prints the binary's path as the last line.
set -euo pipefail
version=${HELM_VERSION:-v3.19.5}
cache=${OLBC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-lb-controller}/helm-$version
if [ ! -x "$cache/helm" ]; then
  command -v go >/dev/null || { echo "go not found: needed to build helm $version" >&2; exit 1; }
  echo "building helm $version from helm.sh/helm/v3 (once; cached in $cache)" >&2
  mkdir -p "$cache"
  GOBIN="$cache" nice go install -trimpath -ldflags '-s -w' "helm.sh/helm/v3/cmd/helm@$version" >&2 \
    || { echo "go install helm.sh/helm/v3/cmd/helm@$version failed" >&2; exit 1; }
fi
echo "$cache/helm"
