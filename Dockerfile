# stripe-twin: a stateful, Stripe-compatible API server for test suites.
# Builds with a plain `docker build` (no BuildKit needed):
#   docker build -t stripe-twin .
#   docker run -p 127.0.0.1:12111:12111 -v stripe-twin-data:/data stripe-twin
# The image checks itself with `stripe-twin healthcheck` (see README, Docker).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: the manifests, build.rs and stub
# sources build every dependency, and this layer stays cached until
# Cargo.toml, Cargo.lock or build.rs change.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin stripe-twin \
    && rm -rf src \
        target/release/stripe-twin* \
        target/release/.fingerprint/stripe-twin-* \
        target/release/deps/stripe_twin-* \
        target/release/deps/libstripe_twin-*
# Then the crate itself; migrations/ and fixtures/ are read at compile time
# (sqlx::migrate!, include_str!), examples/ is part of the package.
COPY src ./src
COPY migrations ./migrations
COPY fixtures ./fixtures
COPY examples ./examples
RUN cargo build --release --locked --bin stripe-twin \
    && cp target/release/stripe-twin /usr/local/bin/stripe-twin

FROM debian:bookworm-slim
ARG VERSION=dev
LABEL org.opencontainers.image.title="stripe-twin" \
      org.opencontainers.image.description="A stateful, Stripe-compatible API server for test suites" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/stripe-twin/stripe-twin"
# No packages to install: the binary links no OpenSSL (reqwest uses rustls),
# and https webhook receivers are verified against the webpki-roots
# certificates compiled into it, not the system store, so neither libssl3
# nor ca-certificates is needed (installing them would change nothing).
RUN mkdir -p /data \
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
