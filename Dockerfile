# syntax=docker/dockerfile:1
#
# One image per service, from one build: the builder compiles every binary of
# the workspace once; each final stage copies one binary onto the same slim
# runtime. Pick the service with --target:
#
#   docker build --target ingest    -t ecg-stream/ingest .
#   docker build --target processor -t ecg-stream/processor .
#   docker build --target query-api -t ecg-stream/query-api .
#   docker build --target migrate   -t ecg-stream/migrate .
#
# docker-compose.yml builds all four; BuildKit shares the builder stage.

# ---------------------------------------------------------------- builder ---
FROM rust:1.95-bookworm AS builder

# rdkafka-sys builds librdkafka with ./configure && make (gcc, make and perl
# are in this image); its default `libz` feature finds zlib via pkg-config,
# its `ssl` feature OpenSSL (libssl-dev).
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The cache mounts keep the registry and the target dir between builds; the
# binaries are copied out of the (mounted, so not layered) target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/ingest target/release/processor target/release/query-api \
       target/release/ecg-migrate target/release/ecg-hash-secret /out/

# ---------------------------------------------------------------- runtime ---
FROM debian:bookworm-slim AS runtime

# ca-certificates: rustls verifies TLS peers (JWKS over https, a remote
# ClickHouse) against the system roots. libssl3: librdkafka's TLS and SCRAM
# to the brokers (rdkafka's `ssl` feature). zlib1g (librdkafka) and glibc
# are in the base image already.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ecg \
 && useradd --system --uid 10001 --gid ecg --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin ecg

COPY dev/docker-healthcheck.sh /usr/local/bin/ecg-healthcheck
ENV RUST_LOG=info
USER ecg:ecg
# CMDs below are exec form: the binary is pid 1 and gets `docker stop`'s
# SIGTERM itself, so it can drain (the processor commits its offsets).

# --------------------------------------------------------------- services ---
FROM runtime AS ingest
COPY --from=builder /out/ingest /usr/local/bin/ingest
# Upload spool (ECG_UPLOAD__SPOOL_DIR in docker-compose.yml), owned by the
# service user so that a new named volume mounted here is writable.
USER root
RUN mkdir -p /var/spool/ecg-ingest && chown ecg:ecg /var/spool/ecg-ingest && chmod 700 /var/spool/ecg-ingest
USER ecg:ecg
ENV ECG_HTTP__ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["ecg-healthcheck"]
CMD ["ingest"]

FROM runtime AS processor
COPY --from=builder /out/processor /usr/local/bin/processor
ENV ECG_HTTP__ADDR=0.0.0.0:8082
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["ecg-healthcheck"]
CMD ["processor"]

FROM runtime AS query-api
COPY --from=builder /out/query-api /usr/local/bin/query-api
# Hashes a client secret read on stdin for auth.clients_file:
# `docker run --rm -i ecg-stream/query-api:local ecg-hash-secret`.
COPY --from=builder /out/ecg-hash-secret /usr/local/bin/ecg-hash-secret
# Without a mounted key (docker-compose.yml mounts one as a secret), the JWT
# signing key is generated here (ECG_AUTH__KEY_FILE); mount a volume on it so
# tokens stay valid across restarts. Owned by the service user so that a new
# named volume, which copies this directory, is writable.
USER root
RUN mkdir -p /var/lib/query-api && chown ecg:ecg /var/lib/query-api && chmod 700 /var/lib/query-api
USER ecg:ecg
VOLUME ["/var/lib/query-api"]
ENV ECG_HTTP__ADDR=0.0.0.0:8081 \
    ECG_AUTH__KEY_FILE=/var/lib/query-api/jwt-signing-key.pem
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["ecg-healthcheck"]
CMD ["query-api"]

# One-shot: applies the ClickHouse migrations and exits.
FROM runtime AS migrate
COPY --from=builder /out/ecg-migrate /usr/local/bin/ecg-migrate
CMD ["ecg-migrate"]
