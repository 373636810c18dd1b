# syntax=docker/dockerfile:1
# stripe-twin: a stateful, Stripe-compatible API server for test suites.
#   docker build -t stripe-twin .
#   docker run -p 12111:12111 stripe-twin

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY fixtures ./fixtures
COPY examples ./examples
# BuildKit cache mounts keep the registry and the compiled dependencies
# between builds; the binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin stripe-twin \
    && cp target/release/stripe-twin /usr/local/bin/stripe-twin

FROM debian:bookworm-slim
ARG VERSION=dev
LABEL org.opencontainers.image.title="stripe-twin" \
      org.opencontainers.image.description="A stateful, Stripe-compatible API server for test suites" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/stripe-twin/stripe-twin"
# ca-certificates (and the OpenSSL it brings) for https webhook receivers;
# Debian's security updates move these versions, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data \
    && chown 10001:10001 /data
COPY --from=build /usr/local/bin/stripe-twin /usr/local/bin/stripe-twin
# The built-in fixtures are compiled into the binary; this copy is for
# reading, or for --fixtures after editing.
COPY fixtures /usr/share/stripe-twin/fixtures
USER 10001:10001
ENV STRIPE_TWIN_BIND=0.0.0.0 \
    PORT=12111 \
    STRIPE_TWIN_DB_PATH=/data/stripe-twin.db
VOLUME ["/data"]
EXPOSE 12111
HEALTHCHECK --interval=5s --timeout=4s --start-period=5s --retries=5 \
    CMD ["stripe-twin", "healthcheck"]
ENTRYPOINT ["stripe-twin"]
