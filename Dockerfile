# The same image as scripts/image.sh, for machines with a registry: a static binary on the gnu
# target (+crt-static, rustls, no dev-tools feature), FROM scratch with the Debian CA bundle and
# a passwd entry for uid 65532.
#
# Pinning: the final stage is `scratch`, so nothing is pulled at run time. The builder is pinned
# by tag only; no digest is written here because none could be checked from this project's
# build machine (it reaches no registry). Pin it yourself with
#   docker buildx imagetools inspect rust:1.95-bookworm     # then FROM rust:1.95-bookworm@sha256:<digest>
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) --build-arg VERSION=0.1.0 \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t REGISTRY/openstack-lb-controller:TAG .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN host=$(rustc -vV | sed -n 's/^host: //p') \
 && CARGO_TARGET_DIR=/target \
    RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=/src=/src" \
    cargo build --locked --profile image --target "$host" -p openstack-lb-controller --no-default-features \
 && cp "/target/$host/image/openstack-lb-controller" /openstack-lb-controller \
 && ! readelf -d /openstack-lb-controller | grep -q '(NEEDED)' \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/usr/local/bin \
 && cp /openstack-lb-controller /rootfs/usr/local/bin/ \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' >/rootfs/etc/group \
 && printf 'hosts: files dns\n' >/rootfs/etc/nsswitch.conf

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="openstack-lb-controller" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.created="$CREATED" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/openstack-lb-controller"]
CMD ["run", "--cloud-config=/etc/openstack-lb-controller/cloud.conf", "--leader-elect"]
