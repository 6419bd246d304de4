# Multi-stage: a static musl build, then a distroless non-root runtime.
FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p openstack-lb-controller \
 && cp target/x86_64-unknown-linux-musl/release/openstack-lb-controller /openstack-lb-controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /openstack-lb-controller /usr/local/bin/openstack-lb-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/openstack-lb-controller"]
CMD ["run", "--cloud-config=/etc/openstack-lb-controller/cloud.conf", "--leader-elect"]
