# The Tidewatch HTTP service (service/): docker compose builds it from the repository root.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p tidewatch-service

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system tidewatch
COPY --from=build /src/target/release/tidewatch-service /usr/local/bin/tidewatch-service
USER tidewatch
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tidewatch-service"]
