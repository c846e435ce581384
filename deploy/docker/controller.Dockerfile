# syntax=docker/dockerfile:1
#
# languard-controller image. Build from the repository root (the build context must be the whole
# Cargo workspace):
#
#   docker build -f deploy/docker/controller.Dockerfile -t languard-controller .
#
# The build context is filtered by controller.Dockerfile.dockerignore (next to this file; BuildKit,
# the default builder since Docker 23, picks it up automatically): no target/, no .git, no env files.
#
# Run: the configuration baked in at /etc/languard/controller.toml listens on 0.0.0.0:50051 and keeps
# its data dir in the volume /var/lib/languard. Override anything with LANGUARD_<KEY> variables
# (they win over the file), or mount your own file over /etc/languard/controller.toml.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build ------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target dir between builds; the binary is copied out of the
# cache mount so the next stage can take it. protox compiles the protos: no protoc needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p languard-controller \
 && install -D -m 0755 target/release/languard-controller /out/languard-controller

# ---- runtime ----------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: TLS to a PostgreSQL server that requires it. Nothing else: the health check
# below uses bash (always present in Debian images), not curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 languard \
 && useradd --system --uid 10001 --gid languard --home-dir /var/lib/languard --no-create-home \
      --shell /usr/sbin/nologin languard \
 && install -d -o languard -g languard -m 0700 /var/lib/languard
COPY --from=builder /out/languard-controller /usr/local/bin/languard-controller
COPY deploy/docker/controller.toml /etc/languard/controller.toml

USER 10001:10001
WORKDIR /var/lib/languard
# A named volume starts with the ownership of this directory (languard, 0700). The controller creates
# its data dir (data_dir = /var/lib/languard/data) inside it.
VOLUME ["/var/lib/languard"]
# gRPC, grpc-web, WebSocket /ws and /healthz: one port.
EXPOSE 50051

# GET /healthz over plain HTTP/1.1 with bash's /dev/tcp; healthy when the status line says 200.
# With TLS configured (tls_cert/tls_key), replace this with a check that speaks TLS, e.g. a
# Kubernetes httpGet probe with scheme HTTPS, or disable it (HEALTHCHECK NONE in a derived image).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/50051 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && IFS= read -r -t 2 status <&3 && [[ $status == 'HTTP/1.1 200'* ]]"]

# SIGTERM (docker stop) starts the controller's bounded shutdown (shutdown_grace_seconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/languard-controller"]
CMD ["--config", "/etc/languard/controller.toml"]
