#!/usr/bin/env bash
# The HTTP service, side by side in one run (release builds, one cluster, loopback only):
#   1. ingest throughput through the service (JSON, line protocol, remote write; batches of 1,000
#      points, 4 clients) against one COPY of the same points into the same hypertable;
#   2. latency under load with oha: 500 requests/s of 10-point JSON batches for 30 s (15,000
#      requests, bounded), p50/p99 and errors;
#   3. the service's peak RSS.
# See benches/service_load.py for the details. Results go into benches/RESULTS.md by hand.
# Usage: bash benches/service.sh [POINTS] [REPEATS]   (defaults 200000 3; medians)
# Environment: TIDEWATCH_BENCH_DIR, TIDEWATCH_BENCH_PORT (cluster), TIDEWATCH_BENCH_SERVICE_PORT.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
POINTS=${1:-200000}
REPEATS=${2:-3}
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-bench}
PORT=${TIDEWATCH_BENCH_PORT:-25444}
SVC_PORT=${TIDEWATCH_BENCH_SERVICE_PORT:-25445}
DB=tidewatch_bench
TOKEN=bench-$RANDOM$RANDOM

ensure_deps
install_extension --release
say "building tidewatch-service (release)"
cargo build --release -q -p tidewatch-service --manifest-path "$REPO/Cargo.toml"
if ! command -v oha >/dev/null; then
    say "installing oha (for the latency run only)"
    cargo install oha --locked
fi
python3 -c 'import cramjam' 2>/dev/null || pip install -q cramjam 2>/dev/null || true

cluster_start "$DIR" "$PORT" "$DB"
SVC_PID=
cleanup() {
    [ -n "$SVC_PID" ] && kill "$SVC_PID" 2>/dev/null && wait "$SVC_PID" 2>/dev/null
    cluster_stop "$DIR"
}
trap cleanup EXIT
ADMIN="host=127.0.0.1 port=$PORT user=postgres"
recreate_database "$DB" psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres
psql -X -q -d "$ADMIN dbname=$DB" -c "CREATE EXTENSION tidewatch"
psql -X -q -d "$ADMIN dbname=$DB" -v service_password=bench -f "$REPO/sql/roles.sql" >/dev/null

say "starting the service on 127.0.0.1:$SVC_PORT"
LOG="$DIR/service.log"
as_root install -d "$DIR" 2>/dev/null || true
TIDEWATCH_DATABASE_URL="$ADMIN dbname=$DB user=tidewatch_service password=bench" \
TIDEWATCH_LISTEN="127.0.0.1:$SVC_PORT" TIDEWATCH_WRITE_TOKENS="$TOKEN" TIDEWATCH_LOG=warn \
    "$CARGO_TARGET_DIR/release/tidewatch-service" serve 2>"$LOG" &
SVC_PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$SVC_PORT/readyz" >/dev/null && break
    sleep 0.2
done
curl -sf "http://127.0.0.1:$SVC_PORT/readyz"; echo

say "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$REPO/benches/service_load.py" --url "http://127.0.0.1:$SVC_PORT" --pid "$SVC_PID" --token "$TOKEN" \
    --psql-dsn "$ADMIN dbname=$DB" --points "$POINTS" --repeats "$REPEATS" --workdir "$DIR"
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
