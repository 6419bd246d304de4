#!/usr/bin/env bash
# Builds the controller's OCI image with no registry at all (docs/deploy.md):
#   static binary (gnu target, +crt-static, rustls) -> `buildah from scratch` + CA bundle +
#   /etc/passwd for uid 65532 -> committed as localhost/openstack-lb-controller:<version>-<rev>.
# The tag is the crate version and the git revision, "-dirty" when the tree has changes; the
# image's created time and file times are the commit's, so a clean tree rebuilds the same digest.
#
#   scripts/image.sh [--force] [--archive FILE.tar]
#     --force     rebuild even if the tag exists (a dirty tree always rebuilds)
#     --archive   also write an oci-archive (for `skopeo copy` / `podman load` elsewhere)
# Env: OLBC_CACHE_DIR (cargo target dir and container storage live there),
#      OLBC_IMAGE_NAME (default localhost/openstack-lb-controller),
#      OLBC_IMAGE_SOURCE (org.opencontainers.image.source; default: the git remote "origin").
# The last line printed is the image reference.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=lib-containers.sh
. "$repo/scripts/lib-containers.sh"

force=false
archive=
while (($#)); do
  case $1 in
    --force) force=true; shift ;;
    --archive) [ $# -ge 2 ] || { echo "--archive needs a file" >&2; exit 2; }; archive=$2; shift 2 ;;
    *) echo "unknown argument: $1 (usage: $0 [--force] [--archive FILE])" >&2; exit 2 ;;
  esac
done

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
olbc_ensure_container_tools

version=$(cargo metadata --no-deps --offline --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="openstack-lb-controller"))')
rev=$(git rev-parse --short=12 HEAD)
revision=$(git rev-parse HEAD)
dirty=
[ -z "$(git status --porcelain)" ] || dirty=-dirty
tag="$version-$rev$dirty"
name=${OLBC_IMAGE_NAME:-localhost/openstack-lb-controller}
image="$name:$tag"
epoch=$(git log -1 --format=%ct)
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
source_url=${OLBC_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null | sed -E 's#^[a-z]+://[^/@]*@#https://#' || true)}

if ! $force && [ -z "$dirty" ] && olbc_buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo "image $image exists (clean tree at $rev): not rebuilt; --force to rebuild" >&2
else
  # 1. The binary. Its own target dir: the static flags and the profile would otherwise
  #    invalidate the debug build's cache on every switch.
  host=$(rustc -vV | sed -n 's/^host: //p')
  case $host in
    *-linux-gnu) ;;
    *) echo "host target $host: the static build expects a *-linux-gnu host" >&2; exit 1 ;;
  esac
  target_dir=${OLBC_IMAGE_TARGET_DIR:-$OLBC_CACHE_DIR/cargo-target-image}
  flags_var="CARGO_TARGET_$(printf %s "$host" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
  echo "building the static binary ($host, profile image, no dev-tools) in $target_dir" >&2
  # --target: the flags then apply to the binary only, not to build scripts and proc macros
  # (which cannot be static). The remaps keep build paths out of the binary.
  env "$flags_var=-C target-feature=+crt-static --remap-path-prefix=$repo=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
    CARGO_TARGET_DIR="$target_dir" \
    cargo build --locked --profile image --target "$host" -p openstack-lb-controller --no-default-features >&2
  bin="$target_dir/$host/image/openstack-lb-controller"
  if ! ldd "$bin" 2>&1 | grep -E 'not a dynamic executable|statically linked' >/dev/null \
     || readelf -d "$bin" 2>/dev/null | grep '(NEEDED)' >/dev/null; then
    echo "$bin is not static:" >&2; ldd "$bin" >&2 || true
    exit 1
  fi
  echo "ldd: $(ldd "$bin" 2>&1 | head -n 1 | sed 's/^[[:space:]]*//')" >&2

  # 2. The root file system: just the binary, CA certificates and the user database.
  rootfs=$(mktemp -d "${TMPDIR:-/tmp}/olbc-rootfs.XXXXXX")
  ctr=
  cleanup() {
    rm -rf "$rootfs"
    if [ -n "$ctr" ]; then olbc_buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  }
  trap cleanup EXIT
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs"
  install -m 0755 "$bin" "$rootfs/usr/local/bin/openstack-lb-controller"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  # glibc's resolver, linked in statically, reads this; without it lookups skip /etc/hosts.
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"
  find "$rootfs" -exec touch -h -d "@$epoch" {} +

  # 3. The image.
  ctr=$(olbc_buildah from --quiet scratch)
  olbc_buildah copy --quiet "$ctr" "$rootfs" / >/dev/null
  labels=(
    --label "org.opencontainers.image.title=openstack-lb-controller"
    --label "org.opencontainers.image.description=Kubernetes LoadBalancer Services on OpenStack (Octavia, Neutron LBaaS)"
    --label "org.opencontainers.image.version=$version"
    --label "org.opencontainers.image.revision=$revision$dirty"
    --label "org.opencontainers.image.created=$created"
    --label "org.opencontainers.image.licenses=Apache-2.0"
  )
  if [ -n "$source_url" ]; then
    labels+=(--label "org.opencontainers.image.source=$source_url")
  else
    echo "note: no git remote 'origin' and no OLBC_IMAGE_SOURCE: label org.opencontainers.image.source left out" >&2
  fi
  olbc_buildah config \
    --user 65532:65532 --workingdir / \
    --entrypoint '["/usr/local/bin/openstack-lb-controller"]' \
    --cmd '["run", "--cloud-config=/etc/openstack-lb-controller/cloud.conf", "--leader-elect"]' \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    "${labels[@]}" "$ctr"
  olbc_buildah commit --quiet --format oci --timestamp "$epoch" --rm "$ctr" "$image" >/dev/null
  ctr=
  # Older tags of this image and the untagged leftovers of a rebuilt tag would fill the cache
  # by one image per commit; an image a container still uses is kept (rmi without --force).
  olbc_buildah images --format '{{.Name}}:{{.Tag}}' 2>/dev/null | awk -v p="$name:" -v keep="$image" 'index($0, p) == 1 && $0 != keep' \
    | while read -r old; do olbc_buildah rmi "$old" >/dev/null 2>&1 || true; done || true
  olbc_buildah rmi --prune >/dev/null 2>&1 || true
fi

if [ -n "$archive" ]; then
  rm -f "$archive"
  olbc_buildah push --quiet "$image" "oci-archive:$archive:$image" >&2
  echo "oci-archive: $archive" >&2
fi
size=$(olbc_buildah inspect --type image --format '{{.ImageSize}}' "$image" 2>/dev/null || true)
if ! [[ $size =~ ^[0-9]+$ ]]; then
  size=$(olbc_podman image inspect --format '{{.Size}}' "$image")
fi
echo "image $image: $(awk -v b="$size" 'BEGIN { printf "%.1f MB (%d bytes)", b / 1e6, b }') uncompressed" >&2
echo "$image"
