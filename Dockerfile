# syntax=docker/dockerfile:1
# Landfall container image: `docker build -t landfall:0.1.0 .` from the repository root.
# Build stage: Debian bookworm with the packages rdkafka's bundled librdkafka needs (the same list
# scripts/ensure-tools.sh installs). Runtime stage: bookworm-slim with only the shared libraries
# the binary links and CA certificates, running as an unprivileged user. See
# deploy/helm/landfall/README.md ("Container image").

FROM rust:1-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev libzstd-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: cargo reads every member's manifest even to build one package.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p landfall \
    && install -D -m 0755 target/release/landfall /out/landfall

FROM debian:bookworm-slim AS runtime
# What `ldd landfall` lists beyond the base image: libssl3 (librdkafka's TLS), libsasl2-2
# (librdkafka's GSSAPI path; PLAIN and SCRAM are built into librdkafka) and zlib1g; zstd is
# linked statically. Plus CA certificates for TLS to Kafka, S3 and GCS. Kerberos (GSSAPI)
# users add libsasl2-modules-gssapi-mit.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libssl3 libsasl2-2 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 landfall \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin landfall
COPY --from=build /out/landfall /usr/local/bin/landfall
USER 65532:65532
# glibc malloc: two arenas, and freed memory above 128 KiB returned to the OS. With the default
# (8 arenas per core) freed record buffers stayed resident and peak RSS was 1.9x the sink's
# memory budget with 1,000 partitions; with these 1.3-1.5x (docs/benchmarks.md, memory run).
ENV MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072
# /metrics, /healthz, /readyz (--metrics-addr, default 0.0.0.0:9464)
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/landfall"]
CMD ["run", "--config-dir", "/etc/landfall/sinks"]
