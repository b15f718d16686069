# Prism's server image for people with Docker or buildah, from a binary
# built first (the build directory is set in .cargo/config.toml):
#   cargo build --release -p prism
#   cp /var/cache/prism-target/release/prism .
#   docker build -t prism:1.0 .            # or: buildah bud -t prism:1.0 .
# Without a Docker daemon, `prism admin image --to REGISTRY/prism:1.0` builds
# the same kind of image from the running binary. Checked by building it with
# buildah in crates/prism/tests/server_image.rs (offline, with RUNTIME set to
# Prism's own image, which already holds git and the CA certificates).
#
# Run it as Kubernetes does (deploy/kubernetes): uid 10001, a read-only root
# filesystem, the data dir and /tmp as volumes, /healthz for the probes.

ARG BASE=docker.io/library/debian:bookworm-slim
# The image the server runs on; the default is the `runtime` stage below.
ARG RUNTIME=runtime

# What Prism runs beside its own binary: git (checkout, ls-remote) and CA certificates.
FROM ${BASE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM ${RUNTIME}
ARG PRISM_BIN=prism
COPY ${PRISM_BIN} /usr/local/bin/prism
COPY --chown=10001:10001 deploy/docker/data/ /var/lib/prism/
ENV PRISM_LISTEN=0.0.0.0:8080 \
    PRISM_DATA_DIR=/var/lib/prism
WORKDIR /var/lib/prism
USER 10001:10001
EXPOSE 8080
VOLUME ["/var/lib/prism"]
ENTRYPOINT ["/usr/local/bin/prism"]
CMD ["serve"]
