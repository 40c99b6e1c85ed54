#!/usr/bin/env bash
# POST /v1/alerts/grafana storing and enriching 100-alert Grafana payloads (issue 13's target:
# p99 <= 200 ms): a cluster of its own (from a private copy of PostgreSQL, as tools/test.sh does),
# the release build of tidewatch-service, then benches/alerts_bench.py (data, payloads, p50/p99).
# Results go into benches/RESULTS.md by hand.
# Usage: bash benches/alerts.sh [REQUESTS] [SERIES]   (defaults 200 and 400)
# Environment: TIDEWATCH_BENCH_DIR (default /var/tmp/tidewatch-alerts-bench), TIDEWATCH_BENCH_PORT
# (cluster port, default 25446), TIDEWATCH_BENCH_PG (the private PostgreSQL copy, default
# $TIDEWATCH_BENCH_DIR/pg; never the copy a running cluster uses: installing into it can crash
# that cluster with SIGBUS), TIDEWATCH_BENCH_EXTENSION=release|debug (default release; the
# notification path is SQL and the service, so a debug extension changes little).
set -eo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
DIR=${TIDEWATCH_BENCH_DIR:-/var/tmp/tidewatch-alerts-bench}
PORT=${TIDEWATCH_BENCH_PORT:-25446}
PG=${TIDEWATCH_BENCH_PG:-$DIR/pg}
EXT=${TIDEWATCH_BENCH_EXTENSION:-release}

ensure_deps
say "building tidewatch-service (release)"
cargo build --release -q -p tidewatch-service --manifest-path "$REPO/Cargo.toml"
BIN=$CARGO_TARGET_DIR/release/tidewatch-service
as_root install -d -o postgres -g postgres "$DIR"
use_private_pg "$PG"
if [ "$EXT" = release ]; then install_extension --release; else install_extension; fi
cluster_start "$DIR/cluster" "$PORT" "tidewatch_svc"
trap 'cluster_stop "$DIR/cluster"' EXIT
say "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg); extension: $EXT build"
TIDEWATCH_DSN="host=127.0.0.1 port=$PORT user=postgres" TIDEWATCH_SERVICE_BIN="$BIN" \
    python3 "$REPO/benches/alerts_bench.py" "$@"
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
