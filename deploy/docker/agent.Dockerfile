# syntax=docker/dockerfile:1
#
# languard-agent image. Build from the repository root (the build context must be the whole Cargo
# workspace):
#
#   docker build -f deploy/docker/agent.Dockerfile -t languard-agent .
#
# The build context is filtered by agent.Dockerfile.dockerignore (next to this file; BuildKit picks
# it up automatically).
#
# READ THIS BEFORE RUNNING GAME SERVERS IN A CONTAINER: the game servers the agent starts are
# processes of this container. They survive an agent *process* restart inside a running container,
# but not a restart, stop or upgrade of the container itself: the container's PID namespace ends and
# takes every game server with it. For game hosts in production use the systemd unit
# (deploy/systemd/languard-agent.service, KillMode=process); this image is for trying Languard out, CI
# and hosts where that trade-off is acceptable. Run it with an init (docker run --init, compose
# `init: true`) so exited game server processes are reaped.
#
# The Arma 3 server is not in the image: mount the install (e.g. -v /srv/arma3:/srv/arma3) and give
# the agent's user (uid 10002) write access to the profiles dirs. Add runtime libraries the game needs
# in a derived image (FROM languard-agent, USER root, apt-get install ..., USER 10002).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build ------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p languard-agent \
 && install -D -m 0755 target/release/languard-agent /out/languard-agent

# ---- runtime ----------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: the agent trusts the system roots for https:// controller URLs (plus ca_cert).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10002 languard-agent \
 && useradd --system --uid 10002 --gid languard-agent --home-dir /var/lib/languard --no-create-home \
      --shell /usr/sbin/nologin languard-agent \
 && install -d -o languard-agent -g languard-agent -m 0700 /var/lib/languard
COPY --from=builder /out/languard-agent /usr/local/bin/languard-agent
COPY deploy/docker/agent.toml /etc/languard/agent.toml

USER 10002:10002
WORKDIR /var/lib/languard
# state_dir = /var/lib/languard/agent: cached specs, sequence numbers, spool, the servers' logs.
VOLUME ["/var/lib/languard"]
# The agent listens on nothing (it dials the controller), so no EXPOSE and no HTTP health check; the
# game servers' own ports (e.g. 2302-2306/udp) are published by whoever runs the container.

# SIGTERM: the agent shuts down and leaves game servers running (within the container, see above).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/languard-agent"]
CMD ["--config", "/etc/languard/agent.toml"]
